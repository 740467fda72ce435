#pragma once
// Small helpers the admin API's route files share (private to hub/src): JSON answers, problems,
// request parameters. Stateless; thread-safe.

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "carehub/core/log.h"
#include "carehub/core/status.h"

namespace carehub::hub::admin_http {

using json = nlohmann::json;

inline void Json(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(2), "application/json");
}

inline void Problem(httplib::Response& res, int status, const std::string& code,
                    const std::string& message) {
  Json(res, {{"error", code}, {"message", message}}, status);
}

inline std::shared_ptr<spdlog::logger> Log() { return Logger("admin"); }

// The store could not be read: a 503 with its reason, never an empty or partial answer.
inline void StoreProblem(httplib::Response& res, const Status& status) {
  Log()->error("admin API: store read failed: {}", status.ToString());
  Problem(res, 503, status.code(), status.message());
}

// {"by": "...", "note": "..."} from a POST body; an empty or non-JSON body gives empty strings.
inline std::pair<std::string, std::string> ByAndNote(const httplib::Request& req) {
  auto body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return {};
  }
  auto text = [&body](const char* key) {
    return body.contains(key) && body[key].is_string() ? body[key].get<std::string>() : "";
  };
  return {text("by"), text("note")};
}

inline int64_t ParseInt(const httplib::Request& req, const char* name, int64_t fallback) {
  if (!req.has_param(name)) {
    return fallback;
  }
  try {
    return std::stoll(req.get_param_value(name));
  } catch (...) {
    return fallback;
  }
}

}  // namespace carehub::hub::admin_http
