#pragma once
// The admin HTTP API (DESIGN §8), on cpp-httplib: /healthz, /readyz, /metrics, /api/v1/status,
// quarantine list/show/replay/resolve/dismiss, reload (agreements and identities), audit query,
// trace / disclosures / browse / reveal (admin_inquiry.cc), and the status page at /. Binds to
// loopback by default. With a token (admin.token_file, required on any other address, allowed on
// loopback too) every endpoint but /healthz and /readyz needs "Authorization: Bearer <token>" (the
// token read from a file at start).
//
// Everything it reads is thread-safe (store, metrics, status snapshots); httplib serves requests on
// its own worker threads.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "carehub/core/status.h"
#include "carehub/hub/identities.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "ingest_server.h"
#include "key_use.h"
#include "policy_holder.h"
#include "reload_report.h"
#include "subscribe_server.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace carehub::hub {

struct AdminContext {
  Store* store = nullptr;
  metrics::Registry* metrics = nullptr;
  IngestPipeline* pipeline = nullptr;
  IngestServer* ingest = nullptr;
  SubscribeServer* subscribe = nullptr;
  const std::atomic<uint64_t>* committed_seq = nullptr;
  // Reloads agreements and identities (Hub::Reload); the report says what each file changed.
  std::function<ReloadReport()> reload;
  // Extra readiness condition (endpoints bound); the store's health is checked here.
  std::function<bool()> endpoints_bound;
  std::string ingest_endpoint;
  std::string subscribe_endpoint;
  // CURVE only (else null): the keys identities use, for the status "keys" list and the
  // carehub_identity_key_last_used_unix_seconds gauge; the identities in force, to say whether a
  // key is still listed.
  const KeyUseTracker* key_use = nullptr;
  const IdentityHolder* identities = nullptr;
  std::string durability;
  // The agreements in force (trace decides with them; reports name subscribers) and this hub's
  // name as printed on reports. Null policy on a standby.
  const PolicyHolder* policy = nullptr;
  std::string hub_name;
  // Replication (docs/replication.md). `role` "primary" or "standby"; a standby has no store,
  // pipeline, ingest or subscribe here (null) and serves only health, metrics, status and the
  // replication routes. `replication_json`: the status's "replication" object (empty without
  // replication). `change_role(to, force)`: queues a promotion ("primary") or demotion.
  std::string role = "primary";
  std::function<std::string()> replication_json;
  std::function<Status(const std::string& to, bool force)> change_role;
};

class AdminServer {
 public:
  AdminServer(std::string listen, std::string bearer_token, AdminContext context);
  ~AdminServer();

  // Binds and starts serving on a background thread; returns "host:port".
  Result<std::string> Start();
  void Stop();

 private:
  void Routes();
  void QuarantineRoutes();
  std::optional<v1::QuarantineRecord> FindQuarantineRecord(const httplib::Request& req,
                                                           httplib::Response& res);
  Result<v1::QuarantineRecord> CloseQuarantineRecord(
      uint64_t id, const std::string& state, const std::string& by, const std::string& note,
      const std::function<void(v1::QuarantineRecord&)>& update = {});
  void AgreementAndAuditRoutes();
  void ReplicationRoutes();
  // Trace, disclosures, browse and reveal (admin_inquiry.cc; docs/operations.md).
  void InquiryRoutes();
  bool standby() const { return ctx_.store == nullptr; }
  std::string StatusJson();

  std::string listen_;
  std::string token_;
  AdminContext ctx_;
  std::unique_ptr<httplib::Server> server_;
  uint64_t refresher_ = 0;  // Registry::AddRefresher handle
  std::thread thread_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  int64_t started_unix_ms_ = 0;
};

}  // namespace carehub::hub
