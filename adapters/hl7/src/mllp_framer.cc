#include "carehub/adapters/hl7/mllp_framer.h"

namespace carehub::adapters::hl7 {

size_t MllpFramer::Feed(std::string_view bytes,
                        const std::function<bool(const MllpFrame&)>& on_frame) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    switch (state_) {
      case State::kAfterEnd:
        state_ = State::kOutside;
        if (c == kMllpCarriageReturn) {
          break;
        }
        [[fallthrough]];
      case State::kOutside:
        if (c == kMllpStartBlock) {
          state_ = State::kInside;
        } else {
          ++discarded_;
        }
        break;
      case State::kInside:
        if (c == kMllpEndBlock) {
          // The trailing CR is optional in practice; consumed when present.
          state_ = State::kAfterEnd;
          bool more = on_frame(MllpFrame{frame_, frame_bytes_, oversized_});
          frame_.clear();
          frame_bytes_ = 0;
          oversized_ = false;
          if (!more) {
            return i + 1;
          }
        } else if (c == kMllpStartBlock) {
          // The sender restarted: the partial frame is abandoned.
          discarded_ += frame_bytes_;
          frame_.clear();
          frame_bytes_ = 0;
          oversized_ = false;
        } else {
          ++frame_bytes_;
          if (frame_bytes_ > max_message_bytes_) {
            oversized_ = true;
          }
          if (!oversized_ || frame_.size() < oversized_prefix_bytes_) {
            frame_.push_back(c);
          }
        }
        break;
    }
  }
  return bytes.size();
}

}  // namespace carehub::adapters::hl7
