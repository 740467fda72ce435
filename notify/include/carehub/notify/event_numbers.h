#pragma once
// The durable map from a subscription's FHIR event-number to the hub_seq of its event
// (docs/fhir-notify.md, "Event numbers"). Event number n is record n of an append-only file
// (<state_dir>/<fhir_id>.events), each record 16 bytes: hub_seq and hub_seq XOR a fixed mask, both
// little-endian, so a torn or corrupted record is recognised rather than believed.
//
// Why a file and not RocksDB: the map is a dense sequence written by one thread, only ever
// appended, and read by position (number -> record offset) or by binary search (hub_seq, which
// increases with the number). One write and one fdatasync per notification batch is all the
// durability it needs; RocksDB would add a WAL, memtables and compaction for no gain, and a second
// process-wide database lock to manage.
//
// Durability order: Append() returns only after fdatasync, and the caller sends a notification
// only after that, so a number a receiver has seen is never given to another event, and after a
// kill -9 numbering continues from the last durable record (a record torn by the crash was never
// sent, and is cut off at Open).
//
// Thread-safety: Append from one thread (the subscription's worker); Count, HubSeqOf and
// NumberOf from any thread (positional reads of records already durable, plus an atomic count).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::notify {

class EventNumbers {
 public:
  // Opens or creates the file; cuts a torn tail. Errors: "io_error" (cannot open/read/truncate),
  // "corrupt" (a record whose check does not match, or hub_seqs not increasing, before the tail).
  static Result<std::unique_ptr<EventNumbers>> Open(const std::filesystem::path& path);
  ~EventNumbers();
  EventNumbers(const EventNumbers&) = delete;
  EventNumbers& operator=(const EventNumbers&) = delete;

  // Numbers the hub_seqs (strictly increasing, each above the last recorded one) as
  // Count()+1, Count()+2 ...; durable on return. Returns the first new number.
  Result<uint64_t> Append(const std::vector<uint64_t>& hub_seqs);

  // The highest event number given (0 when none).
  uint64_t Count() const { return count_.load(std::memory_order_acquire); }
  // The hub_seq of the last numbered event (0 when none).
  uint64_t LastHubSeq() const { return last_hub_seq_.load(std::memory_order_acquire); }
  // hub_seq of event number `number` (1..Count()).
  Result<uint64_t> HubSeqOf(uint64_t number) const;
  // The number of the event with this hub_seq; empty when it was never numbered.
  Result<std::optional<uint64_t>> NumberOf(uint64_t hub_seq) const;
  // The first number whose hub_seq is > `hub_seq` (Count()+1 when none).
  Result<uint64_t> FirstNumberAfter(uint64_t hub_seq) const;

 private:
  EventNumbers(int fd, uint64_t count, uint64_t last);
  int fd_;
  std::atomic<uint64_t> count_;
  std::atomic<uint64_t> last_hub_seq_;
};

}  // namespace carehub::notify
