#pragma once
// POSTs notification bundles to one receiver's endpoint (a REST-hook channel): HTTPS with the
// server certificate verified (ca_file or the system bundle), a bearer token and/or a client
// certificate (mutual TLS) as configured; plain HTTP only to a loopback host (the config refuses
// anything else). Connections are kept alive between posts.
//
// Errors are values: Post returns the HTTP status the endpoint answered, or an error
// "unreachable" (no answer: refused, TLS failure, timeout) naming what httplib reported.
//
// Not thread-safe: one client per subscription worker thread.

#include <memory>
#include <string>

#include "carehub/core/status.h"
#include "carehub/notify/config.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace carehub::notify {

class EndpointClient {
 public:
  // Error "bad_config" when the URL cannot be used (e.g. TLS material httplib refuses).
  static Result<std::unique_ptr<EndpointClient>> Create(const EndpointConfig& config);
  ~EndpointClient();
  EndpointClient(const EndpointClient&) = delete;
  EndpointClient& operator=(const EndpointClient&) = delete;

  // POST `body` as application/fhir+json; the status code the endpoint answered.
  Result<int> Post(const std::string& body);

 private:
  EndpointClient(std::unique_ptr<httplib::Client> client, std::string path);
  std::unique_ptr<httplib::Client> client_;
  std::string path_;
};

}  // namespace carehub::notify
