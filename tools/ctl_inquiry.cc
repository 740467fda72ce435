#include "ctl_inquiry.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "ctl_format.h"

namespace carehub::ctl {
namespace {

using json = nlohmann::json;

// ParseTimeArg, with a bare date as an upper bound meaning the end of that day.
Result<int64_t> TimeArg(const std::string& text, bool upper) {
  auto t = ParseTimeArg(text, NowMs());
  if (t.ok() && upper && text.size() == 10 && text[4] == '-' && text[7] == '-') {
    return t.value() + 86'400'000 - 1;
  }
  return t;
}

std::string Str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) {
    return "";
  }
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

int WriteOut(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::cout << text;
    return 0;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    return Fail("cannot write " + path);
  }
  std::cerr << "written: " << path << "\n";
  return 0;
}

}  // namespace

int CmdTrace(AdminClient& client, const TraceArgs& args) {
  std::string path = "/api/v1/trace?";
  if (args.hub_seq) {
    path += "hub_seq=" + std::to_string(*args.hub_seq);
  } else {
    path += "publisher=" + UrlEncode(args.publisher) + "&event_id=" + UrlEncode(args.event_id);
  }
  auto r = client.Get(path);
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  const json& t = r.value();
  if (args.as_json) {
    std::cout << t.dump(2) << "\n";
    return 0;
  }
  const json& q = t["query"];
  std::cout << "Event " << Str(q, "publisher_ods") << " / " << Str(q, "event_id");
  if (q.contains("hub_seq")) {
    std::cout << " (hub_seq " << Str(q, "hub_seq") << ")";
  }
  std::cout << "\n";
  const json& ingest = t["ingest"];
  if (!t.value("found", false)) {
    std::cout << "  not stored: " << Str(ingest, "explanation") << "\n";
  } else {
    std::cout << "  accepted " << FormatUtc(ingest.value("received_at_unix_ms", int64_t{0}))
              << " as hub_seq " << Str(ingest, "hub_seq") << ": " << Str(ingest, "event_type")
              << " from site " << Str(ingest, "site_ods") << ", " << Str(ingest, "lifecycle")
              << "\n";
    const json& dup = ingest["duplicate_answers"];
    if (dup.value("count", 0) > 0) {
      std::cout << "  sent again " << dup.value("count", 0)
                << " time(s), answered DUPLICATE (first "
                << FormatUtc(dup.value("first_unix_ms", int64_t{0})) << ", last "
                << FormatUtc(dup.value("last_unix_ms", int64_t{0})) << ")\n";
    }
  }
  for (const auto& q : t.value("quarantine", json::array())) {
    std::cout << "  refused " << FormatUtc(q.value("at_unix_ms", int64_t{0})) << ": "
              << Str(q, "reason") << " (quarantine record " << Str(q, "id") << ", "
              << Str(q, "state") << ") " << Str(q, "message") << "\n";
  }
  if (!t.value("found", false)) {
    return 0;
  }
  Table table({"SUBSCRIPTION", "SUBSCRIBER", "STATUS", "DETAIL"});
  for (const auto& s : t.value("subscriptions", json::array())) {
    const std::string status = Str(s, "status");
    std::string detail;
    if (status == "delivered") {
      for (const auto& d : s.value("deliveries", json::array())) {
        detail += (detail.empty() ? "" : "; ") + FormatUtc(d.value("at_unix_ms", int64_t{0})) +
                  " under " + Str(d, "agreement") + " (" + Str(d, "field_level") + ", audit " +
                  Str(d, "audit_ref") + ")";
      }
      detail += s.value("acknowledged", false) ? "; acknowledged" : "; not acknowledged yet";
    } else if (status == "withheld") {
      detail = "rule " + Str(s, "rule");
    } else if (status == "not_covered") {
      detail = Str(s["decision_now"], "why");
    } else {
      detail = Str(s, "why");
    }
    table.Add({Str(s, "subscription"), Str(s, "subscriber"), status, detail});
  }
  std::cout << table.Render();
  return 0;
}

int CmdDisclosures(AdminClient& client, const DisclosuresArgs& args) {
  json body = {{"nhs_number", args.nhs_number},
               {"by", args.by.empty() ? DefaultOperator() : args.by},
               {"reason", args.reason},
               {"format", args.format == "table" ? "json" : args.format}};
  if (!args.since.empty()) {
    auto t = TimeArg(args.since, false);
    if (!t.ok()) {
      return Fail("--since: " + t.status().message());
    }
    body["since"] = std::to_string(t.value());
  }
  if (!args.until.empty()) {
    auto t = TimeArg(args.until, true);
    if (!t.ok()) {
      return Fail("--until: " + t.status().message());
    }
    body["until"] = std::to_string(t.value());
  }
  if (args.format == "csv" || args.format == "html") {
    auto text = client.PostText("/api/v1/disclosures", body.dump());
    if (!text.ok()) {
      return Fail(text.status().message());
    }
    return WriteOut(args.out, text.value());
  }
  auto r = client.Post("/api/v1/disclosures", body.dump());
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  if (args.format == "json") {
    return WriteOut(args.out, r->dump(2) + "\n");
  }
  Table table({"WHEN (UTC)", "SUBSCRIBER", "SUBSCRIPTION", "PURPOSE", "AGREEMENT", "FIELDS",
               "EVENT", "FROM", "EVENT ID"});
  for (const auto& row : r->value("rows", json::array())) {
    table.Add({Str(row, "at"), Str(row, "subscriber"), Str(row, "subscription"),
               Str(row, "purpose"), Str(row, "agreement"), Str(row, "field_level"),
               Str(row, "event_type"), Str(row, "publisher_ods"), Str(row, "event_id")});
  }
  std::cout << (table.empty() ? std::string("no disclosures of this patient in that range\n")
                              : table.Render());
  std::cout << r->value("disclosures", 0) << " disclosure(s)"
            << (r->value("truncated", false) ? " (truncated: narrow the dates)" : "")
            << "; this report is recorded in the audit trail\n";
  return 0;
}

int CmdEvents(AdminClient& client, const EventsArgs& args) {
  std::string path = "/api/v1/events?limit=" + std::to_string(args.limit);
  for (const auto& [name, value] :
       {std::pair<const char*, std::string>{"publisher", args.publisher},
        {"site", args.site},
        {"type", args.type}}) {
    if (!value.empty()) {
      path += std::string("&") + name + "=" + UrlEncode(value);
    }
  }
  for (const auto& [name, value, upper] :
       {std::tuple<const char*, std::string, bool>{"since", args.since, false},
        {"until", args.until, true}}) {
    if (!value.empty()) {
      auto t = TimeArg(value, upper);
      if (!t.ok()) {
        return Fail(std::string("--") + name + ": " + t.status().message());
      }
      path += std::string("&") + name + "=" + std::to_string(t.value());
    }
  }
  if (args.before_seq > 0) {
    path += "&before_seq=" + std::to_string(args.before_seq);
  }
  auto r = client.Get(path);
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  if (args.as_json) {
    std::cout << r->dump(2) << "\n";
    return 0;
  }
  Table table({">HUB_SEQ", "RECEIVED (UTC)", "PUBLISHER", "SITE", "TYPE", "LIFECYCLE", "EVENT ID"});
  for (const auto& e : r->value("items", json::array())) {
    table.Add({Str(e, "hub_seq"), FormatUtc(e.value("received_at_unix_ms", int64_t{0})),
               Str(e, "publisher_ods"), Str(e, "site_ods"), Str(e, "event_type"),
               Str(e, "lifecycle"), Str(e, "event_id")});
  }
  std::cout << (table.empty() ? std::string("no events match\n") : table.Render());
  if (!(*r)["next_before_seq"].is_null()) {
    std::cout << "more: --before-seq " << Str(*r, "next_before_seq") << "\n";
  }
  return 0;
}

int CmdEvent(AdminClient& client, const EventArgs& args) {
  const std::string path = "/api/v1/events/" + std::to_string(args.hub_seq);
  if (args.reveal && args.reason.empty()) {
    return Fail("--reveal needs --reason: the hub audits who saw the identifiers and why");
  }
  auto r = args.reveal ? client.Post(path + "/reveal",
                                     json{{"by", args.by.empty() ? DefaultOperator() : args.by},
                                          {"reason", args.reason}}
                                         .dump())
                       : client.Get(path);
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  std::cout << r->dump(2) << "\n";
  return 0;
}

}  // namespace carehub::ctl
