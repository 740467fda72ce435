#include "report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace carehub::soak {
namespace {

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

double MiB(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

struct MinMaxLast {
  uint64_t min = UINT64_MAX;
  uint64_t max = 0;
  uint64_t last = 0;
  void Add(uint64_t v) {
    min = std::min(min, v);
    max = std::max(max, v);
    last = v;
  }
};

// RSS and fds over the samples taken while the hub was up.
std::pair<MinMaxLast, MinMaxLast> Footprint(const SoakReport& r) {
  MinMaxLast rss;
  MinMaxLast fds;
  for (const auto& s : r.samples) {
    if (s.hub_up) {
      rss.Add(s.rss_bytes);
      fds.Add(s.open_fds);
    }
  }
  return {rss, fds};
}

// About a dozen evenly spaced samples (all when there are few), always the last.
std::vector<Sample> TableRows(const SoakReport& r) {
  std::vector<Sample> rows;
  const size_t step = std::max<size_t>(1, r.samples.size() / 12);
  for (size_t i = 0; i < r.samples.size(); i += step) {
    rows.push_back(r.samples[i]);
  }
  if (!r.samples.empty() && (r.samples.size() - 1) % step != 0) {
    rows.push_back(r.samples.back());
  }
  return rows;
}

std::string Row(const std::vector<std::string>& cells, bool markdown) {
  std::string out = markdown ? "|" : "  ";
  for (const auto& c : cells) {
    if (markdown) {
      out += " " + c + " |";
    } else {
      // Left-aligned columns 18 wide (wider values get one space).
      out += c + std::string(c.size() < 17 ? 18 - c.size() : 1, ' ');
    }
  }
  return out + "\n";
}

std::string Body(const SoakReport& r, bool markdown) {
  std::ostringstream o;
  const auto& t = r.traffic;
  const std::string b = markdown ? "- " : "  ";
  o << b << "duration: " << Fmt("%.1f", r.seconds) << " s (planned " << Fmt("%.2f", r.minutes)
    << " min), rate " << Fmt("%.0f", r.rate) << " events/s, seed " << r.seed << "\n";
  o << b << "events sent: " << (t.sent_valid + t.sent_resends + t.sent_invalid) << " ("
    << t.sent_valid << " valid first sends, " << t.sent_resends << " deliberate resends, "
    << t.sent_invalid << " invalid)\n";
  o << b << "publisher answers: " << t.accepted << " accepted, " << t.duplicate << " duplicate, "
    << t.rejected << " rejected, " << t.conflict << " conflict; " << t.retried
    << " events resent by the client library\n";
  o << b << "stored: " << r.stored << " events (stored twice: " << r.stored_twice
    << ", invalid stored: " << r.invalid_stored << "), quarantined " << r.quarantined
    << ", outboxes left " << r.outbox_left << "\n";
  o << b << "hub restarts: " << r.restarts_graceful << " graceful (SIGTERM), "
    << r.restarts_kill9 << " kill -9; publisher client reopens: " << t.client_reopens << "\n";
  o << b << "agreement reloads: " << r.reloads_narrow << " narrowing, " << r.reloads_widen
    << " widening, " << r.reloads_refused << " invalid file refused\n";
  o << b << "subscriber churn: " << r.SubscriberChurn() << " (sessions ended gracefully, killed "
    << "without ack, replays from earliest, failed opens while the hub was down)\n";
  o << b << "faults injected: " << r.FaultsInjected() << " (hub restarts, reloads, subscriber "
    << "kills without ack, publisher client reopens, invalid events; resends not counted)\n";
  o << b << "store check: " << r.store_check << "\n";
  o << b << "**events lost: " << r.lost << "**\n";
  o << b << "findings: " << r.findings << "\n";
  for (const auto& f : r.first_findings) {
    o << "    " << f << "\n";
  }
  o << (markdown ? "\n" : "") << "Subscribers:\n" << (markdown ? "\n" : "");
  std::vector<std::string> head = {"subscription", "purpose",    "sessions", "killed",
                                   "replays",      "stalls",     "delivered", "duplicates",
                                   "expected",     "missing",    "forbidden"};
  o << Row(head, markdown);
  if (markdown) {
    o << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  }
  for (const auto& f : r.feeds) {
    const auto& c = f.counters;
    o << Row({f.subscription, f.purpose, std::to_string(c.sessions),
              std::to_string(c.kills_without_ack), std::to_string(c.replays_from_earliest),
              std::to_string(c.stalls), std::to_string(c.deliveries), std::to_string(c.duplicates),
              std::to_string(c.expected), std::to_string(c.missing), std::to_string(c.forbidden)},
             markdown);
  }
  auto [rss, fds] = Footprint(r);
  o << (markdown ? "\n" : "") << "Hub footprint (while up): RSS min/max/last "
    << Fmt("%.0f", MiB(rss.min == UINT64_MAX ? 0 : rss.min)) << "/" << Fmt("%.0f", MiB(rss.max))
    << "/" << Fmt("%.0f", MiB(rss.last)) << " MiB; open fds min/max/last "
    << (fds.min == UINT64_MAX ? 0 : fds.min) << "/" << fds.max << "/" << fds.last << "\n"
    << (markdown ? "\n" : "");
  o << Row({"t (s)", "RSS (MiB)", "fds", "enqueued", "acked", "delivered"}, markdown);
  if (markdown) {
    o << "|---|---|---|---|---|---|\n";
  }
  for (const auto& s : TableRows(r)) {
    o << Row({Fmt("%.0f", s.at_seconds), s.hub_up ? Fmt("%.1f", MiB(s.rss_bytes)) : "down",
              s.hub_up ? std::to_string(s.open_fds) : "-", std::to_string(s.enqueued),
              std::to_string(s.acknowledged), std::to_string(s.deliveries)},
             markdown);
  }
  o << (markdown ? "\n" : "") << "Timeline:\n" << (markdown ? "\n" : "");
  for (const auto& line : r.timeline) {
    o << b << line << "\n";
  }
  return o.str();
}

}  // namespace

uint64_t SoakReport::FaultsInjected() const {
  uint64_t subscriber_kills = 0;
  for (const auto& f : feeds) {
    subscriber_kills += f.counters.kills_without_ack;
  }
  return restarts_graceful + restarts_kill9 + reloads_narrow + reloads_widen + reloads_refused +
         traffic.sent_invalid + traffic.client_reopens + subscriber_kills;
}

uint64_t SoakReport::SubscriberChurn() const {
  uint64_t n = 0;
  for (const auto& f : feeds) {
    n += f.counters.graceful_disconnects + f.counters.kills_without_ack +
         f.counters.replays_from_earliest + f.counters.open_failures + f.counters.stalls +
         f.counters.session_errors;
  }
  return n;
}

std::string ReportText(const SoakReport& r) {
  return std::string("carehub soak: ") + (r.ok() ? "PASS" : "FAIL") + "\n" + Body(r, false) +
         "replay: " + r.command + "\n";
}

std::string ReportMarkdown(const SoakReport& r) {
  return std::string("# carehub soak report: ") + (r.ok() ? "PASS" : "FAIL") + "\n\n" +
         Body(r, true) + "\nReplay: `" + r.command + "`\n";
}

std::string ReportJson(const SoakReport& r) {
  using nlohmann::json;
  const auto& t = r.traffic;
  json feeds = json::array();
  for (const auto& f : r.feeds) {
    const auto& c = f.counters;
    feeds.push_back({{"subscription", f.subscription},
                     {"purpose", f.purpose},
                     {"sessions", c.sessions},
                     {"graceful_disconnects", c.graceful_disconnects},
                     {"kills_without_ack", c.kills_without_ack},
                     {"replays_from_earliest", c.replays_from_earliest},
                     {"open_failures", c.open_failures},
                     {"session_errors", c.session_errors},
                     {"stalls", c.stalls},
                     {"batches", c.batches},
                     {"deliveries", c.deliveries},
                     {"duplicates", c.duplicates},
                     {"distinct", c.distinct},
                     {"expected", c.expected},
                     {"missing", c.missing},
                     {"forbidden", c.forbidden}});
  }
  json samples = json::array();
  for (const auto& s : r.samples) {
    samples.push_back({{"t", s.at_seconds},
                       {"hub_up", s.hub_up},
                       {"rss_bytes", s.rss_bytes},
                       {"open_fds", s.open_fds},
                       {"enqueued", s.enqueued},
                       {"acknowledged", s.acknowledged},
                       {"deliveries", s.deliveries}});
  }
  auto [rss, fds] = Footprint(r);
  json j = {
      {"result", r.ok() ? "pass" : "fail"},
      {"command", r.command},
      {"seed", r.seed},
      {"minutes_planned", r.minutes},
      {"rate", r.rate},
      {"seconds", r.seconds},
      {"events",
       {{"sent_valid", t.sent_valid},
        {"sent_resends", t.sent_resends},
        {"sent_invalid", t.sent_invalid},
        {"accepted", t.accepted},
        {"duplicate", t.duplicate},
        {"rejected", t.rejected},
        {"conflict", t.conflict},
        {"resent_by_client", t.retried},
        {"stored", r.stored},
        {"stored_twice", r.stored_twice},
        {"invalid_stored", r.invalid_stored},
        {"quarantined", r.quarantined},
        {"outbox_left", r.outbox_left},
        {"lost", r.lost}}},
      {"faults",
       {{"restarts_graceful", r.restarts_graceful},
        {"restarts_kill9", r.restarts_kill9},
        {"reloads_narrow", r.reloads_narrow},
        {"reloads_widen", r.reloads_widen},
        {"reloads_refused", r.reloads_refused},
        {"publisher_reopens", t.client_reopens},
        {"invalid_events", t.sent_invalid},
        {"subscriber_kills_without_ack",
         r.FaultsInjected() - r.restarts_graceful - r.restarts_kill9 - r.reloads_narrow -
             r.reloads_widen - r.reloads_refused - t.sent_invalid - t.client_reopens},
        {"total", r.FaultsInjected()},
        {"timeline", r.timeline}}},
      {"subscriber_churn", r.SubscriberChurn()},
      {"feeds", feeds},
      {"footprint",
       {{"rss_bytes", {{"min", rss.min == UINT64_MAX ? 0 : rss.min}, {"max", rss.max},
                       {"last", rss.last}}},
        {"open_fds", {{"min", fds.min == UINT64_MAX ? 0 : fds.min}, {"max", fds.max},
                      {"last", fds.last}}}}},
      {"samples", samples},
      {"store_check", r.store_check},
      {"findings", r.findings},
      {"first_findings", r.first_findings}};
  return j.dump(2) + "\n";
}

Status WriteReport(const SoakReport& r, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (const auto& [name, text] : {std::pair{std::string("report.json"), ReportJson(r)},
                                   std::pair{std::string("report.md"), ReportMarkdown(r)}}) {
    std::ofstream out(dir / name, std::ios::trunc);
    out << text;
    if (!out) {
      return Status::Error("write_failed", "cannot write " + (dir / name).string());
    }
  }
  return Status::Ok();
}

}  // namespace carehub::soak
