#pragma once
// A small etcd v3 client over etcd's JSON gateway (HTTP POST /v3/..., keys and values base64),
// for the hub's leader election (cluster/cluster_member.h). The gateway is part of every etcd
// server since 3.3, so this needs only the HTTP and JSON libraries the hub already links, where
// gRPC would add a code generator, a runtime and etcd's protos to the build for five calls.
//
// Endpoints: the client sends to one member and moves to the next on a transport error or a
// timeout (etcd forwards writes to its leader itself). Every call is bounded by
// `request_timeout`: a member that lost quorum does not answer writes, and the caller (the lease
// loop) must get control back in time to step down.
//
// Errors: "etcd_unreachable" (no member answered in time), "etcd_error" (a member answered with
// an error, e.g. a lease that does not exist), "etcd_bad_answer" (undecodable).
//
// Thread-safety: none; one thread owns a client.

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::hub {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

// One comparison of a transaction (etcd's Compare, EQUAL only: what elections need).
struct EtcdCompare {
  enum class Target { kCreateRevision, kModRevision, kValue };
  std::string key;
  Target target = Target::kCreateRevision;
  int64_t revision = 0;  // kCreateRevision / kModRevision (0: the key does not exist)
  std::string value;     // kValue
};

// One operation of a transaction.
struct EtcdOp {
  enum class Kind { kPut, kDelete, kGet };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  int64_t lease = 0;
};

struct EtcdTxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // the store's revision after the transaction
  // For each kGet of the branch that ran: the key, if it exists.
  std::vector<std::optional<EtcdKeyValue>> gets;
};

class EtcdClient {
 public:
  // `endpoints`: "http://host:port" of the members.
  EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds request_timeout);

  // A lease of `ttl_seconds`; its id.
  Result<int64_t> Grant(int64_t ttl_seconds);
  // Renews the lease; the TTL etcd granted (0 when the lease has expired or was revoked).
  Result<int64_t> KeepAlive(int64_t lease);
  Status Revoke(int64_t lease);

  Result<int64_t> Put(const std::string& key, const std::string& value, int64_t lease = 0);
  Result<EtcdTxnResult> Txn(const std::vector<EtcdCompare>& compare,
                            const std::vector<EtcdOp>& success, const std::vector<EtcdOp>& failure);

  // The member last answering (for logs and status).
  const std::string& endpoint() const { return endpoints_[current_]; }

 private:
  // POSTs `request` to `path`, trying each member once starting with the current one; the
  // member's answer, decoded.
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& request);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds request_timeout_;
  size_t current_ = 0;
};

}  // namespace carehub::hub
