#pragma once
// carehub-sink's HTTP face for operators and Prometheus:
//   GET /healthz   200 "ok" while PostgreSQL and the hub are both reachable, else 503 with why
//   GET /metrics   the registry in Prometheus text format (metrics/registry.h)
//   GET /api/v1/status   JSON from the status callback (position, head, lag, rate)
// With a bearer token every request must carry "Authorization: Bearer <token>" (401 otherwise);
// the config refuses a non-loopback listen address without one.
//
// The same shape as the adapters' admin server (adapters/common/admin_http.h); a copy rather
// than a dependency, because the adapters are an optional part of the build
// (CAREHUB_WITH_ADAPTERS) and the sink must not need them.
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

namespace carehub::sink {

struct AdminHttpOptions {
  std::string listen = "127.0.0.1:0";
  std::string bearer_token;
  // Empty string: healthy; otherwise the reason it is not.
  std::function<std::string()> unhealthy_reason;
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

}  // namespace carehub::sink
