#pragma once
// What a standby says on the ingest and subscribe endpoints (docs/replication.md): every frame is
// answered with the error "not_primary", naming the primary's endpoint of the same kind, so a
// client configured with both hubs moves to the primary at once instead of waiting out a timeout.
// Nothing is read from or written to the store.
//
// Binds both endpoints like the primary would (CURVE with the same ZAP domains, so a client's
// handshake succeeds and it can read the answer). One thread of its own.
//
// Thread-safety: Bind/Start/Stop from the owner.

#include <atomic>
#include <string>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "carehub/core/status.h"
#include "carehub/metrics/registry.h"

namespace carehub::hub {

struct NotPrimaryOptions {
  std::string ingest_endpoint;
  std::string subscribe_endpoint;
  std::string curve_secret_key;  // empty: plain
  std::string primary_ingest;    // named in the answers ("" when unknown)
  std::string primary_subscribe;
};

class NotPrimaryResponder {
 public:
  NotPrimaryResponder(zmq::context_t& context, NotPrimaryOptions options,
                      metrics::Registry* metrics);
  ~NotPrimaryResponder();

  // Binds both sockets; "bind_failed" names the endpoint.
  Status Bind();
  void Start();
  void Stop();

 private:
  void Run();
  void Answer(zmq::socket_t& socket, bool ingest);

  NotPrimaryOptions options_;
  zmq::socket_t ingest_;
  zmq::socket_t subscribe_;
  metrics::Counter& answered_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace carehub::hub
