#pragma once
// The HTTP face an adapter shows its operators (and Prometheus):
//   GET /healthz         200 "ok" while the adapter serves its source, else 503; a second line
//                        "warning: ..." when `warning` says something is wrong downstream (the
//                        hub not answering, its key refused): still 200, since the source is
//                        still served into the durable outbox and a restart would not help
//   GET /metrics         the registry in Prometheus text format
//   GET /api/v1/status   a JSON document from the status callback
// With a bearer token configured every request must carry "Authorization: Bearer <token>" (401
// otherwise); the config refuses a non-loopback listen address without one.
//
// Start/Stop from one owning thread; the callbacks run on the server's threads and must be
// thread-safe. Stop (also run by the destructor) joins the server thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "carehub/core/status.h"
#include "carehub/metrics/registry.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace carehub::adapters {

struct AdminHttpOptions {
  // "HOST:PORT"; port 0 picks an ephemeral port (read it back with port()).
  std::string listen = "127.0.0.1:0";
  std::string bearer_token;
  std::function<bool()> healthy;
  std::function<std::string()> warning;  // empty: nothing to warn about
  std::function<std::string()> status_json;
};

class AdminHttpServer {
 public:
  // `registry` is not owned and must outlive the server.
  AdminHttpServer(AdminHttpOptions options, metrics::Registry* registry);
  ~AdminHttpServer();
  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  // Binds and starts serving. Error codes "invalid_address", "bind_failed".
  Status Start();
  void Stop();
  uint16_t port() const { return port_; }

 private:
  AdminHttpOptions options_;
  metrics::Registry* registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace carehub::adapters
