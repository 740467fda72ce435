#include "decode_cache.h"

namespace carehub::hub {

const DecodedEvent* DecodeCache::Decode(uint64_t seq, std::string_view stored) {
  DecodedEvent& slot = slots_[seq % slots_.size()];
  if (slot.seq() == seq && slot.stored() == stored) {
    ++hits_;
    return &slot;
  }
  ++parses_;
  if (!slot.Decode(seq, stored)) {
    slot.Forget();  // a later read of these bytes parses (and fails) again
    return nullptr;
  }
  return &slot;
}

}  // namespace carehub::hub
