#pragma once
// The dedup keys of batches prepared but not yet committed, each with the hub_seq and content
// hash it was accepted with. IngestPipeline looks here before the store: a resend that arrives
// while its original is still on its way to the disk is found here, not missed.
//
// Every event the hub accepts is looked up, claimed and released here once, so this is a flat
// (open-addressing) table of views, not a node per key: profiled on the ingest thread, the
// std::unordered_map<std::string, ...> it replaces spent 14% of the thread walking its buckets.
//
// Ownership: the table holds views, not copies. A claimed key's bytes are moved into the owner
// given to Claim() (a batch's PreparedBatch::pending_keys, a deque, so they never move while the
// batch lives); the owner must keep them until Release() has been called with them, or until
// Clear().
//
// Thread safety: none; one ingest thread owns it.

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "carehub/hub/store/event_codec.h"

namespace carehub::hub {

class PendingKeys {
 public:
  struct Entry {
    uint64_t hub_seq;
    ContentHash hash;
    // The stored record the key was accepted with, for a resend whose bytes differ
    // (IngestPipeline compares the events then); owned by the claiming batch like the key.
    // nullptr for an entry read from the store.
    const std::string* record = nullptr;
  };

  // The entry `key` was claimed with, if a batch in flight claimed it.
  std::optional<Entry> Find(std::string_view key) const;

  // Claims `key` for `mine` unless it is claimed already: then nothing changes and the earlier
  // claim's entry is returned. On success the key's bytes are moved to the back of `owner`
  // (*key is left empty) and std::nullopt is returned.
  std::optional<Entry> Claim(std::string* key, const Entry& mine, std::deque<std::string>* owner);

  // Forgets the claims of `keys` (a batch's owner deque, once its batch is committed).
  void Release(const std::deque<std::string>& keys);

  // Forgets every claim (the store refused a write: the pipeline starts again from the store).
  void Clear() { map_.clear(); }

  size_t size() const { return map_.size(); }

 private:
  absl::flat_hash_map<std::string_view, Entry> map_;
};

}  // namespace carehub::hub
