#pragma once
// Helpers for the security integration tests (security_*_test.cc): key pairs and key files, an
// identities file the test can rewrite, a real `carehub` in CURVE mode, a bare CURVE DEALER that
// speaks the wire protocol, and the admin API's metrics and quarantine.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carehub/client/connection_watch.h"
#include "carehub/client/curve.h"
#include "carehub/core/status.h"
#include "carehub/v1/wire.pb.h"
#include "harness/child_process.h"
#include "harness/hub_process.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace carehub::itest::security {

struct KeyPair {
  std::string pub;
  std::string sec;
};
KeyPair NewKeyPair();
// The format `carehubctl keygen` writes and client::ReadKeyFile reads.
void WriteKeyFile(const std::filesystem::path& path, const KeyPair& keys);

// One entry of the identities file.
struct Party {
  std::string id;
  std::string kind;  // publisher | subscriber | operator
  std::vector<std::string> ods;
  std::string subscriber;
  std::vector<KeyPair> keys;
};
std::string IdentitiesYaml(const std::vector<Party>& parties);

// A `carehub` in CURVE mode with the demo agreements (config/agreements.yaml).
class CurveHub {
 public:
  static Result<std::unique_ptr<CurveHub>> Start(const std::string& tag,
                                                 const std::vector<Party>& parties,
                                                 const std::string& log_level = "info",
                                                 const std::string& log_format = "text");
  // Rewrites the identities file (it takes effect at the next Reload()).
  Status WriteIdentities(const std::vector<Party>& parties);
  Status WriteIdentitiesText(const std::string& text);
  // SIGHUP, then waits until the hub has logged the outcome of the identities reload.
  Status Reload(bool expect_applied = true);

  HubProcess& process() { return *hub_; }
  const KeyPair& server_keys() const { return server_; }
  client::CurveClientKeys ClientKeys(const KeyPair& client) const {
    return {client.pub, client.sec, server_.pub};
  }
  // GET on the admin API; empty on no answer.
  std::string AdminGet(const std::string& path) const;
  // Sum of a metric's samples whose label text contains `label_match` (e.g. reason="unknown_key").
  double Metric(const std::string& name, const std::string& label_match = "") const;

 private:
  CurveHub() : keys_dir_("sec-keys") {}
  TempDir keys_dir_;
  KeyPair server_;
  std::unique_ptr<HubProcess> hub_;
};

// A DEALER with optional CURVE keys (none: a plain NULL-mechanism client). Owns its context.
class CurveDealer {
 public:
  CurveDealer(const std::string& endpoint, const std::optional<KeyPair>& keys,
              const std::string& server_public);
  ~CurveDealer();
  CurveDealer(const CurveDealer&) = delete;
  CurveDealer& operator=(const CurveDealer&) = delete;

  Status Send(const v1::Frame& frame);
  // The next frame, or empty after `timeout`.
  Result<std::optional<v1::Frame>> Receive(std::chrono::milliseconds timeout);
  // Publish{events} and wait for its PublishResult (other frames skipped); empty on no answer.
  Result<std::optional<v1::PublishResult>> Publish(const std::vector<v1::Event>& events,
                                                   std::chrono::milliseconds timeout);

  // How the connection's security handshake ended, as ZeroMQ's socket monitor reports it on this
  // (client) side (client::ConnectionWatch): "succeeded"; "refused:<status>" (the hub's ZAP handler
  // denied the key: the hub sent an ERROR with the ZAP status, e.g. 400); "protocol:<code>" (a
  // mechanism mismatch, e.g. a plain client meeting a CURVE hub); "failed" (another protocol error,
  // or the hub closed the connection mid-handshake, e.g. it could not verify the client's key);
  // "none" if nothing within `timeout`. The first refusal is
  // the answer: the client observes it, rather than inferring it from silence.
  std::string WaitForHandshake(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<client::ConnectionWatch> watch_;  // on socket_; reset before it
  uint64_t next_batch_ = 1;
};

}  // namespace carehub::itest::security
