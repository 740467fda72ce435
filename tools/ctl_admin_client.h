#pragma once
// carehubctl's view of the hub's admin HTTP API (DESIGN §8): one blocking request at a time, each
// answer parsed as JSON. Every failure (hub unreachable, HTTP error, not JSON) becomes one
// human-readable line in the Status message, because carehubctl prints exactly that line.
//
// Not thread-safe: one thread per AdminClient.

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "carehub/core/status.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace carehub::ctl {

struct AdminClientOptions {
  // "host:port", optionally with an "http://" prefix.
  std::string address = "127.0.0.1:7480";
  // Sent as "Authorization: Bearer <token>" when not empty.
  std::string token;
  std::chrono::milliseconds connect_timeout{3000};
  // Replaying a quarantine record waits up to 10 s inside the hub: leave room above that.
  std::chrono::milliseconds read_timeout{20'000};
};

// Reads an admin token file: the first line, surrounding whitespace removed. Errors when the file
// cannot be read, holds no token, or other users of the host can read it (core/secret_file.h).
Result<std::string> ReadTokenFile(const std::string& path);

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& value);

class AdminClient {
 public:
  explicit AdminClient(AdminClientOptions options);
  ~AdminClient();
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // GET `path` (with its query string); the JSON body of a 2xx answer.
  Result<nlohmann::json> Get(const std::string& path);
  // POST `path` with `body` (JSON text; empty: no body); the JSON body of a 2xx answer, or also of
  // an answer with status `json_also_on` (e.g. 422 for a reload report that says what was refused).
  Result<nlohmann::json> Post(const std::string& path, const std::string& body = "",
                              int json_also_on = 0);

  // POST `path` with `body`; the body of a 2xx answer as text (a CSV or HTML report).
  Result<std::string> PostText(const std::string& path, const std::string& body);

  const std::string& address() const { return address_; }

 private:
  Result<nlohmann::json> Finish(const std::string& method, const std::string& path, int status,
                                const std::string& body, int json_also_on = 0);

  std::string address_;
  std::unique_ptr<httplib::Client> client_;
  bool has_token_ = false;  // whether requests carry a bearer token (for the 401 hint)
};

}  // namespace carehub::ctl
