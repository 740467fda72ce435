#include "carehub/notify/notify_http.h"

#include <httplib.h>

#include <charconv>

#include "carehub/core/address.h"

namespace carehub::notify {
namespace {

using nlohmann::json;

void Outcome(httplib::Response& res, int http_status, const std::string& code,
             const std::string& text) {
  json oo{{"resourceType", "OperationOutcome"},
          {"issue", json::array({{{"severity", "error"}, {"code", code}, {"diagnostics", text}}})}};
  res.status = http_status;
  res.set_content(oo.dump(), "application/fhir+json");
}

// A positive decimal number, or empty when absent; false when present and not a number.
bool ParamNumber(const httplib::Request& req, const char* name, std::optional<uint64_t>* out) {
  if (!req.has_param(name)) {
    return true;
  }
  const std::string v = req.get_param_value(name);
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || ptr != v.data() + v.size() || v.empty()) {
    return false;
  }
  *out = n;
  return true;
}

}  // namespace

NotifyHttpServer::NotifyHttpServer(std::string listen, std::string token,
                                   std::vector<SubscriptionWorker*> workers,
                                   metrics::Registry* registry)
    : listen_(std::move(listen)),
      token_(std::move(token)),
      workers_(std::move(workers)),
      registry_(registry) {}

NotifyHttpServer::~NotifyHttpServer() { Stop(); }

Status NotifyHttpServer::Start() {
  auto hp = ParseHostPort(listen_);
  if (!hp.ok()) {
    return hp.status();
  }
  server_ = std::make_unique<httplib::Server>();
  if (!token_.empty()) {
    server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != "Bearer " + token_) {
        Outcome(res, 401, "security", "a bearer token is required");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
  }
  auto find = [this](const std::string& id) -> SubscriptionWorker* {
    for (SubscriptionWorker* w : workers_) {
      if (w->facts().fhir_id == id) {
        return w;
      }
    }
    return nullptr;
  };
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    bool ok = true;
    for (SubscriptionWorker* w : workers_) {
      ok = ok && w->status().fatal_error.empty();
    }
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "failed\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_->RenderPrometheus(), "text/plain; version=0.0.4");
  });
  server_->Get("/api/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    json subs = json::array();
    for (SubscriptionWorker* w : workers_) {
      const WorkerStatus s = w->status();
      subs.push_back({{"subscription", w->config().id},
                      {"fhir_id", w->facts().fhir_id},
                      {"status", s.status},
                      {"events_since_subscription_start", s.events_since_start},
                      {"delivered_through", s.delivered_through},
                      {"consecutive_failures", s.consecutive_failures},
                      {"last_error", s.last_error},
                      {"fatal_error", s.fatal_error}});
    }
    res.set_content(json{{"subscriptions", subs}}.dump(), "application/json");
  });
  server_->Get(
      R"(/fhir/Subscription/([A-Za-z0-9.\-]{1,64})/\$status)",
      [find](const httplib::Request& req, httplib::Response& res) {
        SubscriptionWorker* w = find(req.matches[1]);
        if (w == nullptr) {
          Outcome(res, 404, "not-found", "no such Subscription");
          return;
        }
        const WorkerStatus s = w->status();
        StatusFacts facts{s.status, s.events_since_start, s.status == "error" ? s.last_error : ""};
        json bundle = BuildNotification(w->facts(), NotificationType::kQueryStatus, facts, {},
                                        w->facts().payload);
        res.set_content(bundle.dump(), "application/fhir+json");
      });
  auto events = [find](const httplib::Request& req, httplib::Response& res) {
    SubscriptionWorker* w = find(req.matches[1]);
    if (w == nullptr) {
      Outcome(res, 404, "not-found", "no such Subscription");
      return;
    }
    std::optional<uint64_t> since, until;
    if (!ParamNumber(req, "eventsSinceNumber", &since) ||
        !ParamNumber(req, "eventsUntilNumber", &until)) {
      Outcome(res, 400, "invalid", "eventsSinceNumber and eventsUntilNumber are whole numbers");
      return;
    }
    Payload payload = w->facts().payload;
    if (req.has_param("content") && !ParsePayload(req.get_param_value("content"), &payload)) {
      Outcome(res, 400, "invalid", "content must be empty, id-only or full-resource");
      return;
    }
    const uint64_t count = w->status().events_since_start;
    const uint64_t from = since.value_or(1);
    const uint64_t to =
        until.value_or(std::min<uint64_t>(count, from + w->config().max_replay_events - 1));
    auto bundle = w->ReplayEvents(from, to, payload, std::chrono::seconds(60));
    if (!bundle.ok()) {
      const std::string& code = bundle.status().code();
      const bool client_error = code == "out_of_range" || code == "too_many";
      Outcome(res, client_error ? 400 : 503, client_error ? "invalid" : "transient",
              bundle.status().message());
      return;
    }
    res.set_content(bundle.value().dump(), "application/fhir+json");
  };
  server_->Get(R"(/fhir/Subscription/([A-Za-z0-9.\-]{1,64})/\$events)", events);
  server_->Post(R"(/fhir/Subscription/([A-Za-z0-9.\-]{1,64})/\$events)", events);

  int port = hp->port == 0 ? server_->bind_to_any_port(hp->host)
                           : (server_->bind_to_port(hp->host, hp->port) ? hp->port : -1);
  if (port <= 0) {
    return Status::Error("bind_failed", "cannot listen on " + listen_);
  }
  port_ = static_cast<uint16_t>(port);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::Ok();
}

void NotifyHttpServer::Stop() {
  if (server_) {
    server_->stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace carehub::notify
