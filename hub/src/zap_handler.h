#pragma once
// The hub's ZAP handler (ZeroMQ RFC 27): the one place a CURVE connection is let in or refused.
//
// libzmq asks a ZAP handler, over inproc://zeromq.zap.01 in the socket's context, about every
// handshake on a socket that has a ZAP domain. The ingest and subscribe servers set their domains
// (kIngestZapDomain, kSubscribeZapDomain); this handler answers from the identities in force: a
// known key of the right kind for the endpoint gets 200 with User-Id = identity id (which the
// servers read from every message); anything else gets 400, is counted in
// carehub_auth_refused_total{reason} and logged (rate-limited, key fingerprint only).
//
// Start() must run before the CURVE sockets bind: libzmq lets a handshake through when no handler
// is bound. Stop() (or the destructor) must run before the context is closed. Start/Stop are not
// thread-safe; the handler thread reads identities through the thread-safe IdentityHolder.

#include <spdlog/logger.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <zmq.hpp>

#include "carehub/core/status.h"
#include "carehub/hub/identities.h"
#include "carehub/metrics/registry.h"
#include "key_use.h"

namespace carehub::hub {

inline constexpr std::string_view kIngestZapDomain = "carehub-ingest";
inline constexpr std::string_view kSubscribeZapDomain = "carehub-subscribe";
inline constexpr std::string_view kReplicationZapDomain = "carehub-replication";
inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

struct ZapDecision {
  bool allow = false;
  std::string user_id;      // identity id when allowed
  std::string reason;       // metric label when refused: unknown_key, wrong_endpoint, ...
  std::string status_text;  // sent back in the ZAP reply
};

// The decision alone, without sockets: `set` may be null (no identities loaded: refuse all).
ZapDecision DecideZap(const IdentitySet* set, std::string_view domain, std::string_view mechanism,
                      std::string_view z85_public_key);

class ZapHandler {
 public:
  // `key_use` (optional, not owned, must outlive the handler) records each handshake let in; the
  // reply then carries the key's fingerprint as ZAP metadata (kKeyProperty, key_use.h).
  ZapHandler(zmq::context_t& context, const IdentityHolder* identities, metrics::Registry* metrics,
             KeyUseTracker* key_use = nullptr);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Binds the ZAP endpoint and starts the handler thread.
  Status Start();
  void Stop();

 private:
  void Run();
  void Handle(zmq::socket_t& socket);
  void LogRefusal(const std::string& domain, const std::string& address, const std::string& key,
                  const ZapDecision& decision);

  zmq::context_t& context_;
  const IdentityHolder* identities_;
  KeyUseTracker* key_use_ = nullptr;
  metrics::Registry* metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  // Refusal log rate limit (handler thread only).
  int64_t window_start_ms_ = 0;
  int logged_in_window_ = 0;
  uint64_t suppressed_ = 0;
};

// Makes `socket` a CURVE server with `secret_key` (Z85) whose handshakes this handler judges under
// `zap_domain`; does nothing when `secret_key` is empty (plain mode, loopback only). Throws
// zmq::error_t like the socket options it sets: call it where the bind's errors are caught.
void MakeCurveServer(zmq::socket_t& socket, const std::string& secret_key,
                     std::string_view zap_domain);

}  // namespace carehub::hub
