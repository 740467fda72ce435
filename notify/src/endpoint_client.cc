#include "carehub/notify/endpoint_client.h"

#include <httplib.h>

#include <regex>

namespace carehub::notify {

EndpointClient::EndpointClient(std::unique_ptr<httplib::Client> client, std::string path)
    : client_(std::move(client)), path_(std::move(path)) {}

EndpointClient::~EndpointClient() = default;

Result<std::unique_ptr<EndpointClient>> EndpointClient::Create(const EndpointConfig& config) {
  static const std::regex kUrl(R"(^(https?://[^/]+)(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(config.url, m, kUrl)) {
    return Status::Error("bad_config", "endpoint url '" + config.url + "' is not usable");
  }
  const std::string origin = m[1].str();
  const std::string path = m[2].matched ? m[2].str() : "/";
  std::unique_ptr<httplib::Client> client;
  if (!config.client_cert_file.empty()) {
    client = std::make_unique<httplib::Client>(origin, config.client_cert_file.string(),
                                               config.client_key_file.string());
  } else {
    client = std::make_unique<httplib::Client>(origin);
  }
  if (!client->is_valid()) {
    return Status::Error("bad_config",
                         "endpoint " + config.url + ": the client (TLS material) is not usable");
  }
  if (!config.ca_file.empty()) {
    client->set_ca_cert_path(config.ca_file.string());
  }
  client->enable_server_certificate_verification(true);
  if (!config.bearer_token.empty()) {
    client->set_bearer_token_auth(config.bearer_token);
  }
  const auto ms = config.timeout.count();
  client->set_connection_timeout(ms / 1000, (ms % 1000) * 1000);
  client->set_read_timeout(ms / 1000, (ms % 1000) * 1000);
  client->set_write_timeout(ms / 1000, (ms % 1000) * 1000);
  client->set_keep_alive(true);
  return std::unique_ptr<EndpointClient>(new EndpointClient(std::move(client), path));
}

Result<int> EndpointClient::Post(const std::string& body) {
  httplib::Headers headers = {{"Accept", "application/fhir+json"}};
  auto res = client_->Post(path_, headers, body, "application/fhir+json");
  if (!res) {
    return Status::Error("unreachable", httplib::to_string(res.error()));
  }
  return res->status;
}

}  // namespace carehub::notify
