// carehubctl: the operator's command line for a running hub (DESIGN §8). Wraps the admin HTTP API
// for people (status table, lag, quarantine, replay, reload, audit, trace, disclosures, events)
// and does three jobs
// that need no hub: checking an agreements file before it is deployed, making CURVE key pairs, and
// verifying a stopped hub's store.
//
// Exit codes: 0 done; 1 the operation failed (hub unreachable, HTTP error, invalid file, store
// inconsistent), with one line on stderr saying why; 2 bad usage, or verify could not open the
// store.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "carehub/policy/load.h"
#include "ctl_admin_client.h"
#include "ctl_cluster.h"
#include "ctl_format.h"
#include "ctl_inquiry.h"
#include "ctl_verify.h"

namespace {

using json = nlohmann::json;
using carehub::Result;
using carehub::Status;
using carehub::ctl::AdminClient;
using carehub::ctl::FormatAgo;
using carehub::ctl::Table;

using carehub::ctl::Fail;
using carehub::ctl::NowMs;

// Counts from JSON, whatever numeric type the hub used.
std::string Num(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    std::string digits = std::to_string(v.get<int64_t>());
    // Thousands separators: lag of 1234567 reads better as 1,234,567.
    std::string out;
    size_t lead = digits[0] == '-' ? 1 : 0;
    for (size_t i = 0; i < digits.size(); ++i) {
      out += digits[i];
      size_t left = digits.size() - i - 1;
      if (i >= lead && left > 0 && left % 3 == 0) {
        out += ',';
      }
    }
    return out;
  }
  if (v.is_number()) {
    return Num(json(static_cast<int64_t>(std::llround(v.get<double>()))));
  }
  if (v.is_string()) {
    return v.get<std::string>();
  }
  return v.is_null() ? "-" : v.dump();
}

std::string SubscriptionState(const json& s) {
  std::string notice = s.value("notice", "");
  if (!notice.empty()) {
    return "refused: " + notice;
  }
  return s.value("connected", false) ? "connected" : "disconnected";
}

std::string RenderStatus(const json& st) {
  int64_t now = st.value("now_unix_ms", NowMs());
  std::ostringstream out;
  bool ready = st.value("ready", false);
  out << "hub         " << (ready ? "READY" : "NOT READY: " + st.value("store_error", "")) << "\n"
      << "uptime      " << carehub::ctl::FormatDuration(st.value("uptime_seconds", 0.0))
      << " (since " << carehub::ctl::FormatUtc(st.value("started_unix_ms", int64_t{0})) << ")\n"
      << "durability  " << st.value("durability", "") << "\n"
      << "ingest      " << st.value("ingest_endpoint", "") << "\n"
      << "subscribe   " << st.value("subscribe_endpoint", "") << "\n"
      << "last seq    " << Num(st.value("last_hub_seq", json())) << "\n"
      << "stored      " << Num(st.value("events_stored", json())) << " events, "
      << Num(st.value("store_bytes", json())) << " bytes\n"
      << "quarantine  " << Num(st.value("quarantine_size", json())) << " records, "
      << Num(st.value("quarantine_open", json())) << " open\n";
  const json totals = st.value("totals", json::object());
  out << "totals      received " << Num(totals.value("received", json())) << ", accepted "
      << Num(totals.value("accepted", json())) << ", duplicate "
      << Num(totals.value("duplicate", json())) << ", rejected "
      << Num(totals.value("rejected", json())) << ", conflict "
      << Num(totals.value("conflict", json())) << ", delivered "
      << Num(totals.value("delivered", json())) << ", withheld "
      << Num(totals.value("withheld", json())) << "\n\n";

  Table publishers({"PUBLISHER", ">RECEIVED", ">ACCEPTED", ">DUPLICATE", ">REJECTED", "LAST SEEN"});
  const json publisher_map = st.value("publishers", json::object());
  for (const auto& [ods, p] : publisher_map.items()) {
    publishers.Add({ods, Num(p.value("received", json())), Num(p.value("accepted", json())),
                    Num(p.value("duplicate", json())), Num(p.value("rejected", json())),
                    FormatAgo(p.value("last_seen_unix_ms", int64_t{0}), now)});
  }
  out << "Publishers\n" << (publishers.empty() ? "  (none yet)\n" : publishers.Render()) << "\n";

  Table subs({"SUBSCRIPTION", "SUBSCRIBER", "PURPOSE", "STATE", ">CURSOR", ">LAG", ">DELIVERED",
              ">WITHHELD"});
  for (const auto& s : st.value("subscriptions", json::array())) {
    subs.Add({s.value("id", ""), s.value("subscriber", ""), s.value("purpose", ""),
              SubscriptionState(s), Num(s.value("cursor", json())), Num(s.value("lag", json())),
              Num(s.value("delivered", json())), Num(s.value("withheld", json()))});
  }
  out << "Subscriptions\n" << (subs.empty() ? "  (none)\n" : subs.Render());

  // CURVE: which key each identity connects with, to watch a rotation (docs/security.md).
  const json keys = st.value("keys", json::array());
  if (!keys.empty()) {
    Table t(
        {"IDENTITY", "KEY", "ENDPOINT", "LISTED", ">HANDSHAKES", "LAST HANDSHAKE", "LAST MESSAGE"});
    for (const auto& k : keys) {
      const int64_t last_message = k.value("last_message_unix_ms", int64_t{0});
      t.Add({k.value("identity", ""), k.value("key", ""), k.value("endpoint", ""),
             k.value("listed", false) ? "yes" : "REMOVED", Num(k.value("handshakes", json())),
             FormatAgo(k.value("last_handshake_unix_ms", int64_t{0}), now),
             last_message == 0 ? "-" : FormatAgo(last_message, now)});
    }
    out << "\nKeys in use\n" << t.Render();
  }
  return out.str();
}

int CmdStatus(AdminClient& client, bool as_json) {
  auto st = client.Get("/api/v1/status");
  if (!st.ok()) {
    return Fail(st.status().message());
  }
  std::cout << (as_json ? st->dump(2) + "\n" : RenderStatus(st.value()));
  return 0;
}

int CmdLag(AdminClient& client, bool as_json) {
  auto st = client.Get("/api/v1/status");
  if (!st.ok()) {
    return Fail(st.status().message());
  }
  const json subs = st->value("subscriptions", json::array());
  if (as_json) {
    json out = json::array();
    for (const auto& s : subs) {
      out.push_back({{"id", s.value("id", "")},
                     {"subscriber", s.value("subscriber", "")},
                     {"connected", s.value("connected", false)},
                     {"cursor", s.value("cursor", json())},
                     {"lag", s.value("lag", json())}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  Table t({"SUBSCRIPTION", "SUBSCRIBER", "STATE", ">CURSOR", ">LAG"});
  for (const auto& s : subs) {
    t.Add({s.value("id", ""), s.value("subscriber", ""), SubscriptionState(s),
           Num(s.value("cursor", json())), Num(s.value("lag", json()))});
  }
  std::cout << "head hub_seq " << Num(st->value("last_hub_seq", json())) << "\n"
            << (t.empty() ? "no subscriptions\n" : t.Render());
  return 0;
}

int CmdQuarantineList(AdminClient& client, uint64_t after, int limit, bool open_only,
                      bool as_json) {
  auto r = client.Get("/api/v1/quarantine?after=" + std::to_string(after) +
                      "&limit=" + std::to_string(limit) + (open_only ? "&state=open" : ""));
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  if (as_json) {
    std::cout << r->dump(2) << "\n";
    return 0;
  }
  int64_t now = NowMs();
  Table t({">ID", "WHEN", "PUBLISHER", "EVENT ID", "REASON", "STATE", "REPLAY", "MESSAGE"});
  for (const auto& q : r->value("items", json::array())) {
    std::string publisher = q.value("publisher_ods", "");
    std::string state = q.value("state", "open");
    if (state != "open") {
      state += " by " + q.value("state_by", "");
    }
    t.Add({Num(q.value("id", json())), FormatAgo(q.value("at_unix_ms", int64_t{0}), now),
           publisher.empty() ? q.value("sender", "-") : publisher, q.value("event_id", ""),
           q.value("reason", ""), state, q.value("replay_outcome", ""), q.value("message", "")});
  }
  std::cout << Num(r->value("total", json())) << " record(s) in quarantine, "
            << Num(r->value("open", json())) << " open\n"
            << (t.empty() ? "" : t.Render());
  return 0;
}

int CmdQuarantineShow(AdminClient& client, uint64_t id) {
  auto r = client.Get("/api/v1/quarantine/" + std::to_string(id));
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  std::cout << r->dump(2) << "\n";
  return 0;
}

int CmdQuarantineReplay(AdminClient& client, uint64_t id, const std::string& by, bool as_json) {
  auto r = client.Post("/api/v1/quarantine/" + std::to_string(id) + "/replay",
                       json{{"by", by.empty() ? carehub::ctl::DefaultOperator() : by}}.dump());
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  if (as_json) {
    std::cout << r->dump(2) << "\n";
  } else {
    std::string status = r->value("status", "");
    std::cout << "record " << id << " replayed: " << status;
    if (status == "ACCEPTED" || status == "DUPLICATE") {
      std::cout << " (hub_seq " << Num(r->value("hub_seq", json())) << ")";
    }
    std::string reason = r->value("reason", "");
    if (!reason.empty()) {
      std::cout << " " << reason << ": " << r->value("message", "");
    }
    std::cout << "\n";
  }
  std::string status = r->value("status", "");
  // A replay the hub still refuses is not a success for a script that wanted it stored.
  return status == "ACCEPTED" || status == "DUPLICATE" ? 0 : 1;
}

// One line per reloaded file (what, outcome, what is in force), then its changes indented.
std::string RenderReload(const json& report) {
  std::ostringstream out;
  for (const auto& f : report.value("files", json::array())) {
    const std::string what = f.value("what", "");
    const bool identities = what == "identities";
    const std::string in_force =
        Num(f.value("entries", json())) + (identities ? " identities, " : " agreements, ") +
        Num(f.value("keys_or_subscribers", json())) + (identities ? " keys" : " subscribers");
    const json changes = f.value("changes", json::array());
    out << what << ": ";
    if (!f.value("applied", false)) {
      out << "REFUSED, the previous " << what << " stay in force (" << in_force
          << "): " << f.value("error", "") << "\n";
      continue;
    }
    out << "reloaded from " << f.value("file", "") << ": "
        << (changes.empty() ? std::string("no changes")
                            : std::to_string(changes.size()) + " change(s)")
        << " (" << in_force << " in force)\n";
    for (const auto& c : changes) {
      out << "  " << c.get<std::string>() << "\n";
    }
  }
  return out.str();
}

// resolve / dismiss: closes an open record with who and why.
int CmdQuarantineClose(AdminClient& client, uint64_t id, const std::string& verb,
                       const std::string& by, const std::string& note) {
  auto r = client.Post(
      "/api/v1/quarantine/" + std::to_string(id) + "/" + verb,
      json{{"by", by.empty() ? carehub::ctl::DefaultOperator() : by}, {"note", note}}.dump());
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  std::cout << "record " << id << " " << r->value("state", "") << " by " << r->value("state_by", "")
            << "\n";
  return 0;
}

int CmdReload(AdminClient& client, bool as_json) {
  // 422 carries the same report: one file refused, the other perhaps applied.
  auto r = client.Post("/api/v1/reload", "", /*json_also_on=*/422);
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  std::cout << (as_json ? r->dump(2) + "\n" : RenderReload(r.value()));
  if (!r->value("reloaded", false)) {
    return Fail("reload refused: " + r->value("message", std::string("see above")));
  }
  return 0;
}

int CmdAgreementsCheck(const std::string& file) {
  auto policy = carehub::policy::LoadPolicy(file);
  if (!policy.ok()) {
    return Fail(policy.status().message());
  }
  const auto& p = *policy.value();
  std::cout << "OK " << file << ": " << p.agreements().size() << " agreement(s), "
            << p.subscribers().size() << " subscriber(s), " << p.organisation_groups().size()
            << " organisation group(s), " << p.opt_out_count() << " opt-out(s)\n"
            << p.Describe();
  if (!p.Describe().empty() && p.Describe().back() != '\n') {
    std::cout << "\n";
  }
  return 0;
}

int CmdAudit(AdminClient& client, const std::string& subscriber, const std::string& since,
             const std::string& until, int limit, bool as_json) {
  int64_t now = NowMs();
  std::string query = "/api/v1/audit?limit=" + std::to_string(limit);
  if (!subscriber.empty()) {
    query += "&subscriber=" + carehub::ctl::UrlEncode(subscriber);
  }
  if (!since.empty()) {
    auto t = carehub::ctl::ParseTimeArg(since, now);
    if (!t.ok()) {
      return Fail("--since: " + t.status().message());
    }
    query += "&since=" + std::to_string(t.value());
  }
  if (!until.empty()) {
    auto t = carehub::ctl::ParseTimeArg(until, now);
    if (!t.ok()) {
      return Fail("--until: " + t.status().message());
    }
    query += "&until=" + std::to_string(t.value());
  }
  auto r = client.Get(query);
  if (!r.ok()) {
    return Fail(r.status().message());
  }
  if (as_json) {
    std::cout << r->dump(2) << "\n";
    return 0;
  }
  Table t({"WHEN (UTC)", "KIND", "SUBSCRIBER", "SUBSCRIPTION", "AGREEMENT", ">FROM", ">TO",
           ">DELIVERED", "WITHHELD", "DETAIL"});
  for (const auto& a : r->value("items", json::array())) {
    std::string withheld;
    const json by_reason = a.value("withheld_by_reason", json::object());
    for (const auto& [reason, n] : by_reason.items()) {
      withheld += (withheld.empty() ? "" : ",") + reason + "=" + Num(n);
    }
    std::string detail = a.value("detail", "");
    detail = detail.substr(0, detail.find('\n'));
    t.Add({carehub::ctl::FormatUtc(a.value("at_unix_ms", int64_t{0})), a.value("kind", ""),
           a.value("subscriber", ""), a.value("subscription", ""), a.value("agreement", ""),
           Num(a.value("from_seq", json())), Num(a.value("to_seq", json())),
           Num(a.value("delivered", json())), withheld.empty() ? "-" : withheld, detail});
  }
  std::cout << (t.empty() ? "no audit records in that range\n" : t.Render());
  return 0;
}

// Writes `text` to a new file with `mode`; refuses to replace an existing file unless `force`.
Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode, bool force) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    return Status::Error("write_failed",
                         "cannot create " + path + ": " + std::strerror(errno) +
                             (errno == EEXIST ? " (use --force to replace it)" : ""));
  }
  // The umask must not widen or narrow what we promise; a replaced file keeps no old mode.
  bool ok = ::fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    return Status::Error("write_failed", "cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

int CmdKeygen(const std::string& name, bool force) {
  char public_key[41] = {};
  char secret_key[41] = {};
  // Z85 includes '#', which key-file readers treat as the start of a comment; a pair without it
  // reads back the same everywhere. About 6 in 10 pairs qualify, so this ends almost at once.
  bool found = false;
  for (int attempt = 0; attempt < 1000 && !found; ++attempt) {
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
      return Fail(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                  " (libzmq built without CURVE?)");
    }
    found = std::strchr(public_key, '#') == nullptr && std::strchr(secret_key, '#') == nullptr;
  }
  if (!found) {
    return Fail("cannot make a CURVE key pair without '#' in 1000 attempts");
  }
  std::string key_file = name + ".key";
  std::string pub_file = name + ".pub";
  std::string pub_line = std::string("public: ") + public_key + "\n";
  Status s = WriteNewFile(key_file,
                          "# carehub CURVE key pair: keep secret, never copy off this host\n" +
                              pub_line + "secret: " + secret_key + "\n",
                          0600, force);
  if (!s.ok()) {
    return Fail(s.message());
  }
  s = WriteNewFile(pub_file,
                   "# carehub CURVE public key: give this to the hub operator\n" + pub_line, 0644,
                   force);
  if (!s.ok()) {
    return Fail(s.message());
  }
  std::cout << "wrote " << key_file << " (secret, mode 0600) and " << pub_file
            << " (public)\npublic key: " << public_key << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehubctl: operate a carehub hub through its admin API"};
  app.require_subcommand(1);
  std::string admin = "127.0.0.1:7480";
  std::string token_file;
  app.add_option("--admin", admin, "the hub's admin address HOST:PORT")
      ->envname("CAREHUB_ADMIN")
      ->capture_default_str();
  app.add_option("--token-file", token_file, "file holding the admin bearer token")
      ->envname("CAREHUB_ADMIN_TOKEN_FILE");

  bool as_json = false;
  auto* status = app.add_subcommand("status", "hub health, totals, publishers and subscriptions");
  status->add_flag("--json", as_json, "print the raw JSON status");
  auto* lag = app.add_subcommand("lag", "cursor and lag of each subscription");
  lag->add_flag("--json", as_json, "print JSON");

  auto* quarantine = app.add_subcommand("quarantine", "inspect and replay quarantined input");
  quarantine->require_subcommand(1);
  uint64_t after = 0;
  int limit = 100;
  uint64_t id = 0;
  bool open_only = false;
  std::string by;
  std::string note;
  auto* q_list = quarantine->add_subcommand("list", "list quarantine records");
  q_list->add_flag("--open", open_only, "only records nobody has dealt with yet");
  q_list->add_option("--after", after, "only records with a larger id");
  q_list->add_option("--limit", limit, "at most this many records")->check(CLI::Range(1, 10000));
  q_list->add_flag("--json", as_json, "print JSON");
  auto* q_show = quarantine->add_subcommand("show", "show one record with its decoded event");
  q_show->add_option("id", id, "record id")->required();
  auto* q_replay = quarantine->add_subcommand("replay", "submit a record's event to ingest again");
  q_replay->add_option("id", id, "record id")->required();
  q_replay->add_flag("--json", as_json, "print JSON");
  q_replay->add_option("--by", by, "who replays it (default: $USER@host)");
  auto* q_resolve = quarantine->add_subcommand(
      "resolve", "close an open record: dealt with another way (e.g. a corrected event was sent)");
  auto* q_dismiss =
      quarantine->add_subcommand("dismiss", "close an open record: nothing to do (e.g. a test)");
  for (auto* c : {q_resolve, q_dismiss}) {
    c->add_option("id", id, "record id")->required();
    c->add_option("--note", note, "why (kept with the record and audited)")->required();
    c->add_option("--by", by, "who (default: $USER@host)");
  }

  auto* reload = app.add_subcommand(
      "reload", "make the hub re-read its agreements and identities files (as SIGHUP does)");
  reload->add_flag("--json", as_json, "print the JSON report");
  auto* agreements = app.add_subcommand("agreements", "data-sharing agreements");
  agreements->require_subcommand(1);
  auto* a_reload = agreements->add_subcommand(
      "reload", "the same as `carehubctl reload` (agreements and identities)");
  std::string check_file;
  auto* a_check = agreements->add_subcommand("check", "validate an agreements file locally");
  a_check->add_option("file", check_file, "agreements YAML")->required();

  std::string subscriber;
  std::string since;
  std::string until;
  int audit_limit = 1000;
  auto* audit = app.add_subcommand("audit", "delivery and agreement-change audit records");
  audit->add_option("--subscriber", subscriber, "only this subscriber");
  audit->add_option("--since", since, "RFC 3339 time or a duration ago (1h, 7d)");
  audit->add_option("--until", until, "RFC 3339 time or a duration ago");
  audit->add_option("--limit", audit_limit, "at most this many records")
      ->check(CLI::Range(1, 100000));
  audit->add_flag("--json", as_json, "print JSON");

  carehub::ctl::TraceArgs trace_args;
  uint64_t trace_seq = 0;
  auto* trace = app.add_subcommand(
      "trace",
      "one event's path: accepted or refused, and for every subscription delivered, "
      "withheld (which rule), not covered or not yet reached");
  auto* trace_publisher =
      trace->add_option("--publisher", trace_args.publisher, "the publisher's ODS code");
  auto* trace_event_id =
      trace->add_option("--event-id", trace_args.event_id, "the event id it sent");
  auto* trace_by_seq = trace->add_option("--seq", trace_seq, "the event's hub_seq instead");
  trace_publisher->needs(trace_event_id);
  trace_event_id->needs(trace_publisher);
  trace_by_seq->excludes(trace_publisher)->excludes(trace_event_id);
  trace->add_flag("--json", trace_args.as_json, "print JSON");

  carehub::ctl::DisclosuresArgs disclosures_args;
  auto* disclosures = app.add_subcommand(
      "disclosures", "every delivery of data about one patient (audited: say why with --reason)");
  disclosures->add_option("--nhs-number", disclosures_args.nhs_number, "the patient's NHS number")
      ->required();
  disclosures->add_option("--since", disclosures_args.since, "from (date, RFC 3339 or 30d)");
  disclosures->add_option("--until", disclosures_args.until, "until (a date includes that day)");
  disclosures->add_option("--format", disclosures_args.format, "table, csv, html or json")
      ->check(CLI::IsMember({"table", "csv", "html", "json"}))
      ->capture_default_str();
  disclosures->add_option("--out", disclosures_args.out, "write to this file (csv, html, json)");
  disclosures
      ->add_option("--reason", disclosures_args.reason,
                   "why (e.g. the subject access request's reference): recorded in the audit")
      ->required();
  disclosures->add_option("--by", disclosures_args.by, "who asks (default: $USER@host)");

  carehub::ctl::EventsArgs events_args;
  auto* events = app.add_subcommand(
      "events", "browse what arrived, newest first (patient identifiers are not shown)");
  events->add_option("--publisher", events_args.publisher, "only this publisher (ODS code)");
  events->add_option("--site", events_args.site, "only this site (ODS code)");
  events->add_option("--type", events_args.type, "an event type or a family (activity.*)");
  events->add_option("--since", events_args.since, "received from (date, RFC 3339 or 1h)");
  events->add_option("--until", events_args.until, "received until");
  events->add_option("--before-seq", events_args.before_seq, "the next page: events below this");
  events->add_option("--limit", events_args.limit, "at most this many")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  events->add_flag("--json", events_args.as_json, "print JSON");

  carehub::ctl::EventArgs event_args;
  auto* event = app.add_subcommand(
      "event", "one event as JSON, patient identifiers masked unless --reveal (audited)");
  event->add_option("hub_seq", event_args.hub_seq, "the event's hub_seq")->required();
  event->add_flag("--reveal", event_args.reveal, "show the identifiers (needs --reason)");
  event->add_option("--reason", event_args.reason, "why they must be seen: recorded in the audit");
  event->add_option("--by", event_args.by, "who (default: $USER@host)");

  std::string key_name;
  bool force = false;
  auto* keygen = app.add_subcommand("keygen", "make a CURVE key pair: NAME.key and NAME.pub");
  keygen->add_option("--out", key_name, "output name (without extension)")->required();
  keygen->add_flag("--force", force, "replace existing files");

  std::string verify_dir;
  uint32_t dedup_window_days = 400;
  auto* verify =
      app.add_subcommand("verify", "offline consistency check of a stopped hub's data dir");
  verify->add_option("--data-dir", verify_dir, "the hub's store.data_dir")->required();
  verify->add_option("--dedup-window-days", dedup_window_days, "the hub's dedup.window_days")
      ->capture_default_str();

  std::string compare_a;
  std::string compare_b;
  auto* compare = app.add_subcommand(
      "compare", "prove two data dirs hold the same store (a standby and its primary)");
  compare->add_option("dir_a", compare_a, "a hub's data dir")->required();
  compare->add_option("dir_b", compare_b, "another hub's data dir")->required();
  bool force_promote = false;
  int role_wait_s = 30;
  auto* promote = app.add_subcommand("promote", "make the standby at --admin the primary");
  promote->add_flag("--force", force_promote,
                    "promote even when the standby may lack acknowledged events "
                    "(docs/replication.md says what that can lose)");
  promote->add_option("--wait", role_wait_s, "seconds to wait for the new role");
  auto* demote = app.add_subcommand(
      "demote", "make the primary at --admin hand its log to the standby and become a standby");
  demote->add_option("--wait", role_wait_s, "seconds to wait for the new role");
  auto* cluster = app.add_subcommand("cluster", "the replicated pair");
  cluster->require_subcommand(1);
  auto* cluster_status =
      cluster->add_subcommand("status", "role, position, sync and lag of each hub");
  std::vector<std::string> cluster_admins;
  cluster_status
      ->add_option("--hubs", cluster_admins, "admin addresses of the hubs (default: --admin)")
      ->delimiter(',');
  cluster_status->add_flag("--json", as_json, "print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  // Commands that need no hub.
  if (a_check->parsed()) {
    return CmdAgreementsCheck(check_file);
  }
  if (keygen->parsed()) {
    return CmdKeygen(key_name, force);
  }
  if (verify->parsed()) {
    return carehub::ctl::CmdVerify(verify_dir, dedup_window_days);
  }
  if (compare->parsed()) {
    return carehub::ctl::CmdCompare(compare_a, compare_b);
  }

  carehub::ctl::AdminClientOptions options;
  options.address = admin;
  if (!token_file.empty()) {
    auto token = carehub::ctl::ReadTokenFile(token_file);
    if (!token.ok()) {
      return Fail(token.status().message());
    }
    options.token = token.value();
  }
  if (promote->parsed() || demote->parsed()) {
    return carehub::ctl::CmdChangeRole(options, promote->parsed() ? "primary" : "standby",
                                       force_promote, std::chrono::seconds(role_wait_s));
  }
  if (cluster_status->parsed()) {
    if (cluster_admins.empty()) {
      cluster_admins.push_back(admin);
    }
    return carehub::ctl::CmdClusterStatus(options, cluster_admins, as_json);
  }
  AdminClient client(options);
  if (status->parsed()) {
    return CmdStatus(client, as_json);
  }
  if (lag->parsed()) {
    return CmdLag(client, as_json);
  }
  if (q_list->parsed()) {
    return CmdQuarantineList(client, after, limit, open_only, as_json);
  }
  if (q_show->parsed()) {
    return CmdQuarantineShow(client, id);
  }
  if (q_replay->parsed()) {
    return CmdQuarantineReplay(client, id, by, as_json);
  }
  if (q_resolve->parsed() || q_dismiss->parsed()) {
    return CmdQuarantineClose(client, id, q_resolve->parsed() ? "resolve" : "dismiss", by, note);
  }
  if (reload->parsed() || a_reload->parsed()) {
    return CmdReload(client, as_json);
  }
  if (audit->parsed()) {
    return CmdAudit(client, subscriber, since, until, audit_limit, as_json);
  }
  if (trace->parsed()) {
    if (trace_by_seq->count() > 0) {
      trace_args.hub_seq = trace_seq;
    } else if (trace_args.publisher.empty()) {
      return Fail("trace: give --publisher and --event-id, or --seq");
    }
    return carehub::ctl::CmdTrace(client, trace_args);
  }
  if (disclosures->parsed()) {
    return carehub::ctl::CmdDisclosures(client, disclosures_args);
  }
  if (events->parsed()) {
    return carehub::ctl::CmdEvents(client, events_args);
  }
  if (event->parsed()) {
    return carehub::ctl::CmdEvent(client, event_args);
  }
  return Fail("no command given");
}
