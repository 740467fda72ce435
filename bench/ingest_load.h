#pragma once
// A raw ingest load generator for benchmarks: N DEALER connections, each keeping a window of
// Publish batches in flight, sending pre-encoded synthetic events (with a share of resends), and
// recording per-batch acknowledgement latency. No outbox: this measures the hub, not the client.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace carehub::bench {

// The shape of event ids, which decides where dedup keys (publisher + event id) fall in the index.
enum class IdShape {
  // "<id_prefix><connection>-<counter>": one counter per sending system, as HL7 v2 message control
  // ids (MSH-10) usually are; a publisher's new keys sit next to its previous ones.
  kSequential,
  // "<id_prefix>" + a UUID derived from the sequential id (as FHIR resource ids): new keys land
  // anywhere in the index.
  kRandom,
};

struct IngestLoadOptions {
  std::string endpoint;
  uint64_t events = 1'000'000;
  uint32_t connections = 4;
  uint32_t batch_events = 1000;
  uint32_t window_batches = 8;
  double resend_ratio = 0.1;
  uint64_t seed = 1;
  std::string id_prefix = "bench-";
  IdShape id_shape = IdShape::kSequential;
  // A share of the events that resend events an earlier load (`stored`) sent to the same hub:
  // regenerated from its options (same ids and bytes, spread over its whole run), so the hub
  // answers DUPLICATE from its stored keys, not from recently accepted ones.
  double stored_resend_ratio = 0;
  std::shared_ptr<const IngestLoadOptions> stored;
  // Publishers the synthetic events are spread over (uniformly); empty = the generator's default.
  std::vector<std::string> publishers;
  // Events per second over all connections; 0 = as fast as possible.
  double rate = 0;
  // How long a connection waits for its answers (from its start) before it gives up on the rest.
  std::chrono::seconds answer_timeout{600};
  // CURVE client keys (Z85), empty = plain.
  std::string curve_public, curve_secret, curve_server;
};

struct IngestLoadResult {
  uint64_t sent = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t other = 0;
  // The answers counted in `other`, by "STATUS reason" (e.g. "RETRY standby_unavailable").
  std::map<std::string, uint64_t> other_by_reason;
  double seconds = 0;
  double ack_p50_ms = 0;
  double ack_p99_ms = 0;
  uint64_t max_hub_seq = 0;  // the highest hub_seq any answer named: the log's head at the end
  double accepted_per_second() const { return seconds > 0 ? accepted / seconds : 0; }
  double sent_per_second() const { return seconds > 0 ? sent / seconds : 0; }
};

IngestLoadResult RunIngestLoad(const IngestLoadOptions& options);

// The day (SyntheticOptions::now) every event this process generates is dated from, fixed at
// first use: an event generated again later, to resend it, must be the same bytes, also past
// midnight.
std::chrono::system_clock::time_point GenerationDay();

}  // namespace carehub::bench
