#pragma once
// The HTTP face of carehub-fhir-notify (docs/fhir-notify.md, "Operations"):
//   GET  /healthz                                    200 "ok" while every subscription runs, else
//   503 GET  /metrics                                    the registry, Prometheus text format GET
//   /api/v1/status                              JSON: each subscription's status and numbers GET
//   /fhir/Subscription/{id}/$status             Backport $status: a searchset Bundle GET
//   /fhir/Subscription/{id}/$events?eventsSinceNumber=A&eventsUntilNumber=B&content=C POST
//   /fhir/Subscription/{id}/$events             (same parameters in the query)
// Errors answer a FHIR OperationOutcome: 400 bad parameters, 404 unknown subscription, 503 hub
// unreachable or worker busy. With a token configured every request must carry
// "Authorization: Bearer <token>" (401 otherwise).
//
// Start/Stop from one owning thread; handlers run on httplib's threads and only call the workers'
// thread-safe methods.

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/metrics/registry.h"
#include "carehub/notify/subscription_worker.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace carehub::notify {

class NotifyHttpServer {
 public:
  // Workers and registry are not owned and must outlive the server.
  NotifyHttpServer(std::string listen, std::string token, std::vector<SubscriptionWorker*> workers,
                   metrics::Registry* registry);
  ~NotifyHttpServer();
  NotifyHttpServer(const NotifyHttpServer&) = delete;
  NotifyHttpServer& operator=(const NotifyHttpServer&) = delete;

  // Errors "invalid_address", "bind_failed".
  Status Start();
  void Stop();
  uint16_t port() const { return port_; }

 private:
  std::string listen_;
  std::string token_;
  std::vector<SubscriptionWorker*> workers_;
  metrics::Registry* registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace carehub::notify
