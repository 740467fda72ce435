#pragma once
// The small HTTP face a carehub side process (an adapter, carehub-sink) shows its operators and
// Prometheus:
//   GET /healthz         200 "ok" while healthy, else 503 with the reason; a further line
//                        "warning: ..." when `warning` says something is wrong downstream (an
//                        adapter's hub not answering, its key refused): still 200, since the
//                        source is still served into the durable outbox and a restart would not
//                        help
//   GET /metrics         the registry in Prometheus text format (registry.h)
//   GET /api/v1/status   a JSON document from the status callback ("{}" without one)
// With a bearer token every request must carry "Authorization: Bearer <token>" (401 otherwise);
// the processes' configs refuse a non-loopback listen address without one. (The hub's own admin
// server, hub/src/admin_server.cc, serves much more and is separate.)
//
// Start/Stop from one owning thread; the callbacks run on the server's threads and must be
// thread-safe. Stop (also run by the destructor) joins the server thread. Move-less, copy-less.

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

namespace carehub::metrics {

struct AdminHttpOptions {
  // "HOST:PORT"; port 0 picks an ephemeral port (read it back with port()).
  std::string listen = "127.0.0.1:0";
  std::string bearer_token;
  // Empty string: healthy; otherwise why not (the 503 body). Unset: always healthy.
  std::function<std::string()> unhealthy_reason;
  std::function<std::string()> warning;  // empty: nothing to warn about
  std::function<std::string()> status_json;
};

class AdminHttpServer {
 public:
  // `registry` is not owned and must outlive the server.
  AdminHttpServer(AdminHttpOptions options, Registry* registry);
  ~AdminHttpServer();
  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  // Binds and starts serving. Error codes "invalid_address", "bind_failed".
  Status Start();
  void Stop();
  uint16_t port() const { return port_; }

 private:
  AdminHttpOptions options_;
  Registry* registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace carehub::metrics
