// PatientDisclosures: every delivery of data about one patient, from the disclosure index and the
// delivery audit records its entries name; and the report in JSON, CSV and printable HTML.

#include <algorithm>
#include <ctime>
#include <map>

#include "carehub/core/strings.h"
#include "carehub/core/validation.h"
#include "inquiry.h"

namespace carehub::hub::inquiry {
namespace {

std::string IsoTime(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. A field a
// spreadsheet would run as a formula (=, +, -, @) gets a leading apostrophe.
std::string CsvField(const std::string& s) {
  std::string v = s;
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@')) {
    v.insert(v.begin(), '\'');
  }
  if (v.find_first_of(",\"\r\n") == std::string::npos) {
    return v;
  }
  std::string out = "\"";
  for (char c : v) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

std::string SpacedNhsNumber(const std::string& n) {
  return n.size() == 10 ? n.substr(0, 3) + " " + n.substr(3, 3) + " " + n.substr(6) : n;
}

}  // namespace

Result<std::string> CheckNhsNumber(const std::string& text) {
  const std::string digits = RemoveChars(text, " -");
  if (!IsValidNhsNumber(digits)) {
    return Status::Error("bad_request",
                         "not a valid NHS number (10 digits with a modulus 11 check digit)");
  }
  return digits;
}

Result<DisclosureReport> PatientDisclosures(const Store& store, const policy::PolicySet* policy,
                                            const DisclosureQuery& query) {
  auto nhs = CheckNhsNumber(query.nhs_number);
  if (!nhs.ok()) {
    return nhs.status();
  }
  DisclosureReport report;
  report.nhs_number = nhs.value();
  auto hasher = store.disclosures().Hasher();
  if (!hasher.ok()) {
    if (hasher.status().code() == "no_index_key") {
      return report;  // nothing was ever delivered from this store
    }
    return hasher.status();
  }
  const std::string patient = hasher.value().ForNhsNumber(report.nhs_number);
  report.patient_ref = HexEncode(patient.substr(0, 8));
  auto found = store.disclosures().ForPatient(patient, query.since_unix_ms, query.until_unix_ms,
                                              query.limit + 1);
  if (!found.ok()) {
    return found.status();
  }
  auto& entries = found.value();
  if (entries.size() > query.limit) {
    report.truncated = true;
    entries.resize(query.limit);
  }
  // One audit record per delivery batch: read each once.
  std::vector<std::string> keys;
  for (const auto& f : entries) {
    if (keys.empty() || keys.back() != f.audit_key) {
      keys.push_back(f.audit_key);
    }
  }
  auto records = store.audit().Get(keys);
  if (!records.ok()) {
    return records.status();
  }
  size_t k = 0;
  for (const auto& f : entries) {
    while (keys[k] != f.audit_key) {
      ++k;
    }
    const auto& record = records.value()[k];
    if (!record) {
      return Status::Error("store_corrupt", "a disclosure index entry names an audit record (" +
                                                HexEncode(f.audit_key) + ") that is missing");
    }
    DisclosureRow row;
    row.at_unix_ms = f.at_unix_ms;
    row.subscriber = record->subscriber();
    if (policy != nullptr) {
      if (const auto* s = policy->FindSubscriber(row.subscriber)) {
        row.subscriber_name = s->name;
      }
    }
    row.subscription = record->subscription();
    row.purpose = record->purpose();
    row.agreement = f.entry.agreement();
    row.field_level = f.entry.field_level();
    row.event_type = f.entry.event_type();
    row.publisher_ods = f.entry.publisher_ods();
    row.event_id = f.entry.event_id();
    row.hub_seq = f.hub_seq;
    row.audit_ref = HexEncode(f.audit_key);
    report.rows.push_back(std::move(row));
  }
  return report;
}

json ReportJson(const DisclosureReport& report) {
  json rows = json::array();
  for (const auto& r : report.rows) {
    rows.push_back({{"at_unix_ms", r.at_unix_ms},
                    {"at", IsoTime(r.at_unix_ms)},
                    {"subscriber", r.subscriber},
                    {"subscriber_name", r.subscriber_name},
                    {"subscription", r.subscription},
                    {"purpose", r.purpose},
                    {"agreement", r.agreement},
                    {"field_level", r.field_level},
                    {"event_type", r.event_type},
                    {"publisher_ods", r.publisher_ods},
                    {"event_id", r.event_id},
                    {"hub_seq", r.hub_seq},
                    {"audit_ref", r.audit_ref}});
  }
  return {{"patient_ref", report.patient_ref},
          {"disclosures", rows.size()},
          {"truncated", report.truncated},
          {"rows", rows}};
}

std::string ReportCsv(const DisclosureReport& report) {
  std::string out =
      "at,subscriber,subscriber_name,subscription,purpose,agreement,field_level,event_type,"
      "publisher_ods,event_id,hub_seq,audit_ref\r\n";
  for (const auto& r : report.rows) {
    for (const std::string& field :
         {IsoTime(r.at_unix_ms), r.subscriber, r.subscriber_name, r.subscription, r.purpose,
          r.agreement, r.field_level, r.event_type, r.publisher_ods, r.event_id,
          std::to_string(r.hub_seq)}) {
      out += CsvField(field) + ",";
    }
    out += CsvField(r.audit_ref) + "\r\n";
  }
  return out;
}

std::string ReportHtml(const DisclosureReport& report, int64_t generated_unix_ms,
                       const std::string& hub_name) {
  // Who received what, grouped first by organisation (what a subject access response lists), then
  // every delivery. Plain HTML and print CSS: no script, no external resource.
  std::map<std::string, std::pair<std::string, size_t>> by_org;  // subscriber -> (name, count)
  for (const auto& r : report.rows) {
    auto& o = by_org[r.subscriber];
    o.first = r.subscriber_name;
    ++o.second;
  }
  std::string h =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Disclosures of data "
      "about a patient</title><style>body{font-family:Arial,sans-serif;margin:2em;color:#212b32}"
      "table{border-collapse:collapse;width:100%;font-size:0.85em}th,td{border:1px solid #aeb7bd;"
      "padding:3px 6px;text-align:left}th{background:#e8edee}h1{font-size:1.4em}"
      "@media print{body{margin:0}}</style></head><body>";
  h += "<h1>Disclosures of data about NHS number " +
       HtmlEscape(SpacedNhsNumber(report.nhs_number)) + "</h1>";
  h += "<p>Every delivery of this patient's events by carehub hub <b>" + HtmlEscape(hub_name) +
       "</b> to a subscribing organisation, from its audit trail. Generated " +
       HtmlEscape(IsoTime(generated_unix_ms)) + ". " + std::to_string(report.rows.size()) +
       " disclosure(s) to " + std::to_string(by_org.size()) + " organisation(s)" +
       (report.truncated ? " (truncated: narrow the dates)" : "") +
       ". Field level <i>pseudonymised</i>: the recipient received no NHS number, name, address "
       "or full postcode or date of birth.</p>";
  h += "<h2>Organisations</h2><table><tr><th>Subscriber</th><th>Name</th><th>Disclosures</th></tr>";
  for (const auto& [id, o] : by_org) {
    h += "<tr><td>" + HtmlEscape(id) + "</td><td>" + HtmlEscape(o.first) + "</td><td>" +
         std::to_string(o.second) + "</td></tr>";
  }
  h += "</table><h2>Deliveries</h2><table><tr><th>When (UTC)</th><th>Subscriber</th>"
       "<th>Subscription</th><th>Purpose</th><th>Agreement</th><th>Field level</th>"
       "<th>Event type</th><th>From</th><th>Event id</th><th>Audit ref</th></tr>";
  for (const auto& r : report.rows) {
    h += "<tr><td>" + HtmlEscape(IsoTime(r.at_unix_ms)) + "</td><td>" + HtmlEscape(r.subscriber) +
         "</td><td>" + HtmlEscape(r.subscription) + "</td><td>" + HtmlEscape(r.purpose) +
         "</td><td>" + HtmlEscape(r.agreement) + "</td><td>" + HtmlEscape(r.field_level) +
         "</td><td>" + HtmlEscape(r.event_type) + "</td><td>" + HtmlEscape(r.publisher_ods) +
         "</td><td>" + HtmlEscape(r.event_id) + "</td><td>" + HtmlEscape(r.audit_ref) +
         "</td></tr>";
  }
  h += "</table><p>Patient reference in the hub's audit trail: " + HtmlEscape(report.patient_ref) +
       "</p></body></html>\n";
  return h;
}

}  // namespace carehub::hub::inquiry
