// carehub-fhir-notify-bench: notification throughput to a loopback HTTPS receiver (issue 18).
// Starts a real hub, publishes N synthetic events, then for each payload (id-only, full-resource)
// runs carehub-fhir-notify from the start of the feed until the receiver has every event, and
// prints notifications/s, events/s and resources/s with the command that reproduces them.
//
//   carehub-fhir-notify-bench [--events N] [--batch M]
//
// Built on demand (not part of `make test`):
//   cmake --build build --target carehub-fhir-notify-bench carehub carehub-fhir-notify

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "carehub/core/synthetic.h"
#include "fhir_notify_support.h"
#include "harness/workload.h"
#include "subscribe_support.h"

namespace {

using namespace carehub;
using namespace carehub::itest;
using Steady = std::chrono::steady_clock;

constexpr const char* kAgreements = R"(subscribers:
  - id: bench
    subscriptions:
      - {id: bench-id-only, purpose: direct_care}
      - {id: bench-full, purpose: direct_care}
      - {id: bench-baseline, purpose: direct_care}
agreements:
  - id: DSA-BENCH
    subscriber: bench
    purpose: direct_care
    legal_basis: "bench"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

int Fail(const std::string& what) {
  std::fprintf(stderr, "carehub-fhir-notify-bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  size_t events = 100'000;
  int batch = 500;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--events") == 0) {
      events = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--batch") == 0) {
      batch = std::atoi(argv[i + 1]);
    }
  }
  if (events == 0 || batch <= 0) {
    return Fail("--events and --batch must be positive");
  }
  TempDir dir("fhir-notify-bench");
  auto policy = WritePolicyFiles(dir.path(), kAgreements);
  if (!policy.ok()) {
    return Fail(policy.status().ToString());
  }
  auto hub =
      HubProcess::Start(HubWithAgreements("fhir-notify-bench-hub", policy.value(), "", "os"));
  if (!hub.ok()) {
    return Fail(hub.status().ToString());
  }
  SyntheticGenerator gen(FixedSyntheticOptions(7, "bench-"));
  std::vector<v1::Event> all;
  all.reserve(events);
  for (size_t i = 0; i < events; ++i) {
    all.push_back(gen.Next());
  }
  auto seqs = PublishAccepted(hub.value()->ingest_endpoint(), all);
  if (!seqs.ok()) {
    return Fail(seqs.status().ToString());
  }
  std::printf("published %zu events; batching up to %d events per notification\n", events, batch);
  {
    // The ceiling: the hub's own feed of the same events to a client-library reader.
    ReadFeedOptions o;
    o.until_seq = seqs->back();
    o.ack = false;
    o.timeout = std::chrono::minutes(10);
    auto read = ReadFeed(hub.value()->subscribe_endpoint(), "bench-baseline", o);
    if (!read.ok()) {
      return Fail(read.status().ToString());
    }
    std::printf("hub feed alone (client library, no ack): %.2f s, %.0f events/s\n", read->seconds,
                static_cast<double>(read->events.size()) / read->seconds);
  }
  std::printf("%-14s %10s %12s %12s %14s %10s\n", "payload", "seconds", "notif/s", "events/s",
              "resources/s", "MB/s");
  for (const auto& [sub, payload] :
       {std::pair{"bench-id-only", "id-only"}, std::pair{"bench-full", "full-resource"}}) {
    ReceiverOptions ro;
    ro.keep_bodies = false;
    auto receiver = FhirReceiver::Start(dir.path(), ro);
    if (!receiver.ok()) {
      return Fail(receiver.status().ToString());
    }
    const auto state = dir.path() / (std::string("state-") + sub);
    const std::string config =
        "hub:\n  endpoint: " + hub.value()->subscribe_endpoint() +
        "\nstate_dir: " + state.string() +
        "\npublic_base_url: https://notify.test/fhir\nlogging: {level: warn}\n"
        "subscriptions:\n  - id: " +
        sub + "\n    purpose: direct_care\n    payload: " + payload +
        "\n    max_events_per_notification: " + std::to_string(batch) +
        "\n    endpoint:\n      url: " + receiver.value()->url() +
        "\n      ca_file: " + receiver.value()->cert().cert.string() + "\n";
    std::filesystem::create_directories(dir.path() / sub);
    const auto started = Steady::now();
    auto notify = NotifyProcess::Start(dir.path() / sub, config, state);
    if (!notify.ok()) {
      return Fail(notify.status().ToString());
    }
    const auto deadline = started + std::chrono::minutes(10);
    while (receiver.value()->events_received() < events && Steady::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double secs = std::chrono::duration<double>(Steady::now() - started).count();
    if (receiver.value()->events_received() < events) {
      return Fail(std::string(payload) + ": only " +
                  std::to_string(receiver.value()->events_received()) + " events in 10 minutes");
    }
    const size_t notifications = receiver.value()->bodies_received();
    std::printf("%-14s %10.2f %12.0f %12.0f %14.0f %10.1f\n", payload, secs,
                static_cast<double>(notifications) / secs, static_cast<double>(events) / secs,
                static_cast<double>(receiver.value()->resources_received()) / secs,
                static_cast<double>(receiver.value()->bytes_received()) / secs / 1e6);
    (void)notify.value()->Stop();
  }
  std::printf("reproduce: %s --events %zu --batch %d\n", argv[0], events, batch);
  return 0;
}
