#pragma once
// A raw ingest load generator for benchmarks: N DEALER connections, each keeping a window of
// Publish batches in flight, sending pre-encoded synthetic events (with a share of resends), and
// recording per-batch acknowledgement latency. No outbox: this measures the hub, not the client.

#include <cstdint>
#include <string>
#include <vector>

namespace carehub::bench {

struct IngestLoadOptions {
  std::string endpoint;
  uint64_t events = 1'000'000;
  uint32_t connections = 4;
  uint32_t batch_events = 1000;
  uint32_t window_batches = 8;
  double resend_ratio = 0.1;
  uint64_t seed = 1;
  std::string id_prefix = "bench-";
  // Publishers the synthetic events are spread over (uniformly); empty = the generator's default.
  std::vector<std::string> publishers;
  // Events per second over all connections; 0 = as fast as possible.
  double rate = 0;
  // CURVE client keys (Z85), empty = plain.
  std::string curve_public, curve_secret, curve_server;
};

struct IngestLoadResult {
  uint64_t sent = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t other = 0;
  double seconds = 0;
  double ack_p50_ms = 0;
  double ack_p99_ms = 0;
  uint64_t max_hub_seq = 0;  // the highest hub_seq any answer named: the log's head at the end
  double accepted_per_second() const { return seconds > 0 ? accepted / seconds : 0; }
  double sent_per_second() const { return seconds > 0 ? sent / seconds : 0; }
};

IngestLoadResult RunIngestLoad(const IngestLoadOptions& options);

}  // namespace carehub::bench
