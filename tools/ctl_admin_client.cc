#include "ctl_admin_client.h"

#include <httplib.h>

#include <cctype>
#include <fstream>

#include "carehub/core/secret_file.h"

namespace carehub::ctl {
namespace {

std::string StripScheme(std::string address) {
  constexpr std::string_view kScheme = "http://";
  if (address.rfind(kScheme, 0) == 0) {
    address.erase(0, kScheme.size());
  }
  while (!address.empty() && address.back() == '/') {
    address.pop_back();
  }
  return address;
}

std::string Unreachable(const std::string& address, httplib::Error error) {
  std::string why;
  switch (error) {
    case httplib::Error::Connection:
      why = "connection refused or timed out (is the hub running, and is --admin right?)";
      break;
    case httplib::Error::Read:
      why = "the connection closed before an answer came";
      break;
    case httplib::Error::Write:
      why = "the connection closed while sending the request";
      break;
    default:
      why = httplib::to_string(error);
  }
  return "cannot reach the hub's admin API at " + address + ": " + why;
}

}  // namespace

std::string UrlEncode(const std::string& value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::string> ReadTokenFile(const std::string& path) {
  if (Status mode = CheckSecretFileMode(path, "token file"); !mode.ok()) {
    return mode;
  }
  std::ifstream in(path);
  if (!in) {
    return Status::Error("token_file", "cannot read token file " + path);
  }
  std::string token;
  std::getline(in, token);
  token.erase(0, token.find_first_not_of(" \t\r"));
  token.erase(token.find_last_not_of(" \t\r") + 1);
  if (token.empty()) {
    return Status::Error("token_file", "token file " + path + " is empty");
  }
  return token;
}

AdminClient::AdminClient(AdminClientOptions options)
    : address_(StripScheme(options.address)),
      client_(std::make_unique<httplib::Client>("http://" + address_)) {
  client_->set_connection_timeout(options.connect_timeout);
  client_->set_read_timeout(options.read_timeout);
  client_->set_write_timeout(options.read_timeout);
  has_token_ = !options.token.empty();
  if (has_token_) {
    client_->set_bearer_token_auth(options.token);
  }
}

AdminClient::~AdminClient() = default;

Result<nlohmann::json> AdminClient::Get(const std::string& path) {
  auto res = client_->Get(path);
  if (!res) {
    return Status::Error("unreachable", Unreachable(address_, res.error()));
  }
  return Finish("GET", path, res->status, res->body);
}

Result<nlohmann::json> AdminClient::Post(const std::string& path, const std::string& body,
                                         int json_also_on) {
  auto res = client_->Post(path, body, "application/json");
  if (!res) {
    return Status::Error("unreachable", Unreachable(address_, res.error()));
  }
  return Finish("POST", path, res->status, res->body, json_also_on);
}

Result<std::string> AdminClient::PostText(const std::string& path, const std::string& body) {
  auto res = client_->Post(path, body, "application/json");
  if (!res) {
    return Status::Error("unreachable", Unreachable(address_, res.error()));
  }
  if (res->status >= 200 && res->status <= 299) {
    return res->body;
  }
  return Finish("POST", path, res->status, res->body).status();
}

Result<nlohmann::json> AdminClient::Finish(const std::string& method, const std::string& path,
                                           int status, const std::string& body, int json_also_on) {
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (status == json_also_on && json.is_object()) {
    return json;
  }
  if (status < 200 || status > 299) {
    // The hub's errors are {"error": code, "message": text}; show those, not the raw body.
    std::string detail;
    if (json.is_object() && json.contains("message")) {
      detail = json.value("error", "") + ": " + json.value("message", "");
    } else {
      detail = body.substr(0, body.find('\n'));
    }
    if (status == 401) {
      // The hub's 401 names the HTTP header; the operator's lever here is a flag.
      detail += has_token_ ? " (the token in --token-file is not the hub's admin.token_file token)"
                           : " (the hub has an admin token: pass --token-file FILE or set "
                             "CAREHUB_ADMIN_TOKEN_FILE)";
    }
    return Status::Error("http_" + std::to_string(status),
                         method + " " + path + " -> HTTP " + std::to_string(status) + " " + detail);
  }
  if (json.is_discarded()) {
    return Status::Error("bad_answer", method + " " + path + " did not answer JSON");
  }
  return json;
}

}  // namespace carehub::ctl
