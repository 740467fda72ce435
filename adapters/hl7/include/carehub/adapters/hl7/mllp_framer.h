#pragma once
// Splits an MLLP byte stream (0x0B <message> 0x1C, then an optional 0x0D) into messages. Transport
// free: the listener feeds it whatever recv() returned, in any chunk sizes, and the fuzzer
// (tests/fuzz) feeds it arbitrary streams. The messages found do not depend on how the stream was
// chunked.
//
// Untrusted input: bytes outside frames are discarded and counted; a 0x0B inside a frame means the
// sender restarted, so the partial frame is abandoned and its bytes counted as discarded; a
// message over `max_message_bytes` is reported as oversized with only its first
// `oversized_prefix_bytes` kept (enough to read its MSH), so memory stays bounded.
//
// Not thread-safe: one framer per connection.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace carehub::adapters::hl7 {

inline constexpr char kMllpStartBlock = 0x0B;
inline constexpr char kMllpEndBlock = 0x1C;
inline constexpr char kMllpCarriageReturn = 0x0D;
// Bytes of an oversized message kept to read its MSH from.
inline constexpr size_t kMllpOversizedPrefixBytes = 64 * 1024;

struct MllpFrame {
  std::string_view data;  // the message, or its kept prefix when oversized; valid in the callback
  size_t bytes = 0;       // the message's full size, including bytes not kept
  bool oversized = false;
};

class MllpFramer {
 public:
  explicit MllpFramer(size_t max_message_bytes,
                      size_t oversized_prefix_bytes = kMllpOversizedPrefixBytes)
      : max_message_bytes_(max_message_bytes), oversized_prefix_bytes_(oversized_prefix_bytes) {}

  // Consumes `bytes`, calling `on_frame` for each complete message. When `on_frame` returns false
  // (the connection is closing) the rest of `bytes` is left unread. Returns the bytes consumed.
  size_t Feed(std::string_view bytes, const std::function<bool(const MllpFrame&)>& on_frame);

  // Bytes discarded (outside frames, abandoned partial frames) since the last call.
  uint64_t TakeDiscarded() {
    uint64_t n = discarded_;
    discarded_ = 0;
    return n;
  }

 private:
  enum class State { kOutside, kInside, kAfterEnd };
  const size_t max_message_bytes_;
  const size_t oversized_prefix_bytes_;
  State state_ = State::kOutside;
  std::string frame_;
  size_t frame_bytes_ = 0;  // bytes of the current frame, including ones not kept when oversized
  bool oversized_ = false;
  uint64_t discarded_ = 0;
};

}  // namespace carehub::adapters::hl7
