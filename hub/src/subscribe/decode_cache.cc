#include "decode_cache.h"

namespace carehub::hub {

const DecodedEvent* DecodeCache::Decode(uint64_t seq, std::string_view stored) {
  DecodedEvent& slot = slots_[seq % slots_.size()];
  if (slot.seq() == seq && slot.stored() == stored) {
    ++hits_;
    return &slot;
  }
  ++parses_;
  // A record that does not parse leaves the slot empty: a later read parses (and fails) again.
  return slot.Decode(seq, stored) ? &slot : nullptr;
}

}  // namespace carehub::hub
