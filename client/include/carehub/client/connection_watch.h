#pragma once
// Why a hub is silent, as this client's own socket saw it. A ZeroMQ client that gets no answer
// cannot tell a stopped hub from a refused key: the DEALER just waits. ZeroMQ's socket monitor
// can: it reports the TCP connection and how the security handshake ended (the hub's ZAP handler
// refused the key; the mechanisms differ, plain against CURVE; the handshake broke off, as it does
// when the client has the wrong server key). ConnectionWatch reads those events so an error
// ("no answer within 5000 ms") can name the likely cause, and an adapter can log and show it.
// The hub's subscribe server uses disconnects() on its ROUTER to notice at once that a subscriber
// has gone (the state and Explain() describe a client's one connection and mean little there).
//
// Ownership: watches a socket it does not own. Create it before the socket connects (so no event
// is missed) and destroy it before that socket is closed (the destructor stops the monitor on the
// socket). Both must live in `context`. Not thread-safe: use it on the socket's own thread.

#include <cstdint>
#include <memory>
#include <string>

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace carehub::client {

enum class LinkState {
  kNoConnection,        // no TCP connection yet: nothing listening, wrong host/port, firewall
  kConnected,           // TCP up, handshake not finished (yet)
  kHandshakeSucceeded,  // the hub let us in
  kKeyRefused,          // the hub's ZAP handler refused our key (ZAP status in value())
  kMechanismMismatch,   // plain client and CURVE hub, or the reverse
  kHandshakeFailed,     // the handshake broke off (CURVE: most likely the wrong server key)
};

class ConnectionWatch {
 public:
  // Starts monitoring `socket`. If the monitor cannot be set up, state() stays kNoConnection
  // and Explain() says nothing beyond the endpoint.
  ConnectionWatch(zmq::context_t& context, zmq::socket_t& socket, std::string endpoint);
  ~ConnectionWatch();
  ConnectionWatch(const ConnectionWatch&) = delete;
  ConnectionWatch& operator=(const ConnectionWatch&) = delete;

  // Reads the events that have arrived, without blocking. True when the state changed.
  bool Poll();
  LinkState state() const { return state_; }
  uint32_t value() const { return value_; }  // kKeyRefused: the ZAP status (400, 500)
  // Connections of the socket that have closed so far (any peer; a server's ROUTER counts every
  // client that went), for a caller that wants to act on a disconnect at once.
  uint64_t disconnects() const { return disconnects_; }

  // One sentence for an error message or a log line: the likely cause of the hub's silence in
  // the current state. `curve`: whether this client uses CURVE keys.
  std::string Explain(bool curve) const;

 private:
  void* watched_ = nullptr;  // the monitored socket's handle (not owned)
  std::unique_ptr<zmq::socket_t> monitor_;
  std::string endpoint_;
  LinkState state_ = LinkState::kNoConnection;
  uint32_t value_ = 0;
  bool ever_connected_ = false;
  uint64_t disconnects_ = 0;
};

}  // namespace carehub::client
