#include "decoded_event.h"

#include "carehub/core/event_types.h"

namespace carehub::hub {

DecodedEvent::DecodedEvent()
    : arena_block_(new char[kArenaBlockBytes]),
      arena_(arena_block_.get(), kArenaBlockBytes),
      event_(google::protobuf::Arena::CreateMessage<v1::Event>(&arena_)) {}

bool DecodedEvent::Decode(uint64_t seq, std::string_view stored_bytes) {
  Forget();
  stored_.assign(stored_bytes);
  // The previous event (and every pointer into it) ends here: callers hold a DecodedEvent only
  // until the next Decode of its slot (decode_cache.h).
  arena_.Reset();
  event_ = google::protobuf::Arena::CreateMessage<v1::Event>(&arena_);
  if (!event_->ParseFromString(stored_)) {
    stored_.clear();
    return false;
  }
  seq_ = seq;
  return true;
}

void DecodedEvent::Forget() {
  seq_ = 0;
  stored_.clear();
  keys_known_ = false;
  patient_keys_.clear();
  type_name_.clear();
  sources_ = {};
}

const std::vector<std::string>& DecodedEvent::PatientKeys(const PatientHasher& patients) const {
  if (!keys_known_) {
    patients.KeysOf(*event_, &patient_keys_);
    keys_known_ = true;
  }
  return patient_keys_;
}

const policy::EventSources& DecodedEvent::SourcesFor(const policy::PolicySet& policy) const {
  if (sources_.policy_id != policy.id()) {
    sources_ = policy.SourcesOf(*event_);
  }
  return sources_;
}

const std::string& DecodedEvent::TypeName() const {
  if (type_name_.empty()) {
    type_name_ = EventTypeName(*event_);
  }
  return type_name_;
}

}  // namespace carehub::hub
