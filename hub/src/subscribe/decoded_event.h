#pragma once
// One stored event as the delivery path considers it (private to hub/src): its bytes as stored,
// parsed once, and what every session that delivers it needs from it, computed at most once (the
// keys of the patients it concerns, its type's name). The DecodeCache (decode_cache.h) shares one
// DecodedEvent between the sessions that read the same event.
//
// Thread-safety: used on the delivery thread only. Not thread-safe (the accessors fill caches).

#include <google/protobuf/arena.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/hub/store/disclosure_index.h"
#include "carehub/policy/policy_set.h"
#include "carehub/v1/event.pb.h"

namespace carehub::hub {

class DecodedEvent {
 public:
  DecodedEvent();
  DecodedEvent(const DecodedEvent&) = delete;
  DecodedEvent& operator=(const DecodedEvent&) = delete;

  // Parses `stored_bytes` (a record of the event log). False when they are not a v1::Event (the
  // offline check reports such a record, and nothing of it can be disclosed); it then holds no
  // event (seq() 0: hub_seq starts at 1).
  bool Decode(uint64_t seq, std::string_view stored_bytes);

  uint64_t seq() const { return seq_; }
  // As stored: a serialized v1::Event (canonical bytes + hub fields, store/event_codec.h). An
  // identifiable view delivers these bytes as they are.
  const std::string& stored() const { return stored_; }
  const v1::Event& event() const { return *event_; }

  // The disclosure index's keys of the patients the event concerns (PatientHasher::KeysOf). A
  // store's hasher never changes, so the first call's answer holds for every later one.
  const std::vector<std::string>& PatientKeys(const PatientHasher& patients) const;
  // EventTypeName(event()).
  const std::string& TypeName() const;
  // policy.SourcesOf(event()), resolved once per PolicySet (by its id: a reloaded one resolves
  // again) for every session that decides this event.
  const policy::EventSources& SourcesFor(const policy::PolicySet& policy) const;

 private:
  void Forget();

  uint64_t seq_ = 0;
  std::string stored_;
  // The parsed event lives on arena_, which is reset before each parse. A reused heap-allocated
  // v1::Event freed and allocated again every sub-message and string on each parse (proto3's
  // Clear deletes sub-messages): malloc/free and the destructors were ~40% of the delivery thread
  // (callgrind, fan-out bench). The first block is ours and kept across resets, so an event that
  // fits in it is parsed without a heap allocation for its messages (strings over 15 bytes still
  // allocate their buffers); a larger event's extra blocks are freed at the next reset.
  static constexpr size_t kArenaBlockBytes = 8 << 10;
  std::unique_ptr<char[]> arena_block_;
  google::protobuf::Arena arena_;
  v1::Event* event_;  // on arena_; never null
  mutable bool keys_known_ = false;
  mutable std::vector<std::string> patient_keys_;
  mutable std::string type_name_;
  mutable policy::EventSources sources_;  // policy_id 0 until resolved
};

}  // namespace carehub::hub
