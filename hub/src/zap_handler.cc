#include "zap_handler.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>
#include <zmq_addon.hpp>

#include "carehub/core/log.h"

namespace carehub::hub {
namespace {

// Refusals are logged at most this many times per window; the rest are counted, then summarised.
constexpr int kMaxRefusalLogsPerWindow = 10;
constexpr int64_t kRefusalLogWindowMs = 60'000;
constexpr auto kPollInterval = std::chrono::milliseconds(100);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Every refusal reason DecideZap and the request parser can give, created at 0 at start.
constexpr const char* kRefusalReasons[] = {"unsupported_mechanism", "unknown_domain", "unknown_key",
                                           "wrong_endpoint", "bad_request"};
metrics::Counter& RefusedCounter(metrics::Registry& metrics, const std::string& reason) {
  return metrics.GetCounter("carehub_auth_refused_total", "CURVE handshakes refused, by reason.",
                            {{"reason", reason}});
}

ZapDecision Refuse(std::string reason, std::string text) {
  ZapDecision d;
  d.reason = std::move(reason);
  d.status_text = std::move(text);
  return d;
}

}  // namespace

ZapDecision DecideZap(const IdentitySet* set, std::string_view domain, std::string_view mechanism,
                      std::string_view z85_public_key) {
  if (mechanism != "CURVE") {
    return Refuse("unsupported_mechanism", "only CURVE clients are accepted");
  }
  IdentityKind wanted;
  if (domain == kIngestZapDomain) {
    wanted = IdentityKind::kPublisher;
  } else if (domain == kSubscribeZapDomain) {
    wanted = IdentityKind::kSubscriber;
  } else if (domain == kReplicationZapDomain) {
    wanted = IdentityKind::kReplica;
  } else {
    return Refuse("unknown_domain", "unknown ZAP domain");
  }
  const Identity* who = set ? set->FindByKey(z85_public_key) : nullptr;
  if (!who) {
    return Refuse("unknown_key", "unknown public key");
  }
  if (who->kind != wanted) {
    return Refuse("wrong_endpoint", "this identity may not use this endpoint");
  }
  ZapDecision d;
  d.allow = true;
  d.user_id = who->id;
  d.status_text = "OK";
  return d;
}

ZapHandler::ZapHandler(zmq::context_t& context, const IdentityHolder* identities,
                       metrics::Registry* metrics, KeyUseTracker* key_use)
    : context_(context),
      identities_(identities),
      key_use_(key_use),
      metrics_(metrics),
      // The hub sets up the "security" logger; a test that does not gets spdlog's default one.
      log_(Logger("security")) {
  for (const char* reason : kRefusalReasons) {
    (void)RefusedCounter(*metrics_, reason);
  }
}

ZapHandler::~ZapHandler() { Stop(); }

Status ZapHandler::Start() {
  try {
    socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    socket_.reset();
    return Status::Error("zap_bind_failed",
                         std::string("cannot bind the ZAP handler: ") + e.what());
  }
  // Thread creation orders the socket's set-up before its use on the handler thread.
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void ZapHandler::Stop() {
  stop_.store(true);
  if (thread_.joinable()) {
    thread_.join();
  }
  socket_.reset();
}

void ZapHandler::Run() {
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  while (!stop_.load()) {
    try {
      if (zmq::poll(&item, 1, kPollInterval) > 0) {
        Handle(*socket_);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) {
        return;
      }
      log_->error("ZAP handler: {}", e.what());
    }
  }
}

void ZapHandler::Handle(zmq::socket_t& socket) {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket, std::back_inserter(request), zmq::recv_flags::dontwait)) {
    return;
  }
  // RFC 27: version, request id, domain, address, routing identity, mechanism, credentials...
  std::string request_id = request.size() > 1 ? request[1].to_string() : "";
  ZapDecision decision;
  std::string domain;
  std::string address;
  std::string key;
  if (request.size() < 6 || request[0].to_string_view() != "1.0") {
    decision = Refuse("bad_request", "malformed ZAP request");
  } else {
    domain = request[2].to_string();
    address = request[3].to_string();
    std::string mechanism = request[5].to_string();
    if (mechanism == "CURVE") {
      if (request.size() != 7 || request[6].size() != 32) {
        decision = Refuse("bad_request", "CURVE request without a 32-byte key");
      } else {
        char z85[41] = {};
        zmq_z85_encode(z85, static_cast<const uint8_t*>(request[6].data()), 32);
        key = z85;
      }
    }
    if (decision.reason.empty()) {
      auto set = identities_->Get();
      decision = DecideZap(set.get(), domain, mechanism, key);
    }
  }

  // Counted and logged before the answer goes out: whoever sees the connection work (a client, a
  // test reading the metric) also sees it counted.
  std::string metadata;
  if (decision.allow) {
    metrics_
        ->GetCounter("carehub_auth_accepted_total", "CURVE handshakes let in, by endpoint.",
                     {{"domain", domain}})
        .Inc();
    const std::string fingerprint = KeyFingerprint(key);
    log_->info("{} connected to {} from {} with key {}", decision.user_id, domain, address,
               fingerprint);
    // By identity and key, so a rotation can be watched: bounded by the keys in the identities
    // file, since only those get here.
    metrics_
        ->GetCounter("carehub_auth_accepted_by_key_total",
                     "CURVE handshakes let in, by identity and key fingerprint.",
                     {{"identity", decision.user_id}, {"key", fingerprint}})
        .Inc();
    if (key_use_ != nullptr) {
      key_use_->NoteHandshake(decision.user_id, fingerprint, domain);
      // ZMTP metadata (RFC 27 frame 6): name length (1 byte), name, value length (4 bytes, big
      // endian), value. Readable from every message of the connection (zmq_msg_gets).
      const std::string name = kKeyProperty;
      metadata.push_back(static_cast<char>(name.size()));
      metadata += name;
      const auto n = static_cast<uint32_t>(fingerprint.size());
      metadata.push_back(static_cast<char>((n >> 24) & 0xff));
      metadata.push_back(static_cast<char>((n >> 16) & 0xff));
      metadata.push_back(static_cast<char>((n >> 8) & 0xff));
      metadata.push_back(static_cast<char>(n & 0xff));
      metadata += fingerprint;
    }
  } else {
    RefusedCounter(*metrics_, decision.reason).Inc();
    LogRefusal(domain, address, key, decision);
  }

  std::vector<zmq::const_buffer> reply = {
      zmq::str_buffer("1.0"),
      zmq::buffer(request_id),
      decision.allow ? zmq::str_buffer("200") : zmq::str_buffer("400"),
      zmq::buffer(decision.status_text),
      zmq::buffer(decision.user_id),
      zmq::buffer(metadata)};
  (void)zmq::send_multipart(socket, reply);
}

void ZapHandler::LogRefusal(const std::string& domain, const std::string& address,
                            const std::string& key, const ZapDecision& decision) {
  int64_t now = NowMs();
  if (now - window_start_ms_ >= kRefusalLogWindowMs) {
    if (suppressed_ > 0) {
      log_->warn("{} more connection refusals not logged in the last minute", suppressed_);
    }
    window_start_ms_ = now;
    logged_in_window_ = 0;
    suppressed_ = 0;
  }
  if (logged_in_window_ >= kMaxRefusalLogsPerWindow) {
    ++suppressed_;
    return;
  }
  ++logged_in_window_;
  log_->warn("connection refused on {} from {}: {} (key {})", domain.empty() ? "?" : domain,
             address.empty() ? "?" : address, decision.reason,
             key.empty() ? "none" : KeyFingerprint(key));
}

void MakeCurveServer(zmq::socket_t& socket, const std::string& secret_key,
                     std::string_view zap_domain) {
  if (secret_key.empty()) {
    return;
  }
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, secret_key);
  socket.set(zmq::sockopt::zap_domain, std::string(zap_domain));
}

}  // namespace carehub::hub
