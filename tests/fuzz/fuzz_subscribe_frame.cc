// What the hub does with a stream of frames from a subscriber (DESIGN §6): decode each, then the
// session arithmetic they drive (start point, credit, cursor). The input is split into frames by
// a one-byte length prefix, so one input is a whole conversation.
//
// Invariants: a session starts at hub_seq >= 1; credit never exceeds the cap; the cursor never
// moves back and never passes what the session has examined; a decoded frame re-encodes.

#include <algorithm>
#include <optional>

#include "carehub/hub/frame_decode.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using carehub::hub::SubscribeFrameDecision;
  carehub::fuzz::Bytes in(data, size);
  // The store's state the conversation runs against.
  carehub::hub::SubscribeStartInputs store;
  const uint8_t state = in.Byte();
  store.first_seq = 1 + (state & 0x0f);
  store.head_seq = store.first_seq + (state >> 4) * 100;
  if (state & 0x80) {
    store.stored_cursor = store.first_seq + 7;
  }
  bool subscribed = false;
  uint64_t next_seq = 0;
  uint64_t cursor = 0;
  uint64_t credit = 0;

  std::string_view rest = in.rest();
  while (!rest.empty()) {
    size_t len = std::min<size_t>(static_cast<uint8_t>(rest.front()), rest.size() - 1);
    std::string_view payload = rest.substr(1, len);
    rest.remove_prefix(1 + len);
    SubscribeFrameDecision d = carehub::hub::DecodeSubscribeFrame(payload);
    if (d.action != SubscribeFrameDecision::Action::kMalformed) {
      CAREHUB_FUZZ_CHECK(d.frame.version() == carehub::v1::PROTOCOL_VERSION_1, "version");
      carehub::fuzz::CheckReencodes(d.frame);
    }
    switch (d.action) {
      case SubscribeFrameDecision::Action::kSubscribe: {
        CAREHUB_FUZZ_CHECK(d.frame.has_subscribe(), "subscribe kind");
        std::optional<uint64_t> start = carehub::hub::ResolveSubscribeStart(
            d.frame.subscribe(), store, [&](int64_t) { return store.head_seq + 1; });
        if (!start) {
          break;  // refused: unknown start mode
        }
        CAREHUB_FUZZ_CHECK(*start >= 1, "a session starts at hub_seq 1 or later");
        subscribed = true;
        next_seq = *start;
        cursor = store.stored_cursor.value_or(*start - 1);
        credit = carehub::hub::AddCredit(0, d.frame.subscribe().initial_credit());
        break;
      }
      case SubscribeFrameDecision::Action::kCredit:
        CAREHUB_FUZZ_CHECK(d.frame.has_credit(), "credit kind");
        if (subscribed) {
          credit = carehub::hub::AddCredit(credit, d.frame.credit().events());
          // The hub examines events as credit allows; let the session make some progress.
          next_seq += std::min<uint64_t>(credit, 3);
        }
        break;
      case SubscribeFrameDecision::Action::kAck:
        CAREHUB_FUZZ_CHECK(d.frame.has_ack(), "ack kind");
        if (subscribed) {
          std::optional<uint64_t> moved =
              carehub::hub::AdvanceCursor(d.frame.ack().up_to_seq(), next_seq, cursor);
          if (moved) {
            CAREHUB_FUZZ_CHECK(*moved > cursor, "cursor moved back");
            CAREHUB_FUZZ_CHECK(*moved < next_seq, "cursor passed what was examined");
            CAREHUB_FUZZ_CHECK(*moved <= d.frame.ack().up_to_seq(), "cursor passed the ack");
            cursor = *moved;
          }
        }
        break;
      case SubscribeFrameDecision::Action::kHeartbeat:
        CAREHUB_FUZZ_CHECK(d.frame.has_heartbeat(), "heartbeat kind");
        break;
      case SubscribeFrameDecision::Action::kMalformed:
      case SubscribeFrameDecision::Action::kUnexpectedKind:
        break;
    }
    CAREHUB_FUZZ_CHECK(credit <= carehub::hub::kMaxSubscribeCredit, "credit over the cap");
  }
  return 0;
}
