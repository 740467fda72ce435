#pragma once
// How much of the disk what the hub refuses may take (issue 16: "one peer must not fill the disk").
// Every refused event or undecodable frame is answered with its reason, counted and logged as
// before; what this decides is whether its quarantine record is also stored:
//
//   per peer   a token bucket of bytes: `peer_bytes_per_minute` refilled continuously, up to one
//              minute's worth in a burst. A peer is the authenticated identity (CURVE), or the
//              connection on a plain (loopback-only) hub.
//   in total   the quarantine never grows past `max_total_bytes`; beyond it new records are dropped
//              until an operator clears it (records are the evidence: none is deleted to make
//              room).
//
// A record not stored is counted (carehub_quarantine_dropped_total{reason="peer_rate"|"total_cap"})
// and logged at a bounded rate. Undecodable frames keep only a prefix of `frame_prefix_bytes` with
// the whole frame's size and SHA-256 (QuarantineRecord.raw_size / raw_sha256): enough to diagnose,
// too little to fill a disk; refused events keep their whole bytes (bounded by the frame limit) so
// they can be replayed.
//
// Thread-safety: not thread-safe; owned by the IngestPipeline and used on the ingest thread only.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace carehub::hub {

struct QuarantineLimits {
  uint64_t peer_bytes_per_minute = 16ull << 20;
  uint64_t max_total_bytes = 1ull << 30;
  uint32_t frame_prefix_bytes = 4096;
};

class QuarantineBudget {
 public:
  using Steady = std::chrono::steady_clock;
  enum class Verdict { kStore, kPeerRate, kTotalCap };

  explicit QuarantineBudget(QuarantineLimits limits) : limits_(limits) {}

  // What a record of `record_bytes` (serialized) costs: its bytes plus its key and the store's
  // per-record overhead, so that no record is free however small.
  static uint64_t Cost(uint64_t record_bytes) { return record_bytes + 64; }

  // Whether a record costing `cost` from `peer` may be stored now, given `stored_bytes` already in
  // the quarantine. kStore takes the cost from the peer's bucket and holds it as in flight until
  // Settle.
  Verdict Admit(const std::string& peer, uint64_t cost, uint64_t stored_bytes,
                Steady::time_point now);
  // Records admitted earlier are committed (now in stored_bytes) or failed: no longer in flight.
  void Settle(uint64_t cost) { in_flight_ -= std::min(in_flight_, cost); }

  const QuarantineLimits& limits() const { return limits_; }

 private:
  struct Bucket {
    double tokens;
    Steady::time_point refilled;
  };
  // Drops buckets that have refilled completely: a peer that has been quiet for a minute costs no
  // memory, however many connections come and go.
  void ForgetRefilled(Steady::time_point now);

  QuarantineLimits limits_;
  std::unordered_map<std::string, Bucket> buckets_;
  uint64_t in_flight_ = 0;
};

}  // namespace carehub::hub
