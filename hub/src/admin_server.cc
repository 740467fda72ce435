#include "admin_server.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "admin_http_util.h"
#include "carehub/core/address.h"
#include "carehub/core/allocator.h"
#include "carehub/core/log.h"
#include "carehub/core/strings.h"
#include "carehub/hub/config.h"
#include "status_page.h"

namespace carehub::hub {
namespace {

using namespace admin_http;  // NOLINT: this file's own helpers, shared with the other route files

// Figures for the status page and gauges: an unreadable count shows as 0 (the read error itself is
// logged by the store path that needs the data, and the hub's health reflects the store).
uint64_t CountOrZero(const Result<uint64_t>& count) { return count.ok() ? count.value() : 0; }

json QuarantineSummary(const v1::QuarantineRecord& q) {
  return {{"id", q.id()},
          {"at_unix_ms", q.at_unix_ms()},
          {"sender", q.sender()},
          {"publisher_ods", q.publisher_ods()},
          {"event_id", q.event_id()},
          {"reason", q.reason()},
          {"message", q.message()},
          {"raw_kind", q.raw_kind()},
          {"raw_bytes", q.raw().size()},
          {"raw_size", q.raw_size() > 0 ? q.raw_size() : q.raw().size()},
          {"raw_sha256", HexEncode(q.raw_sha256())},
          {"replay_outcome", q.replay_outcome()},
          {"replay_hub_seq", q.replay_hub_seq()},
          {"state", QuarantineTable::IsOpen(q) ? std::string("open") : q.state()},
          {"state_by", q.state_by()},
          {"state_at_unix_ms", q.state_at_unix_ms()},
          {"state_note", q.state_note()}};
}

}  // namespace

AdminServer::AdminServer(std::string listen, std::string bearer_token, AdminContext context)
    : listen_(std::move(listen)),
      token_(std::move(bearer_token)),
      ctx_(std::move(context)),
      server_(std::make_unique<httplib::Server>()),
      started_unix_ms_(ToUnixMillis(std::chrono::system_clock::now())) {}

AdminServer::~AdminServer() { Stop(); }

std::string AdminServer::StatusJson() {
  json replication = nullptr;
  if (ctx_.replication_json) {
    replication = json::parse(ctx_.replication_json());
  }
  if (standby()) {
    json body = {
        {"role", "standby"},
        {"ready", false},
        {"uptime_seconds",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
        {"now_unix_ms", ToUnixMillis(std::chrono::system_clock::now())},
        {"ingest_endpoint", ctx_.ingest_endpoint},
        {"subscribe_endpoint", ctx_.subscribe_endpoint},
        {"replication", replication}};
    return body.dump(2);
  }
  json publishers = json::object();
  for (const auto& [ods, a] : ctx_.pipeline->Activity()) {
    const auto& q = a.quality;
    auto share = [&q](uint64_t n) {
      return q.events == 0 ? json(nullptr) : json(static_cast<double>(n) / q.events);
    };
    publishers[ods] = {
        {"received", a.received},
        {"accepted", a.accepted},
        {"duplicate", a.duplicate},
        {"rejected", a.rejected},
        {"last_seen_unix_ms", a.last_seen_unix_ms},
        // Shares of the accepted events (core/data_quality.h); null before the first.
        {"data_quality",
         {{"events", q.events},
          {"verified_nhs_number", share(q.verified_nhs_number)},
          {"valid_postcode", share(q.valid_postcode)},
          {"valid_practice", share(q.valid_practice)},
          {"valid_codes", share(q.valid_codes)},
          {"mean_delay_seconds",
           q.events == 0 ? json(nullptr)
                         : json(static_cast<double>(q.delay_seconds_sum) / q.events)}}}};
  }
  json subscriptions = json::array();
  for (const auto& s : ctx_.subscribe->Statuses()) {
    subscriptions.push_back({{"id", s.id},
                             {"subscriber", s.subscriber},
                             {"purpose", s.purpose},
                             {"connected", s.connected},
                             {"cursor", s.cursor},
                             {"lag", s.lag},
                             {"delivered", s.delivered},
                             {"withheld", s.withheld},
                             {"notice", s.notice}});
  }
  // Which key each identity connects with (docs/security.md, "Key rotation"): during a rotation
  // the old key's last use stops moving, and `listed` false shows one still used after removal.
  json keys = json::array();
  if (ctx_.key_use != nullptr) {
    std::set<std::string> listed;
    if (auto set = ctx_.identities != nullptr ? ctx_.identities->Get() : nullptr) {
      for (const auto& [id, identity] : set->identities()) {
        for (const auto& k : identity.public_keys) {
          listed.insert(id + "\n" + KeyFingerprint(k));
        }
      }
    }
    for (const auto& use : ctx_.key_use->Snapshot()) {
      keys.push_back({{"identity", use.identity},
                      {"key", use.key},
                      {"endpoint", use.domain},
                      {"listed", listed.count(use.identity + "\n" + use.key) > 0},
                      {"handshakes", use.handshakes},
                      {"last_handshake_unix_ms", use.last_handshake_unix_ms},
                      {"last_message_unix_ms", use.last_message_unix_ms}});
    }
  }
  auto& m = *ctx_.metrics;
  json body = {
      {"keys", keys},
      {"uptime_seconds",
       std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
      {"started_unix_ms", started_unix_ms_},
      {"now_unix_ms", ToUnixMillis(std::chrono::system_clock::now())},
      {"ready", ctx_.ingest->committer().healthy()},
      {"store_error",
       ctx_.ingest->committer().healthy() ? "" : ctx_.ingest->committer().last_error()},
      {"durability", ctx_.durability},
      {"ingest_endpoint", ctx_.ingest_endpoint},
      {"subscribe_endpoint", ctx_.subscribe_endpoint},
      {"last_hub_seq", ctx_.committed_seq->load()},
      {"events_stored", CountOrZero(ctx_.store->events().ApproximateCount())},
      {"store_bytes", ctx_.store->ApproximateSizeBytes()},
      {"quarantine_size", ctx_.store->quarantine().Count()},
      {"quarantine_open", ctx_.store->quarantine().OpenCount()},
      {"totals",
       {{"received", m.CounterTotal("carehub_events_received_total")},
        {"accepted", m.CounterTotal("carehub_events_accepted_total")},
        {"duplicate", m.CounterTotal("carehub_events_duplicate_total")},
        {"rejected", m.CounterTotal("carehub_events_rejected_total")},
        {"conflict", m.CounterTotal("carehub_events_conflict_total")},
        {"delivered", m.CounterTotal("carehub_subscription_delivered_total")},
        {"withheld", m.CounterTotal("carehub_subscription_withheld_total")}}},
      {"publishers", publishers},
      {"subscriptions", subscriptions},
      {"role", ctx_.role},
      {"replication", replication},
  };
  return body.dump(2);
}

void AdminServer::Routes() {
  auto& s = *server_;
  if (!token_.empty()) {
    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/healthz" || req.path == "/readyz") {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      if (req.get_header_value("Authorization") != "Bearer " + token_) {
        Problem(res, 401, "unauthorised",
                "send Authorization: Bearer <admin token> (carehubctl: --token-file FILE)");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
  }
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kStatusPageHtml, "text/html; charset=utf-8");
  });
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (standby()) {
      // Ready means "send traffic here": only the primary is (a load balancer or a Kubernetes
      // Service then routes to whichever hub is primary).
      res.status = 503;
      res.set_content("not ready: standby (role standby)\n", "text/plain");
      return;
    }
    if (ctx_.replication_json) {
      auto r = json::parse(ctx_.replication_json());
      if (r.value("accepting_writes", true) == false) {
        res.status = 503;
        res.set_content("not ready: primary without a standby in sync (on_standby_loss: block)\n",
                        "text/plain");
        return;
      }
    }
    bool bound = !ctx_.endpoints_bound || ctx_.endpoints_bound();
    bool store_ok = ctx_.ingest->committer().healthy();
    if (bound && store_ok) {
      res.set_content("ready\n", "text/plain");
      return;
    }
    res.status = 503;
    res.set_content(
        std::string("not ready: ") +
            (!bound ? "endpoints not bound"
                    : "store refuses writes: " + ctx_.ingest->committer().last_error()) +
            "\n",
        "text/plain");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ctx_.metrics->RenderPrometheus(), "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/api/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(StatusJson(), "application/json");
  });
  ReplicationRoutes();
  if (standby()) {
    return;  // a standby has no store of its own to show or change
  }
  QuarantineRoutes();
  AgreementAndAuditRoutes();
  InquiryRoutes();
}

void AdminServer::ReplicationRoutes() {
  auto& s = *server_;
  s.Get("/api/v1/replication", [this](const httplib::Request&, httplib::Response& res) {
    if (!ctx_.replication_json) {
      Problem(res, 404, "no_replication", "this hub has no replication section");
      return;
    }
    res.set_content(ctx_.replication_json(), "application/json");
  });
  auto change = [this](const std::string& to) {
    return [this, to](const httplib::Request& req, httplib::Response& res) {
      if (!ctx_.change_role) {
        Problem(res, 404, "no_replication", "this hub has no replication section");
        return;
      }
      const bool force = req.get_param_value("force") == "1";
      Status s = ctx_.change_role(to, force);
      if (!s.ok()) {
        Problem(res, 409, s.code(), s.message());
        return;
      }
      Log()->warn("admin API: role change to {} requested{}", to, force ? " (forced)" : "");
      Json(res, {{"accepted", true}, {"to", to}, {"force", force}}, 202);
    };
  };
  s.Post("/api/v1/replication/promote", change("primary"));
  s.Post("/api/v1/replication/demote", change("standby"));
}

// The quarantine record the path's id names; else answers 404 (no such record) or 503 (the store
// could not be read) and returns nothing.
std::optional<v1::QuarantineRecord> AdminServer::FindQuarantineRecord(const httplib::Request& req,
                                                                      httplib::Response& res) {
  auto record = ctx_.store->quarantine().Get(std::stoull(req.matches[1]));
  if (!record.ok()) {
    StoreProblem(res, record.status());
    return std::nullopt;
  }
  if (!record.value()) {
    Problem(res, 404, "not_found", "no quarantine record with that id");
  }
  return std::move(record).value();
}

// Closes a record (QuarantineTable::Close) and audits it as quarantine_<state>, with who and why.
Result<v1::QuarantineRecord> AdminServer::CloseQuarantineRecord(
    uint64_t id, const std::string& state, const std::string& by, const std::string& note,
    const std::function<void(v1::QuarantineRecord&)>& update) {
  const int64_t now = ToUnixMillis(std::chrono::system_clock::now());
  auto closed = ctx_.store->quarantine().Close(id, state, by, now, note, update);
  if (!closed.ok()) {
    return closed;
  }
  const auto& q = closed.value();
  v1::AuditRecord audit;
  audit.set_at_unix_ms(now);
  audit.set_kind("quarantine_" + state);
  audit.set_detail("record " + std::to_string(q.id()) + " (" + q.reason() + ", publisher " +
                   q.publisher_ods() + ", event " + q.event_id() + ") " + state + " by " + by +
                   (note.empty() ? "" : ": " + note));
  if (Status s = ctx_.store->audit().Append(audit); !s.ok()) {
    Log()->error("quarantine record {} {} but its audit record was not written: {}", q.id(), state,
                 s.ToString());
  }
  // Record ids, reasons and the operator's words only: no event content at info.
  Log()->info("quarantine record {} {} by {}", q.id(), state, by);
  return closed;
}

// Quarantine: list, show (decoded), replay through the ingest path, resolve, dismiss.
void AdminServer::QuarantineRoutes() {
  auto& s = *server_;
  s.Get("/api/v1/quarantine", [this](const httplib::Request& req, httplib::Response& res) {
    auto after = static_cast<uint64_t>(std::max<int64_t>(0, ParseInt(req, "after", 0)));
    auto limit = static_cast<size_t>(std::clamp<int64_t>(ParseInt(req, "limit", 100), 1, 10000));
    const std::string state = req.has_param("state") ? req.get_param_value("state") : "";
    if (!state.empty() && state != "open") {
      Problem(res, 400, "bad_request", "state may only be 'open'");
      return;
    }
    json items = json::array();
    // Page through the table until `limit` records pass the filter, or it ends.
    while (items.size() < limit) {
      auto records = ctx_.store->quarantine().List(after, limit);
      if (!records.ok()) {
        StoreProblem(res, records.status());
        return;
      }
      for (const auto& q : *records) {
        if (items.size() < limit && (state.empty() || QuarantineTable::IsOpen(q))) {
          items.push_back(QuarantineSummary(q));
        }
        after = q.id();
      }
      if (records->size() < limit) {
        break;
      }
    }
    Json(res, {{"total", ctx_.store->quarantine().Count()},
               {"open", ctx_.store->quarantine().OpenCount()},
               {"items", items}});
  });
  s.Get(R"(/api/v1/quarantine/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto q = FindQuarantineRecord(req, res);
    if (!q) {
      return;
    }
    json body = QuarantineSummary(*q);
    // The decoded input, so an operator can see what was wrong. This holds patient data: the admin
    // API is loopback-only or token-protected for that reason (docs/security.md).
    if (q->raw_kind() == "event") {
      v1::Event e;
      std::string text;
      if (e.ParseFromString(q->raw()) &&
          google::protobuf::util::MessageToJsonString(e, &text).ok()) {
        body["event"] = json::parse(text, nullptr, false);
      }
    }
    Json(res, body);
  });
  s.Post(R"(/api/v1/quarantine/(\d+)/replay)", [this](const httplib::Request& req,
                                                      httplib::Response& res) {
    auto q = FindQuarantineRecord(req, res);
    if (!q) {
      return;
    }
    v1::Event event;
    if (q->raw_kind() != "event" || !event.ParseFromString(q->raw())) {
      Problem(res, 422, "not_replayable",
              "this record holds a whole undecodable frame, not an event; nothing to replay");
      return;
    }
    auto future = ctx_.ingest->SubmitReplay(q->sender(), std::move(event));
    if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      Problem(res, 503, "timeout", "the ingest path did not answer within 10 s");
      return;
    }
    auto outcome = future.get();
    std::string status = v1::EventResult::Status_Name(outcome.status());
    q->set_replay_outcome(status + (outcome.reason().empty() ? "" : ": " + outcome.reason()));
    q->set_replay_hub_seq(outcome.hub_seq());
    const bool stored_now = outcome.status() == v1::EventResult::ACCEPTED ||
                            outcome.status() == v1::EventResult::DUPLICATE;
    if (stored_now && QuarantineTable::IsOpen(*q)) {
      // Dealt with: the event is in the log now. The record closes as "replayed" (and leaves the
      // open count the growth alert watches); a record already closed keeps its state.
      auto [by, note] = ByAndNote(req);
      const std::string outcome_text = q->replay_outcome();
      const uint64_t hub_seq = outcome.hub_seq();
      auto closed =
          CloseQuarantineRecord(q->id(), "replayed", by.empty() ? "operator" : by,
                                note.empty() ? outcome_text : note, [&](v1::QuarantineRecord& r) {
                                  r.set_replay_outcome(outcome_text);
                                  r.set_replay_hub_seq(hub_seq);
                                });
      if (!closed.ok()) {
        Log()->error("quarantine record {} replayed ({}) but its state was not stored: {}", q->id(),
                     outcome_text, closed.status().ToString());
      }
    } else if (Status stored = ctx_.store->quarantine().Put(*q); !stored.ok()) {
      // The replay itself went through the ingest path; only its note on the record is missing.
      Log()->error("quarantine record {} replayed ({}) but its outcome was not stored: {}", q->id(),
                   q->replay_outcome(), stored.ToString());
    } else {
      Log()->info("quarantine record {} replayed: {}", q->id(), q->replay_outcome());
    }
    Json(res, {{"id", q->id()},
               {"status", status},
               {"hub_seq", outcome.hub_seq()},
               {"reason", outcome.reason()},
               {"message", outcome.message()}});
  });
  // Close an open record by hand: resolved (fixed another way) or dismissed (nothing to do).
  for (const char* state : {"resolved", "dismissed"}) {
    const std::string verb = std::string(state) == "resolved" ? "resolve" : "dismiss";
    s.Post(R"(/api/v1/quarantine/(\d+)/)" + verb,
           [this, state](const httplib::Request& req, httplib::Response& res) {
             auto [by, note] = ByAndNote(req);
             if (by.empty()) {
               Problem(res, 400, "bad_request",
                       "say who closes it: a JSON body {\"by\": \"...\", \"note\": \"...\"}");
               return;
             }
             auto closed = CloseQuarantineRecord(std::stoull(req.matches[1]), state, by, note);
             if (!closed.ok()) {
               const std::string& code = closed.status().code();
               const int http = code == "not_found" ? 404 : code == "not_open" ? 409 : 503;
               Problem(res, http, code, closed.status().message());
               return;
             }
             Json(res, QuarantineSummary(closed.value()));
           });
  }
}

void AdminServer::AgreementAndAuditRoutes() {
  auto& s = *server_;
  // POST /api/v1/reload: re-reads every reloadable file (agreements, and identities on a CURVE
  // hub), as SIGHUP does, and answers what each did. /api/v1/agreements/reload is the older name
  // of the same request (it always reloaded identities too), kept for scripts that use it.
  auto reload = [this](const httplib::Request&, httplib::Response& res) {
    if (!ctx_.reload) {
      Problem(res, 422, "no_policy", "reload unavailable");
      return;
    }
    const ReloadReport report = ctx_.reload();
    json files = json::array();
    for (const auto& f : report.files) {
      json one = {{"what", f.what},       {"file", f.file},
                  {"applied", f.applied}, {"changes", f.changes},
                  {"entries", f.entries}, {"keys_or_subscribers", f.keys_or_subscribers}};
      if (!f.applied) {
        one["error"] = f.error;
      }
      files.push_back(std::move(one));
    }
    const Status st = report.status();
    json body = {{"reloaded", st.ok()}, {"files", files}};
    if (!st.ok()) {
      // The problem shape every error has, plus what the other file did.
      body["error"] = st.code();
      body["message"] = st.message();
    }
    Json(res, body, st.ok() ? 200 : 422);
  };
  s.Post("/api/v1/reload", reload);
  s.Post("/api/v1/agreements/reload", reload);
  s.Get("/api/v1/audit", [this](const httplib::Request& req, httplib::Response& res) {
    std::string subscriber = req.has_param("subscriber") ? req.get_param_value("subscriber") : "";
    int64_t since = ParseInt(req, "since", 0);
    int64_t until = ParseInt(req, "until", INT64_MAX);
    auto limit = static_cast<size_t>(std::clamp<int64_t>(ParseInt(req, "limit", 1000), 1, 100000));
    auto records = ctx_.store->audit().Query(subscriber, since, until, limit);
    if (!records.ok()) {
      StoreProblem(res, records.status());
      return;
    }
    json items = json::array();
    for (const auto& a : *records) {
      json withheld = json::object();
      for (const auto& [reason, n] : a.withheld_by_reason()) {
        withheld[reason] = n;
      }
      items.push_back({{"at_unix_ms", a.at_unix_ms()},
                       {"kind", a.kind()},
                       {"subscriber", a.subscriber()},
                       {"subscription", a.subscription()},
                       {"agreement", a.agreement()},
                       {"from_seq", a.from_seq()},
                       {"to_seq", a.to_seq()},
                       {"delivered", a.delivered()},
                       {"withheld_by_reason", withheld},
                       {"purpose", a.purpose()},
                       {"by", a.by()},
                       {"detail", a.detail()}});
    }
    Json(res, {{"items", items}});
  });
}

Result<std::string> AdminServer::Start() {
  Routes();
  auto& m = *ctx_.metrics;
  // Gauges whose values live elsewhere, refreshed at scrape time.
  refresher_ = m.AddRefresher([this] {
    auto& metrics = *ctx_.metrics;
    // The process's, primary or standby.
    metrics
        .GetGauge("carehub_allocator_info",
                  "1, labelled with the memory allocator the hub runs on.",
                  {{"allocator", AllocatorName()}})
        .Set(1);
    if (const auto figures = ReadAllocatorFigures()) {
      metrics.GetGauge("carehub_allocator_allocated_bytes", "Heap memory in use (jemalloc).")
          .Set(static_cast<double>(figures->allocated_bytes));
      metrics
          .GetGauge("carehub_allocator_resident_bytes",
                    "Physical memory the allocator holds, in use or kept for reuse (jemalloc).")
          .Set(static_cast<double>(figures->resident_bytes));
    }
    if (standby()) {
      return;
    }
    metrics.GetGauge("carehub_store_size_bytes", "Approximate bytes in the store.")
        .Set(static_cast<double>(ctx_.store->ApproximateSizeBytes()));
    metrics.GetGauge("carehub_store_events", "Events in the log.")
        .Set(static_cast<double>(CountOrZero(ctx_.store->events().ApproximateCount())));
    metrics.GetGauge("carehub_dedup_index_keys", "Approximate keys in the dedup index.")
        .Set(static_cast<double>(ctx_.store->dedup().ApproximateKeys()));
    const CompactionBacklog compactions = ctx_.store->Compactions();
    metrics.GetGauge("carehub_store_compactions_running", "RocksDB compactions running now.")
        .Set(static_cast<double>(compactions.running));
    metrics
        .GetGauge("carehub_store_compaction_pending_bytes",
                  "RocksDB's estimate of the bytes compaction still owes; writes stall when it "
                  "grows past the store's limits.")
        .Set(static_cast<double>(compactions.pending_bytes));
    const DisclosureIndexStats disclosures = ctx_.store->disclosures().Stats();
    auto gauge = [&](const char* name, const char* help, uint64_t value) {
      metrics.GetGauge(name, help).Set(static_cast<double>(value));
    };
    gauge("carehub_disclosure_index_unindexed_records",
          "Disclosure journal records (one per delivery batch) not yet in the run index; reports "
          "find them sorted in memory or in the journal meanwhile.",
          disclosures.journal_last - std::min(disclosures.indexed_to, disclosures.journal_last));
    gauge("carehub_disclosure_index_waiting_filings",
          "Disclosure filings sorted in memory, waiting for the next run.", disclosures.waiting);
    gauge("carehub_disclosure_index_waiting_bytes",
          "Memory the waiting disclosure filings hold; bounded by a run's worth.",
          disclosures.waiting_bytes);
    gauge("carehub_disclosure_index_waiting_bytes_peak",
          "The most memory waiting disclosure filings have held since start; the allocator keeps "
          "it for the next ones.",
          disclosures.waiting_bytes_peak);
    // The index counts since the store was opened; the counters only move forward.
    auto advance = [&](const char* name, const char* help, uint64_t value) {
      metrics::Counter& counter = metrics.GetCounter(name, help);
      if (value > counter.Value()) {
        counter.Inc(value - counter.Value());
      }
    };
    advance("carehub_disclosure_index_runs_total",
            "Runs of disclosure journal records added to the run index.", disclosures.runs);
    advance("carehub_disclosure_index_run_errors_total",
            "Disclosure index runs that failed (the journal keeps what they did not index; the "
            "next run retries from the same record).",
            disclosures.run_errors);
    metrics.GetGauge("carehub_quarantine_records", "Records in the quarantine.")
        .Set(static_cast<double>(ctx_.store->quarantine().Count()));
    if (ctx_.key_use != nullptr) {
      // Bounded: one series per key that got in, i.e. per key listed in the identities file.
      for (const auto& use : ctx_.key_use->Snapshot()) {
        metrics
            .GetGauge("carehub_identity_key_last_used_unix_seconds",
                      "When a message last came over a connection made with this key (or its "
                      "last handshake), by identity and key fingerprint.",
                      {{"identity", use.identity}, {"key", use.key}})
            .Set(static_cast<double>(
                     std::max(use.last_message_unix_ms, use.last_handshake_unix_ms)) /
                 1000.0);
      }
    }
    metrics
        .GetGauge("carehub_quarantine_open_records",
                  "Quarantine records nobody has replayed, resolved or dismissed yet.")
        .Set(static_cast<double>(ctx_.store->quarantine().OpenCount()));
    metrics.GetGauge("carehub_last_hub_seq", "Highest durable hub_seq.")
        .Set(static_cast<double>(ctx_.committed_seq->load()));
    metrics.GetGauge("carehub_store_writable", "1 when the store accepts writes.")
        .Set(ctx_.ingest->committer().healthy() ? 1 : 0);
    struct statvfs fs {};
    if (statvfs(ctx_.store->dir().c_str(), &fs) == 0) {
      metrics.GetGauge("carehub_store_disk_free_bytes", "Free bytes on the store's filesystem.")
          .Set(static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize));
      metrics.GetGauge("carehub_store_disk_size_bytes", "Size of the store's filesystem.")
          .Set(static_cast<double>(fs.f_blocks) * static_cast<double>(fs.f_frsize));
    }
    metrics.GetGauge("carehub_uptime_seconds", "Seconds since the hub started.")
        .Set(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  });
  auto address = ParseHostPort(listen_);
  if (!address.ok()) {
    return Status::Error("bad_config",
                         "admin.listen must be host:port: " + address.status().message());
  }
  const std::string host = address.value().host;
  const int port = address.value().port;
  int bound =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return Status::Error("bind_failed", "cannot bind admin HTTP on " + listen_);
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return host + ":" + std::to_string(bound);
}

void AdminServer::Stop() {
  if (server_ && thread_.joinable()) {
    // cpp-httplib's stop() does nothing until listen_after_bind() has marked the server running:
    // a SIGTERM right after start left the listener running and the join below hung (found by
    // tests/integration/reliability_storage_test.cc). Wait for it (bounded: a listener that
    // failed never runs).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (server_) {
    server_->stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  if (refresher_ != 0) {
    ctx_.metrics->RemoveRefresher(refresher_);
    refresher_ = 0;
  }
}

}  // namespace carehub::hub
