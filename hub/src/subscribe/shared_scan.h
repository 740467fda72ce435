#pragma once
// One read of the event log for several sessions whose positions are close (private to hub/src).
//
// Broad subscriptions read the log in order (log_reader.h, log scan). Alone, each of N such
// sessions at the head read and parsed every new event itself: N reads and, past the decode
// cache's reach, N parses per event (perf, fan-out bench: ~4.5 parses per accepted event, 42% of
// the delivery thread). Here the log is read once from the lowest member's position and each event
// is decoded once and offered, in seq order, to every member whose position it has reached.
//
// The members read on together: when one member's batch fills at the round's cap (not at its
// credit), the scan ends at that seq for all of them, so that they all resume from the same seq
// next round instead of drifting apart (a broad member fills in fewer seqs than a narrow one;
// apart, they would no longer share a read). A member that fills at its credit just drops out.
//
// Errors: a failed read of the store is returned; the members' scanned_to are then meaningless
// and the caller must move none of them (reading again from the same positions is safe).
//
// Thread-safety: the delivery thread only (the decode cache is its own). Store reads are
// thread-safe.

#include <cstdint>
#include <functional>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/hub/store.h"
#include "decode_cache.h"
#include "log_reader.h"

namespace carehub::hub {

struct ScanMember {
  uint64_t from = 1;  // the first seq this member reads
  // Takes one decoded event; false when the member takes nothing more this round.
  std::function<bool(const DecodedEvent&)> take;
  // When `take` says "no more", the member's batch is full at the round's cap: the scan ends there
  // for every member (see above). False for a member limited by its credit.
  bool full_ends_scan = false;
  // Out: every event of [from, scanned_to] was offered to this member (from - 1 when none).
  uint64_t scanned_to = 0;
};

// Reads the log from the lowest member's `from` to `head` once (at most `max_examined` records,
// log_reader.h's ScanLog), passing each event (decoded once through `decoded`) to every member
// whose `from` it has reached and that still takes events, in seq order. Records that are not
// events are skipped for all. `members` must be sorted by `from`.
Status ScanTogether(const Store& store, DecodeCache& decoded, std::vector<ScanMember>& members,
                    uint64_t head, uint32_t max_examined);

}  // namespace carehub::hub
