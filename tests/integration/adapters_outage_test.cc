// The hub is down while a trust's PAS sends 10,000 ADT messages to the HL7 adapter: every message
// is acknowledged AA because it is durably in the adapter's outbox, and when the hub comes back
// every event arrives, each exactly once (checked by event id in the hub's store after it stops).

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "adapters_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Polls a metric until `done` holds or the timeout passes; returns the last value seen.
std::optional<double> WaitForMetric(AdapterProcess& adapter, const std::string& metric,
                                    const std::function<bool(double)>& done,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<double> value;
  while (std::chrono::steady_clock::now() < deadline) {
    value = adapter.Metric(metric);
    if (value && done(*value)) {
      return value;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return value;
}

TEST(AdapterOutageTest, TenThousandMessagesAcceptedWhileHubIsDownArriveOnceEach) {
  constexpr size_t kConnections = 8;
  constexpr size_t kPerConnection = 1250;
  constexpr size_t kTotal = kConnections * kPerConnection;

  TempDir dir("outage-adapters");
  // The hub must come back on the same port, as a real hub does: the adapter's config names it.
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port.value());
  auto hub = HubProcess::Start(HubOptions("outage", "ingest:\n  endpoint: " + endpoint + "\n"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  ASSERT_EQ(hub.value()->ingest_endpoint(), endpoint);

  auto adapter =
      AdapterProcess::Start(dir.path(), "rxk", "hl7", "127.0.0.1:0",
                            AdapterYaml("RXK", {"RXK01"}, endpoint, dir.path() / "rxk" / "outbox"));
  ASSERT_TRUE(adapter.ok()) << adapter.status().ToString();
  AdapterProcess& rxk = *adapter.value();
  auto connected = WaitForMetric(
      rxk, "carehub_adapter_hub_connected", [](double v) { return v == 1; }, seconds(20));
  ASSERT_EQ(connected, 1.0) << "the adapter never heard from the hub";

  auto stopped = hub.value()->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  ASSERT_TRUE(stopped->Exited(0)) << stopped->ToString();

  // Several PAS connections at once, as an interface engine with parallel channels sends.
  std::atomic<size_t> acked{0};
  std::vector<std::string> failures(kConnections);
  std::vector<std::thread> senders;
  for (size_t c = 0; c < kConnections; ++c) {
    senders.emplace_back([&, c] {
      auto client = MllpClient::Connect(rxk.endpoints().listen_host, rxk.endpoints().listen_port);
      if (!client.ok()) {
        failures[c] = client.status().ToString();
        return;
      }
      for (size_t i = 0; i < kPerConnection; ++i) {
        const std::string id = "OUT-" + std::to_string(c) + "-" + std::to_string(i);
        auto ack = client.value()->Send(
            AdtMessage("A01", id, "RXK01", "V" + std::to_string(c) + "-" + std::to_string(i)),
            seconds(30));
        if (!ack.ok()) {
          failures[c] = id + ": " + ack.status().ToString();
          return;
        }
        const ParsedAck parsed = ParseAck(ack.value());
        if (parsed.code != "AA" || parsed.control_id != id) {
          failures[c] = id + ": " + parsed.text;
          return;
        }
        ++acked;
      }
    });
  }
  for (auto& t : senders) {
    t.join();
  }
  for (size_t c = 0; c < kConnections; ++c) {
    EXPECT_EQ(failures[c], "") << "connection " << c;
  }
  ASSERT_EQ(acked.load(), kTotal);
  EXPECT_EQ(rxk.Metric("carehub_adapter_outbox_depth"), static_cast<double>(kTotal));
  EXPECT_EQ(rxk.Metric("carehub_adapter_hub_events_total{result=\"accepted\"}"), 0.0);
  auto age = rxk.Metric("carehub_adapter_outbox_oldest_age_seconds");
  ASSERT_TRUE(age.has_value());
  EXPECT_GT(*age, 0.0);

  ASSERT_TRUE(hub.value()->Restart().ok());
  ASSERT_EQ(hub.value()->ingest_endpoint(), endpoint);
  auto depth = WaitForMetric(
      rxk, "carehub_adapter_outbox_depth", [](double v) { return v == 0; }, seconds(60));
  ASSERT_EQ(depth, 0.0) << "the outbox did not drain after the hub came back";
  // Every event is answered; resends of batches the hub never saw may be DUPLICATEs, never new
  // events.
  auto accepted = rxk.Metric("carehub_adapter_hub_events_total{result=\"accepted\"}");
  auto duplicate = rxk.Metric("carehub_adapter_hub_events_total{result=\"duplicate\"}");
  ASSERT_TRUE(accepted && duplicate);
  EXPECT_EQ(*accepted + *duplicate, static_cast<double>(kTotal));
  EXPECT_EQ(rxk.Metric("carehub_adapter_hub_events_total{result=\"rejected\"}"), 0.0);

  auto adapter_exit = rxk.Stop();
  ASSERT_TRUE(adapter_exit.ok()) << adapter_exit.status().ToString();
  EXPECT_TRUE(adapter_exit->Exited(0)) << adapter_exit->ToString();
  auto hub_exit = hub.value()->Stop();
  ASSERT_TRUE(hub_exit.ok()) << hub_exit.status().ToString();

  auto store = hub.value()->OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::multiset<std::string> stored;
  for (const StoredEvent& e : ReadAllEvents(*store.value())) {
    if (e.event.envelope().publisher_ods() == "RXK") {
      stored.insert(e.event.envelope().event_id());
    }
  }
  EXPECT_EQ(stored.size(), kTotal);
  size_t missing = 0;
  size_t twice = 0;
  for (size_t c = 0; c < kConnections; ++c) {
    for (size_t i = 0; i < kPerConnection; ++i) {
      const size_t n = stored.count("OUT-" + std::to_string(c) + "-" + std::to_string(i));
      missing += n == 0 ? 1 : 0;
      twice += n > 1 ? 1 : 0;
    }
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(twice, 0u);
}

// SIGTERM with events the hub never answered: the adapter exits 0, the events stay in its outbox,
// and the next run with the same outbox sends them.
TEST(AdapterOutageTest, UnsentEventsSurviveAnAdapterRestart) {
  TempDir dir("restart-adapters");
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port.value());
  const std::string yaml = AdapterYaml("RXK", {}, endpoint, dir.path() / "rxk" / "outbox");
  {
    auto adapter = AdapterProcess::Start(dir.path(), "rxk", "hl7", "127.0.0.1:0", yaml);
    ASSERT_TRUE(adapter.ok()) << adapter.status().ToString();
    auto client = MllpClient::Connect(adapter.value()->endpoints().listen_host,
                                      adapter.value()->endpoints().listen_port);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    for (int i = 0; i < 5; ++i) {
      auto ack =
          client.value()->Send(AdtMessage("A01", "KEEP-" + std::to_string(i), "RXK"), seconds(10));
      ASSERT_TRUE(ack.ok()) << ack.status().ToString();
      EXPECT_EQ(ParseAck(ack.value()).code, "AA");
    }
    auto stopped = adapter.value()->Stop();
    ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
    EXPECT_TRUE(stopped->Exited(0)) << stopped->ToString();
    EXPECT_NE(adapter.value()->ReadLog().find("5 event(s) left in the outbox"), std::string::npos)
        << adapter.value()->ReadLog();
  }
  auto hub = HubProcess::Start(HubOptions("restart", "ingest:\n  endpoint: " + endpoint + "\n"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto adapter = AdapterProcess::Start(dir.path(), "rxk", "hl7", "127.0.0.1:0", yaml);
  ASSERT_TRUE(adapter.ok()) << adapter.status().ToString();
  auto depth = WaitForMetric(
      *adapter.value(), "carehub_adapter_outbox_depth", [](double v) { return v == 0; },
      seconds(30));
  EXPECT_EQ(depth, 0.0);
  EXPECT_EQ(adapter.value()->Metric("carehub_adapter_hub_events_total{result=\"accepted\"}"), 5.0);
  ASSERT_TRUE(adapter.value()->Stop().ok());
  ASSERT_TRUE(hub.value()->Stop().ok());
  auto store = hub.value()->OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::set<std::string> ids;
  for (const StoredEvent& e : ReadAllEvents(*store.value())) {
    ids.insert(e.event.envelope().event_id());
  }
  EXPECT_EQ(ids, (std::set<std::string>{"KEEP-0", "KEEP-1", "KEEP-2", "KEEP-3", "KEEP-4"}));
}

}  // namespace
}  // namespace carehub::itest
