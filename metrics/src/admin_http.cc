#include "carehub/metrics/admin_http.h"

#include <httplib.h>

#include "carehub/core/address.h"

namespace carehub::metrics {

AdminHttpServer::AdminHttpServer(AdminHttpOptions options, Registry* registry)
    : options_(std::move(options)), registry_(registry) {}

AdminHttpServer::~AdminHttpServer() { Stop(); }

Status AdminHttpServer::Start() {
  auto address = ParseHostPort(options_.listen);
  if (!address.ok()) {
    return Status::Error("invalid_address",
                         "admin listen '" + options_.listen + "': " + address.status().message());
  }
  server_ = std::make_unique<httplib::Server>();
  // Operators' requests are tiny; nothing here needs a body.
  server_->set_payload_max_length(64 * 1024);
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.bearer_token.empty() ||
        req.get_header_value("Authorization") == "Bearer " + options_.bearer_token) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 401;
    res.set_content("bearer token required\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    const std::string why = options_.unhealthy_reason ? options_.unhealthy_reason() : "";
    res.status = why.empty() ? 200 : 503;
    std::string body = why.empty() ? "ok\n" : why + "\n";
    if (const std::string warning = options_.warning ? options_.warning() : ""; !warning.empty()) {
      body += "warning: " + warning + "\n";
    }
    res.set_content(body, "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_->RenderPrometheus(), "text/plain; version=0.0.4");
  });
  server_->Get("/api/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(options_.status_json ? options_.status_json() : "{}", "application/json");
  });
  int port = address->port;
  if (port == 0) {
    port = server_->bind_to_any_port(address->host);
  } else if (!server_->bind_to_port(address->host, port)) {
    port = -1;
  }
  if (port <= 0) {
    server_.reset();
    return Status::Error("bind_failed", "cannot bind the admin server to " + options_.listen);
  }
  port_ = static_cast<uint16_t>(port);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::Ok();
}

void AdminHttpServer::Stop() {
  if (server_) {
    server_->stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  server_.reset();
}

}  // namespace carehub::metrics
