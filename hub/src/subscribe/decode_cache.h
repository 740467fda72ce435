#pragma once
// Stored events decoded once for every session that reads them (private to hub/src).
//
// Live sessions read the same new events, each through its own ReadPlan (log_reader.h): without
// this cache each of N sessions parsed every event it read, N parses per event, most of them for
// sessions that then found the event was not theirs (perf, fan-out bench). Here the first session
// to read an event parses it, and the others reading it soon after (within `slots` seqs) reuse it,
// with what DecodedEvent computes once (patient keys, type name).
//
// One slot per seq modulo `slots` holds the last event decoded there. A hit must match the seq and
// the stored bytes exactly, so the cache saves parsing and nothing else: every session still reads
// the store, and an event the store no longer holds (retention) is never read, hence never served.
//
// Thread-safety: the delivery thread only. Not thread-safe.

#include <cstdint>
#include <string_view>
#include <vector>

#include "decoded_event.h"

namespace carehub::hub {

class DecodeCache {
 public:
  explicit DecodeCache(size_t slots) : slots_(slots == 0 ? 1 : slots) {}

  // `stored` (the event log's record of `seq`) decoded; null when it is not a v1::Event (nothing
  // of such a record can be disclosed). Valid until the next Decode of a seq sharing its slot.
  const DecodedEvent* Decode(uint64_t seq, std::string_view stored);

  // Decodes that found their event already decoded, and those that parsed (delivery_test checks
  // the hit rules with them).
  uint64_t hits() const { return hits_; }
  uint64_t parses() const { return parses_; }

 private:
  std::vector<DecodedEvent> slots_;
  uint64_t hits_ = 0;
  uint64_t parses_ = 0;
};

}  // namespace carehub::hub
