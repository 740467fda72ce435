#include "carehub/client/connection_watch.h"

#include <zmq.h>

#include <atomic>
#include <cstring>
#include <zmq.hpp>

namespace carehub::client {

ConnectionWatch::ConnectionWatch(zmq::context_t& context, zmq::socket_t& socket,
                                 std::string endpoint)
    : endpoint_(std::move(endpoint)) {
  // inproc names are per context; a counter keeps two watches (or a reconnect's new socket)
  // apart.
  static std::atomic<uint64_t> next{0};
  const std::string address = "inproc://carehub-connection-watch-" + std::to_string(next++);
  constexpr int kEvents = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                          ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                          ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                          ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
  if (zmq_socket_monitor(socket.handle(), address.c_str(), kEvents) != 0) {
    return;
  }
  watched_ = socket.handle();
  try {
    monitor_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
    monitor_->set(zmq::sockopt::linger, 0);
    monitor_->connect(address);
  } catch (const zmq::error_t&) {
    monitor_.reset();
    (void)zmq_socket_monitor(watched_, nullptr, 0);
    watched_ = nullptr;
  }
}

ConnectionWatch::~ConnectionWatch() {
  // Stop the monitor before its PAIR goes: libzmq would otherwise send events to an endpoint
  // nobody reads.
  if (watched_ != nullptr) {
    (void)zmq_socket_monitor(watched_, nullptr, 0);
  }
}

bool ConnectionWatch::Poll() {
  if (!monitor_) {
    return false;
  }
  const LinkState before = state_;
  for (int n = 0; n < 1000; ++n) {
    // A monitor event is two frames: 2 bytes event id + 4 bytes value, then the endpoint.
    zmq::message_t event;
    zmq::message_t address;
    try {
      if (!monitor_->recv(event, zmq::recv_flags::dontwait)) {
        break;
      }
      (void)monitor_->recv(address);
    } catch (const zmq::error_t&) {
      break;
    }
    if (event.size() < 6) {
      continue;
    }
    uint16_t id = 0;
    uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof(value));
    switch (id) {
      case ZMQ_EVENT_CONNECTED:
        ever_connected_ = true;
        // A reconnect after a refusal keeps the refusal: it is still the reason for silence.
        if (state_ == LinkState::kNoConnection || state_ == LinkState::kHandshakeSucceeded) {
          state_ = LinkState::kConnected;
        }
        break;
      case ZMQ_EVENT_DISCONNECTED:
        ++disconnects_;
        // Connected, then dropped without a handshake outcome: the hub broke the handshake off.
        if (state_ == LinkState::kConnected) {
          state_ = LinkState::kHandshakeFailed;
        } else if (state_ == LinkState::kHandshakeSucceeded) {
          state_ = LinkState::kNoConnection;
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        state_ = LinkState::kHandshakeSucceeded;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        state_ = LinkState::kKeyRefused;
        value_ = value;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        state_ = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? LinkState::kMechanismMismatch
                                                                     : LinkState::kHandshakeFailed;
        value_ = value;
        break;
      default:  // ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        state_ = LinkState::kHandshakeFailed;
        value_ = value;
        break;
    }
  }
  return state_ != before;
}

std::string ConnectionWatch::Explain(bool curve) const {
  switch (state_) {
    case LinkState::kNoConnection:
      return ever_connected_ ? "the connection to " + endpoint_ + " dropped and is not back"
                             : "nothing accepted a connection at " + endpoint_ +
                                   ": is the hub running, and are the host and port right?";
    case LinkState::kConnected:
      return "connected to " + endpoint_ + " but the handshake has not finished";
    case LinkState::kHandshakeSucceeded:
      return "connected to " + endpoint_ +
             " and let in, but no answer came: is this the right endpoint (ingest and subscribe "
             "are different ports), and is the hub the primary?";
    case LinkState::kKeyRefused:
      return "the hub at " + endpoint_ + " refused this client's CURVE key (ZAP status " +
             std::to_string(value_) +
             "): is its public key in the hub's identities file, and was the hub reloaded?";
    case LinkState::kMechanismMismatch:
      return curve ? "the hub at " + endpoint_ +
                         " does not use CURVE on this endpoint: drop the client keys, or use the "
                         "hub's CURVE endpoint"
                   : "the hub at " + endpoint_ +
                         " requires CURVE: give the client key file and the hub's public key "
                         "(--key and --server-key)";
    case LinkState::kHandshakeFailed:
      return curve ? "the CURVE handshake with " + endpoint_ +
                         " failed: the server key given is most likely not this hub's public key "
                         "(or the client key file is damaged)"
                   : "the handshake with " + endpoint_ + " failed";
  }
  return "";
}

}  // namespace carehub::client
