// What the hub does with a frame from a publisher (DESIGN §3): envelope decode — in place for a
// plain Publish, else by protobuf on a reused arena — limits, then the ingest pipeline (authorise,
// validate, dedup within the batch and against a real, empty RocksDB store). Nothing is committed:
// each batch is settled as a failed commit, which also exercises the pipeline's reset path.
//
// Invariants: reading a frame in place decides what protobuf's parse of it decides, with the same
// batch id, events (field by field) and event bytes, and the pipeline answers both readings alike;
// one result per event, in order, each with a known status; accepted events got increasing
// hub_seqs, validate, and re-encode to themselves; each event's bytes as received (when the frame
// splits into them) are what it was parsed from, and each accepted event's stored record is that
// event with its hub fields.

#include <stdlib.h>

#include <filesystem>
#include <memory>

#include "carehub/core/validation.h"
#include "carehub/hub/frame_decode.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/hub/store/event_codec.h"
#include "carehub/metrics/registry.h"
#include "fuzz_support.h"

namespace {

using carehub::fuzz::FixedClock;

struct Harness {
  std::filesystem::path dir;
  std::unique_ptr<carehub::hub::Store> store;
  carehub::metrics::Registry metrics;
  FixedClock clock;
  std::unique_ptr<carehub::hub::IngestPipeline> open_pipeline;
  std::unique_ptr<carehub::hub::IngestPipeline> curve_pipeline;
  google::protobuf::Arena arena;
  carehub::hub::PublishInPlace in_place;
};

Harness* harness = nullptr;

void RemoveStoreDir() {
  if (harness != nullptr) {
    harness->store.reset();
    std::error_code ec;
    std::filesystem::remove_all(harness->dir, ec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  harness = new Harness();
  std::string tmpl = (std::filesystem::temp_directory_path() / "carehub-fuzz-ingest-XXXXXX");
  harness->dir = mkdtemp(tmpl.data());
  carehub::hub::StoreOptions options;
  options.dir = harness->dir / "store";
  options.block_cache_bytes = 8 << 20;
  options.write_buffer_bytes = 4 << 20;
  options.min_free_disk_bytes = 1;
  auto store = carehub::hub::Store::Open(options);
  CAREHUB_FUZZ_CHECK(store.ok(), store.status().ToString());
  harness->store = std::move(store.value());
  std::atexit(RemoveStoreDir);
  carehub::ValidationLimits limits;
  // Plain mode (no authoriser) and CURVE mode, where the sender "rxk" may publish only for RXK.
  harness->open_pipeline = std::make_unique<carehub::hub::IngestPipeline>(
      harness->store.get(), &harness->metrics, limits, 400, harness->clock, nullptr);
  harness->curve_pipeline = std::make_unique<carehub::hub::IngestPipeline>(
      harness->store.get(), &harness->metrics, limits, 400, harness->clock,
      [](std::string_view identity, std::string_view ods) {
        return identity == "rxk" && ods == "RXK";
      });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using carehub::hub::IngestFrameDecision;
  carehub::fuzz::Bytes in(data, size);
  const uint8_t mode = in.Byte();
  const bool curve = (mode & 1) != 0;
  const size_t max_events = 1 + (mode >> 1);  // 1..128: small limits reach the refusal path
  std::string_view payload = in.rest();

  struct ArenaReset {
    google::protobuf::Arena& arena;
    ~ArenaReset() { arena.Reset(); }
  } reset{harness->arena};
  // As the hub decodes it, and by protobuf alone (how every frame was decoded before the in-place
  // reader): the two must agree.
  IngestFrameDecision decision = carehub::hub::DecodeIngestFrame(
      payload, 1 << 20, max_events, &harness->arena, &harness->in_place);
  IngestFrameDecision parsed =
      carehub::hub::DecodeIngestFrame(payload, 1 << 20, max_events, &harness->arena);
  CAREHUB_FUZZ_CHECK(decision.action == parsed.action,
                     "in-place and protobuf decisions differ: " +
                         std::to_string(static_cast<int>(decision.action)) + " " +
                         decision.reason + " / " +
                         std::to_string(static_cast<int>(parsed.action)) + " " + parsed.reason);
  CAREHUB_FUZZ_CHECK(decision.reason == parsed.reason, "in-place and protobuf reasons differ");
  switch (decision.action) {
    case IngestFrameDecision::Action::kQuarantine:
    case IngestFrameDecision::Action::kRefuseBatch:
      CAREHUB_FUZZ_CHECK(!decision.reason.empty(), "refusal without a reason");
      CAREHUB_FUZZ_CHECK(decision.publish == nullptr, "refusal with a batch");
      return 0;
    case IngestFrameDecision::Action::kHeartbeat:
      return 0;
    case IngestFrameDecision::Action::kPublish:
      break;
  }
  CAREHUB_FUZZ_CHECK(parsed.publish != nullptr, "publish decision without a batch");
  CAREHUB_FUZZ_CHECK((decision.in_place != nullptr) != (decision.publish != nullptr),
                     "a publish decision needs exactly one reading");
  const int n = parsed.publish->events_size();
  CAREHUB_FUZZ_CHECK(static_cast<size_t>(n) <= max_events, "batch over the limit accepted");

  // Each event's bytes as received, when found, are exactly what it was parsed from.
  CAREHUB_FUZZ_CHECK(parsed.event_bytes.empty() || parsed.event_bytes.size() == size_t(n),
                     "received bytes for some events only");
  for (size_t i = 0; i < parsed.event_bytes.size(); ++i) {
    carehub::v1::Event reparsed;
    CAREHUB_FUZZ_CHECK(reparsed.ParseFromArray(parsed.event_bytes[i].data(),
                                               static_cast<int>(parsed.event_bytes[i].size())),
                       "received bytes of an event do not parse");
    CAREHUB_FUZZ_CHECK(carehub::hub::CanonicalBytes(reparsed) ==
                           carehub::hub::CanonicalBytes(parsed.publish->events(int(i))),
                       "received bytes of an event are another event's");
  }
  // Read in place: the same batch, events and bytes as protobuf's parse.
  const carehub::hub::PublishInPlace* in_place = decision.in_place;
  if (in_place != nullptr) {
    CAREHUB_FUZZ_CHECK(in_place->batch_id == parsed.publish->batch_id(), "in-place batch id");
    CAREHUB_FUZZ_CHECK(in_place->size == size_t(n), "in-place event count");
    CAREHUB_FUZZ_CHECK(parsed.event_bytes.size() == size_t(n), "a plain frame's events not found");
    for (int i = 0; i < n; ++i) {
      carehub::EventView expected;
      carehub::MakeEventView(parsed.publish->events(i), &expected);
      CAREHUB_FUZZ_CHECK(in_place->events[i] == expected, "in-place event differs from protobuf's");
      CAREHUB_FUZZ_CHECK(in_place->bytes[i].data() == parsed.event_bytes[i].data() &&
                             in_place->bytes[i].size() == parsed.event_bytes[i].size(),
                         "in-place event bytes differ");
    }
  }

  auto& pipeline = curve ? *harness->curve_pipeline : *harness->open_pipeline;
  const char* sender = curve ? "rxk" : "";
  const uint64_t first_seq = pipeline.next_seq();
  auto batch = in_place != nullptr
                   ? pipeline.Prepare("peer", sender, in_place->batch_id, in_place->event_views(),
                                      in_place->event_bytes())
                   : pipeline.Prepare("peer", sender, decision.publish,
                                      /*quarantine_rejects=*/true, decision.event_bytes);
  // The events as the pipeline saw them (its parsed-Publish path clears publisher-set hub fields).
  const carehub::v1::Publish& events = in_place != nullptr ? *parsed.publish : *decision.publish;
  size_t accepted_records = 0;
  CAREHUB_FUZZ_CHECK(batch->result.results_size() == n, "one result per event");
  CAREHUB_FUZZ_CHECK(batch->result.batch_id() == events.batch_id(), "batch id echoed");
  uint64_t last_seq = first_seq - 1;
  for (int i = 0; i < n; ++i) {
    const auto& r = batch->result.results(i);
    const auto& event = events.events(i);
    CAREHUB_FUZZ_CHECK(r.event_id() == event.envelope().event_id(), "result names its event");
    switch (r.status()) {
      case carehub::v1::EventResult::ACCEPTED: {
        CAREHUB_FUZZ_CHECK(r.hub_seq() == last_seq + 1, "accepted seqs are consecutive");
        last_seq = r.hub_seq();
        CAREHUB_FUZZ_CHECK(!curve || event.envelope().publisher_ods() == "RXK",
                           "accepted an event of another organisation");
        CAREHUB_FUZZ_CHECK(event.envelope().hub_seq() == 0 && !event.envelope().has_received_at(),
                           "publisher-set hub fields kept");
        carehub::ValidationLimits limits;
        carehub::Status valid =
            carehub::ValidateEvent(event, event.ByteSizeLong(), limits, harness->clock.Now());
        CAREHUB_FUZZ_CHECK(valid.ok(), valid.ToString());
        carehub::fuzz::CheckReencodes(event);
        // The stored record is this event with its hub fields, whatever bytes it came in.
        CAREHUB_FUZZ_CHECK(accepted_records < batch->records.size(), "accepted without a record");
        carehub::v1::Event stored;
        CAREHUB_FUZZ_CHECK(stored.ParseFromString(batch->records[accepted_records++]),
                           "stored record does not parse");
        CAREHUB_FUZZ_CHECK(stored.envelope().hub_seq() == r.hub_seq(), "record of another seq");
        CAREHUB_FUZZ_CHECK(carehub::hub::SameEventContent(stored, event),
                           "stored record is not the accepted event");
        break;
      }
      case carehub::v1::EventResult::DUPLICATE:
        CAREHUB_FUZZ_CHECK(r.hub_seq() >= first_seq && r.hub_seq() <= last_seq,
                           "duplicate of an event not in this batch");
        break;
      case carehub::v1::EventResult::REJECTED:
      case carehub::v1::EventResult::CONFLICT:
        CAREHUB_FUZZ_CHECK(!r.reason().empty(), "refused event without a reason");
        break;
      default:
        CAREHUB_FUZZ_CHECK(false, "unexpected status " + std::to_string(r.status()));
    }
  }
  const carehub::v1::PublishResult in_place_result = batch->result;
  // Settle as a failed commit: nothing stored, every answer RETRY, pending state forgotten.
  batch->committed = false;
  pipeline.Finish(batch.get());
  for (const auto& r : batch->result.results()) {
    CAREHUB_FUZZ_CHECK(r.status() == carehub::v1::EventResult::RETRY, "failed commit answered");
  }
  pipeline.Recycle(std::move(batch));
  if (in_place == nullptr) {
    return 0;
  }
  // The parsed frame through the pipeline's other entry, from the same state: the same answers.
  // Seqs are never reused after a failed commit: this run's seqs start where the failed one's
  // ended.
  const uint64_t again_first_seq = pipeline.next_seq();
  auto again = pipeline.Prepare("peer", sender, parsed.publish, /*quarantine_rejects=*/true,
                                parsed.event_bytes);
  CAREHUB_FUZZ_CHECK(again->result.batch_id() == in_place_result.batch_id(), "batch id");
  CAREHUB_FUZZ_CHECK(again->result.results_size() == n, "one result per event");
  for (int i = 0; i < n; ++i) {
    const auto& a = in_place_result.results(i);
    const auto& b = again->result.results(i);
    const bool same_seq = a.hub_seq() == 0
                              ? b.hub_seq() == 0
                              : b.hub_seq() - again_first_seq == a.hub_seq() - first_seq;
    // A conflict's message names its original's seq, which moved with the others.
    auto message = [](const carehub::v1::EventResult& r) {
      return r.message().substr(0, r.message().find("(hub_seq"));
    };
    CAREHUB_FUZZ_CHECK(a.status() == b.status() && a.reason() == b.reason() &&
                           a.event_id() == b.event_id() && same_seq && message(a) == message(b),
                       "the parsed frame is answered otherwise than the frame read in place");
  }
  again->committed = false;
  pipeline.Finish(again.get());
  pipeline.Recycle(std::move(again));
  return 0;
}
