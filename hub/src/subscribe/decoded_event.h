#pragma once
// One stored event as the delivery path considers it (private to hub/src): its bytes as stored,
// parsed once, and what every session that delivers it needs from it, computed at most once (the
// keys of the patients it concerns, its type's name). The DecodeCache (decode_cache.h) shares one
// DecodedEvent between the sessions that read the same event.
//
// Thread-safety: used on the delivery thread only. Not thread-safe (the accessors fill caches).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/hub/store/disclosure_index.h"
#include "carehub/v1/event.pb.h"

namespace carehub::hub {

class DecodedEvent {
 public:
  // Parses `stored_bytes` (a record of the event log). False when they are not a v1::Event (the
  // offline check reports such a record, and nothing of it can be disclosed); it then holds no
  // event (seq() 0: hub_seq starts at 1).
  bool Decode(uint64_t seq, std::string_view stored_bytes);

  uint64_t seq() const { return seq_; }
  // As stored: a serialized v1::Event (canonical bytes + hub fields, store/event_codec.h). An
  // identifiable view delivers these bytes as they are.
  const std::string& stored() const { return stored_; }
  const v1::Event& event() const { return event_; }

  // The disclosure index's keys of the patients the event concerns (PatientHasher::KeysOf). A
  // store's hasher never changes, so the first call's answer holds for every later one.
  const std::vector<std::string>& PatientKeys(const PatientHasher& patients) const;
  // EventTypeName(event()).
  const std::string& TypeName() const;

 private:
  void Forget();

  uint64_t seq_ = 0;
  std::string stored_;
  v1::Event event_;
  mutable bool keys_known_ = false;
  mutable std::vector<std::string> patient_keys_;
  mutable std::string type_name_;
};

}  // namespace carehub::hub
