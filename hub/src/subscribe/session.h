#pragma once
// One subscriber connection's state on the subscribe endpoint (private to hub/src): what it has
// examined, acknowledged and may still receive, and when it was last heard from or sent to.
//
// The protocol's state machine, by message:
//   Subscribe  -> a new Session (SubscribeServer::HandleSubscribe); replaces any other session of
//                 the same subscription
//   Credit     -> OnCredit: more events may be sent; a blocked peer has room again
//   Ack        -> OnAck: the cursor moves (never past what was examined), then is stored
//   Heartbeat  -> last_heard only
//   silence past the subscriber timeout, a send to a vanished peer, or the subscription's removal
//              -> the session is dropped (Expire / SubscribeServer::Run)
//
// Owned by the SubscribeServer's sessions map; used only on its delivery thread. Not thread-safe.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "carehub/hub/frame_decode.h"
#include "carehub/metrics/registry.h"
#include "log_reader.h"

namespace carehub::hub {

struct Session {
  using Steady = std::chrono::steady_clock;

  std::string routing_id;
  std::string identity;  // CURVE identity; empty on a plain connection
  std::string subscription;
  std::string subscriber;
  uint64_t next_seq = 1;  // next hub_seq to examine
  uint64_t cursor = 0;    // acknowledged
  uint64_t credit = 0;
  Steady::time_point last_heard;
  Steady::time_point last_sent;
  Steady::time_point last_progress_sent;
  // After a refused send (the subscriber's queue is full: it does not read) or a failed read of the
  // store, the next attempt waits, doubling from 50 ms to 5 s: each attempt rescans the log (and,
  // for a send, audits a disclosure).
  Steady::time_point blocked_until;
  std::chrono::milliseconds blocked_backoff{0};
  std::string notice_code;  // the notice last sent, so it is sent once
  ReadPlan plan;            // which part of the log to read; see log_reader.h
  metrics::Counter* delivered_counter = nullptr;

  void OnCredit(uint64_t events) {
    credit = AddCredit(credit, events);
    // Credit comes as the subscriber consumes: its queue has room again.
    blocked_until = Steady::time_point{};
    blocked_backoff = std::chrono::milliseconds(0);
  }

  // The cursor an Ack moves to, or empty when it moves nothing.
  std::optional<uint64_t> OnAck(uint64_t up_to_seq) {
    auto up_to = AdvanceCursor(up_to_seq, next_seq, cursor);
    if (up_to) {
      cursor = *up_to;
    }
    return up_to;
  }

  void BackOff() {
    blocked_backoff = std::clamp(blocked_backoff * 2, std::chrono::milliseconds(50),
                                 std::chrono::milliseconds(5000));
    blocked_until = Steady::now() + blocked_backoff;
  }

  // Ends the session at the next sweep of SubscribeServer::Run (it checks last_heard).
  void Expire() {
    credit = 0;
    last_heard = Steady::time_point{};
  }
  bool expired() const { return last_heard == Steady::time_point{}; }

  // Whether a delivery round is worth running now.
  bool WantsEvents(uint64_t head) const {
    return credit > 0 && next_seq <= head && Steady::now() >= blocked_until;
  }
};

}  // namespace carehub::hub
