#pragma once
// A scripted hub for the client library's tests: a real ZeroMQ ROUTER on loopback (port 0) that
// speaks the wire protocol as each test directs. One peer; not thread-safe.

#include <chrono>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "carehub/v1/wire.pb.h"

namespace carehub::client {

using std::chrono::milliseconds;

class ScriptedHub {
 public:
  ScriptedHub() : socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:0");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Waits for the next Subscribe (skipping heartbeats, credit and acks) and answers Subscribed;
  // returns the Subscribe.
  std::optional<v1::Subscribe> AnswerSubscribe(milliseconds timeout = milliseconds(10'000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto frame = Receive(milliseconds(50));
      if (!frame || !frame->has_subscribe()) {
        continue;
      }
      v1::Frame reply;
      reply.set_version(v1::PROTOCOL_VERSION_1);
      reply.mutable_subscribed()->set_subscription(frame->subscribe().subscription());
      Send(reply);
      return frame->subscribe();
    }
    return std::nullopt;
  }

  // The next frame from the subscriber within `timeout`, whatever it is; its sender becomes the
  // peer that deliveries go to.
  std::optional<v1::Frame> Receive(milliseconds timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, timeout);
    if (!(item.revents & ZMQ_POLLIN)) {
      return std::nullopt;
    }
    zmq::message_t identity;
    zmq::message_t payload;
    if (!socket_.recv(identity) || !socket_.recv(payload)) {
      return std::nullopt;
    }
    v1::Frame frame;
    if (!frame.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return std::nullopt;
    }
    peer_ = identity.to_string();
    return frame;
  }

  // One delivery of `count` events, hub_seqs first_seq.. onwards.
  void DeliverEvents(uint64_t epoch, uint64_t first_seq, uint64_t count) {
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    auto* d = frame.mutable_delivery();
    d->set_epoch(epoch);
    d->set_scanned_to_seq(first_seq + count - 1);
    d->set_head_seq(first_seq + count - 1);
    for (uint64_t seq = first_seq; seq < first_seq + count; ++seq) {
      auto* e = d->add_events()->mutable_event()->mutable_envelope();
      e->set_hub_seq(seq);
      e->set_event_id("ev-" + std::to_string(seq));
    }
    Send(frame);
  }

  // One delivery of the one event `hub_seq`.
  void Deliver(uint64_t epoch, uint64_t hub_seq) { DeliverEvents(epoch, hub_seq, 1); }

 private:
  void Send(const v1::Frame& frame) {
    const std::string bytes = frame.SerializeAsString();
    socket_.send(zmq::buffer(peer_), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
  }

  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
  std::string peer_;
};

}  // namespace carehub::client
