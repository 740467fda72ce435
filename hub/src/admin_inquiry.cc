// The admin API's questions about events and patients (docs/operations.md, "Questions about events
// and patients"): trace, disclosures, browse, event detail and the audited reveal. The answers come
// from inquiry/; this file reads requests, audits what discloses, and writes responses.

#include <chrono>
#include <ctime>
#include <optional>

#include "admin_http_util.h"
#include "admin_server.h"
#include "carehub/core/strings.h"
#include "inquiry/inquiry.h"

namespace carehub::hub {
namespace {

using namespace admin_http;  // NOLINT: the admin route files' shared helpers

// A time bound: unix milliseconds, or a date "YYYY-MM-DD" (UTC; `end_of_day` for an upper bound
// takes the whole named day). Empty keeps `fallback`; anything else is an error.
Result<int64_t> TimeBound(const std::string& text, int64_t fallback, bool end_of_day) {
  if (text.empty()) {
    return fallback;
  }
  if (text.find('-') == std::string::npos) {
    try {
      size_t used = 0;
      const int64_t v = std::stoll(text, &used);
      if (used == text.size()) {
        return v;
      }
    } catch (...) {
    }
    return Status::Error("bad_request", "'" + text + "' is neither unix milliseconds nor a date");
  }
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  if (end == nullptr || *end != '\0') {
    return Status::Error("bad_request", "'" + text + "' is not a date YYYY-MM-DD");
  }
  const int64_t day_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return end_of_day ? day_ms + 86'400'000 - 1 : day_ms;
}

std::string Text(const json& body, const char* key) {
  if (!body.is_object() || !body.contains(key)) {
    return "";
  }
  const auto& v = body[key];
  return v.is_string() ? v.get<std::string>() : v.is_number() ? v.dump() : "";
}

int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

// Who asks and why, both required: they go into the audit record. False (answered 400) when either
// is missing.
bool WhoAndWhy(const json& body, httplib::Response& res, std::string* by, std::string* reason) {
  *by = Text(body, "by");
  *reason = Text(body, "reason");
  if (by->empty() || reason->empty()) {
    Problem(res, 400, "bad_request",
            "say who asks (\"by\") and why (\"reason\", e.g. a subject access request's "
            "reference): both go into the audit trail");
    return false;
  }
  return true;
}

// The event at `seq` (identifiers masked unless `reveal`), or empty once a 404/503 is answered.
std::optional<json> EventOr404(const Store& store, uint64_t seq, bool reveal,
                               httplib::Response& res) {
  auto detail = inquiry::EventDetail(store, seq, reveal);
  if (!detail.ok()) {
    StoreProblem(res, detail.status());
    return std::nullopt;
  }
  if (detail->is_null()) {
    Problem(res, 404, "not_found", "no event is stored at this hub_seq");
    return std::nullopt;
  }
  return std::move(detail).value();
}

// An operator's question that discloses is on disk before its answer leaves (rare: one sync each).
Status AppendDurably(Store& store, const v1::AuditRecord& record) {
  CAREHUB_RETURN_IF_ERROR(store.audit().Append(record));
  return store.SyncWal();
}

}  // namespace

void AdminServer::InquiryRoutes() {
  auto& s = *server_;

  s.Get("/api/v1/trace", [this](const httplib::Request& req, httplib::Response& res) {
    inquiry::TraceQuery q;
    q.publisher_ods = req.get_param_value("publisher");
    q.event_id = req.get_param_value("event_id");
    if (req.has_param("hub_seq")) {
      const int64_t seq = ParseInt(req, "hub_seq", 0);
      if (seq <= 0) {
        Problem(res, 400, "bad_request", "hub_seq must be a positive integer");
        return;
      }
      q.hub_seq = static_cast<uint64_t>(seq);
    }
    auto policy = ctx_.policy->Get();
    auto traced = inquiry::TraceEvent(*ctx_.store, *policy, q, std::chrono::system_clock::now());
    if (!traced.ok()) {
      traced.status().code() == "bad_request"
          ? Problem(res, 400, "bad_request", traced.status().message())
          : StoreProblem(res, traced.status());
      return;
    }
    Json(res, traced.value());
  });

  // POST, not GET: the NHS number stays out of URLs, access logs and browser history.
  s.Post("/api/v1/disclosures", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    std::string by;
    std::string reason;
    if (!WhoAndWhy(body, res, &by, &reason)) {
      return;
    }
    inquiry::DisclosureQuery q;
    q.nhs_number = Text(body, "nhs_number");
    auto since = TimeBound(Text(body, "since"), 0, false);
    auto until = TimeBound(Text(body, "until"), INT64_MAX, true);
    if (!since.ok() || !until.ok()) {
      Problem(res, 400, "bad_request", (!since.ok() ? since : until).status().message());
      return;
    }
    q.since_unix_ms = since.value();
    q.until_unix_ms = until.value();
    const std::string format = Text(body, "format").empty() ? "json" : Text(body, "format");
    if (format != "json" && format != "csv" && format != "html") {
      Problem(res, 400, "bad_request", "format is json, csv or html");
      return;
    }
    auto policy = ctx_.policy->Get();
    auto report = inquiry::PatientDisclosures(*ctx_.store, policy.get(), q);
    if (!report.ok()) {
      report.status().code() == "bad_request"
          ? Problem(res, 400, "bad_request", report.status().message())
          : StoreProblem(res, report.status());
      return;
    }
    // Asking is itself a disclosure: audited (who, why, which patient by reference, how much)
    // before the answer leaves; no answer when the record cannot be written.
    v1::AuditRecord audit;
    audit.set_at_unix_ms(NowMs());
    audit.set_kind("disclosure_report");
    audit.set_by(by);
    audit.set_detail("patient " + report->patient_ref + ": " + std::to_string(report->rows.size()) +
                     " disclosure(s)" + (report->truncated ? " (truncated)" : "") + ", since " +
                     Text(body, "since") + " until " + Text(body, "until") + ", format " + format +
                     "; reason: " + reason);
    if (Status st = AppendDurably(*ctx_.store, audit); !st.ok()) {
      StoreProblem(res, st);
      return;
    }
    if (format == "csv") {
      res.set_content(inquiry::ReportCsv(report.value()), "text/csv; charset=utf-8");
    } else if (format == "html") {
      res.set_content(inquiry::ReportHtml(report.value(), NowMs(), ctx_.hub_name),
                      "text/html; charset=utf-8");
    } else {
      Json(res, inquiry::ReportJson(report.value()));
    }
  });

  s.Get("/api/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    inquiry::BrowseQuery q;
    q.publisher_ods = req.get_param_value("publisher");
    q.site_ods = req.get_param_value("site");
    q.event_type = req.get_param_value("type");
    auto since = TimeBound(req.get_param_value("since"), 0, false);
    auto until = TimeBound(req.get_param_value("until"), INT64_MAX, true);
    if (!since.ok() || !until.ok()) {
      Problem(res, 400, "bad_request", (!since.ok() ? since : until).status().message());
      return;
    }
    q.since_unix_ms = since.value();
    q.until_unix_ms = until.value();
    q.before_seq = static_cast<uint64_t>(std::max<int64_t>(0, ParseInt(req, "before_seq", 0)));
    q.limit = static_cast<size_t>(std::clamp<int64_t>(ParseInt(req, "limit", 50), 1, 1000));
    auto page = inquiry::BrowseEvents(*ctx_.store, q);
    if (!page.ok()) {
      StoreProblem(res, page.status());
      return;
    }
    Json(res, page.value());
  });

  s.Get(R"(/api/v1/events/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (auto detail = EventOr404(*ctx_.store, std::stoull(req.matches[1]), false, res)) {
      Json(res, *detail);
    }
  });

  // The identifiers in clear, for an operator who says who they are and why: audited first.
  s.Post(R"(/api/v1/events/(\d+)/reveal)",
         [this](const httplib::Request& req, httplib::Response& res) {
           const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
           std::string by;
           std::string reason;
           if (!WhoAndWhy(body, res, &by, &reason)) {
             return;
           }
           const uint64_t seq = std::stoull(req.matches[1]);
           auto detail = EventOr404(*ctx_.store, seq, /*reveal=*/true, res);
           if (!detail) {
             return;
           }
           v1::AuditRecord audit;
           audit.set_at_unix_ms(NowMs());
           audit.set_kind("identifiers_revealed");
           audit.set_by(by);
           audit.set_from_seq(seq);
           audit.set_to_seq(seq);
           audit.set_detail("event " + (*detail)["publisher_ods"].get<std::string>() + "/" +
                            (*detail)["event_id"].get<std::string>() + "; reason: " + reason);
           if (Status st = AppendDurably(*ctx_.store, audit); !st.ok()) {
             StoreProblem(res, st);
             return;
           }
           Json(res, detail.value());
         });
}

}  // namespace carehub::hub
