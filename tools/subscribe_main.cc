// carehub-subscribe: receives a subscription's feed and writes it out as NDJSON or CSV. It
// acknowledges only what it has written and fsync'd, so if it crashes it loses nothing and, run
// again with --from resume, continues without gaps (at-least-once: a few events may repeat).

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "carehub/client/subscriber.h"
#include "carehub/core/event_types.h"
#include "carehub/core/log.h"
#include "curve_key_options.h"
#include "json_lines.h"

namespace {

std::atomic<bool> g_stop{false};

std::string CsvField(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) {
    return v;
  }
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') {
      out += "\"\"";
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) {
    return "";
  }
  time_t secs = t.seconds();
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* kCsvHeader =
    "hub_seq,agreement_id,event_type,event_id,publisher_ods,site_ods,lifecycle,"
    "supersedes_event_id,occurred_at,nhs_number,pseudonym,birth_date,sex,postcode,"
    "registered_gp_ods,encounter_id,referral_id,requester_ods,performer_ods,priority,"
    "treatment_function,specialty\n";

std::string CsvRow(const carehub::v1::DeliveredEvent& d) {
  const auto& e = d.event();
  const auto& env = e.envelope();
  const auto& p = env.patient();
  std::vector<std::string> cols = {
      std::to_string(env.hub_seq()),
      d.agreement_id(),
      carehub::EventTypeName(e),
      env.event_id(),
      env.publisher_ods(),
      env.site_ods(),
      carehub::v1::Lifecycle_Name(env.lifecycle()),
      env.supersedes_event_id(),
      Rfc3339(env.occurred_at()),
      p.nhs_number(),
      p.pseudonym(),
      p.birth_date(),
      carehub::v1::Sex_Name(p.sex()),
      p.postcode(),
      p.registered_gp_ods(),
      e.has_activity() ? e.activity().encounter_id() : "",
      e.has_activity() ? e.activity().referral_id() : e.referral().referral_id(),
      e.has_referral() ? e.referral().requester_ods() : "",
      e.has_referral() ? e.referral().performer_ods() : "",
      e.has_referral() ? carehub::v1::ReferralPriority_Name(e.referral().priority()) : "",
      e.has_activity() ? e.activity().treatment_function() : "",
      e.has_referral() ? e.referral().specialty() : "",
  };
  std::string row;
  for (size_t i = 0; i < cols.size(); ++i) {
    row += (i ? "," : "") + CsvField(cols[i]);
  }
  return row + "\n";
}

// Truncates `fd` after its last newline when it does not end with one. False on an I/O error.
bool TrimTornLine(int fd) {
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0) {
    return size == 0;
  }
  char buf[4096];
  off_t end = size;
  while (end > 0) {
    off_t start = end > static_cast<off_t>(sizeof(buf)) ? end - static_cast<off_t>(sizeof(buf)) : 0;
    ssize_t n = pread(fd, buf, static_cast<size_t>(end - start), start);
    if (n != end - start) {
      return false;
    }
    for (ssize_t i = n - 1; i >= 0; --i) {
      if (buf[i] == '\n') {
        off_t keep = start + i + 1;
        return keep == size || ftruncate(fd, keep) == 0;
      }
    }
    end = start;
  }
  return ftruncate(fd, 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehub-subscribe: receive a subscription's feed as NDJSON or CSV"};
  std::string endpoint = "tcp://127.0.0.1:7401";
  std::string subscription;
  std::string from = "resume";
  std::string format = "ndjson";
  std::string out_path;
  double until_idle = 0;
  uint64_t max_events = 0;
  uint32_t window = 10'000;
  app.add_option("--endpoint", endpoint, "hub subscribe endpoint");
  app.add_option("--subscription", subscription, "subscription id")->required();
  app.add_option("--from", from,
                 "resume | earliest | latest | HUB_SEQ | TIME (RFC 3339 or unix ms)");
  app.add_option("--format", format, "ndjson | csv")->check(CLI::IsMember({"ndjson", "csv"}));
  app.add_option("--out", out_path, "append to this file (default: standard output)");
  app.add_option("--until-idle", until_idle, "exit after this many seconds with nothing new");
  app.add_option("--max", max_events, "exit after writing this many events");
  app.add_option("--window", window, "credit window (events in flight)");
  carehub::tools::CurveKeyOptions curve_keys;
  carehub::tools::AddCurveKeyOptions(app, &curve_keys);
  CLI11_PARSE(app, argc, argv);
  // Events may go to stdout: the client library's log lines must not.
  carehub::UseStderrForLogs("carehub-subscribe", spdlog::level::info);
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });

  carehub::client::SubscriberOptions options;
  options.endpoint = endpoint;
  options.subscription = subscription;
  options.window = window;
  if (from == "resume") {
    options.start = carehub::v1::Subscribe::START_RESUME;
  } else if (from == "earliest") {
    options.start = carehub::v1::Subscribe::START_EARLIEST;
  } else if (from == "latest") {
    options.start = carehub::v1::Subscribe::START_LATEST;
  } else if (!from.empty() && from.find_first_not_of("0123456789") == std::string::npos &&
             from.size() < 13) {
    options.start = carehub::v1::Subscribe::START_AT_SEQ;
    options.start_seq = std::stoull(from);
  } else {
    google::protobuf::Timestamp ts;
    if (!from.empty() && from.find_first_not_of("0123456789") == std::string::npos) {
      options.start_time_unix_ms = std::stoll(from);
    } else if (google::protobuf::util::TimeUtil::FromString(from, &ts)) {
      options.start_time_unix_ms = ts.seconds() * 1000 + ts.nanos() / 1'000'000;
    } else {
      std::cerr << "carehub-subscribe: --from '" << from
                << "' is not resume, earliest, latest, a hub_seq or a time\n";
      return 2;
    }
    options.start = carehub::v1::Subscribe::START_AT_TIME;
  }
  auto curve = carehub::tools::ReadCurveKeyOptions(curve_keys);
  if (!curve.ok()) {
    std::cerr << "carehub-subscribe: " << curve.status().message() << "\n";
    return 2;
  }
  options.curve = curve.value();

  int fd = STDOUT_FILENO;
  bool new_file = false;
  if (!out_path.empty()) {
    new_file = access(out_path.c_str(), F_OK) != 0;
    fd = open(out_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      std::cerr << "carehub-subscribe: cannot open " << out_path << "\n";
      return 2;
    }
    // A run killed in the middle of a write leaves a torn last line. Those events were never
    // acknowledged, so the hub sends them again; drop the fragment so it does not glue itself to
    // the next record.
    if (!TrimTornLine(fd)) {
      std::cerr << "carehub-subscribe: cannot repair a torn last line in " << out_path << "\n";
      return 2;
    }
    if (lseek(fd, 0, SEEK_END) == 0) {
      new_file = true;
    }
  } else {
    new_file = true;
  }
  auto write_all = [&](const std::string& s) -> bool {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = write(fd, s.data() + off, s.size() - off);
      if (n <= 0) {
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  };
  if (format == "csv" && new_file && !write_all(kCsvHeader)) {
    std::cerr << "carehub-subscribe: cannot write output\n";
    return 1;
  }

  auto subscriber = carehub::client::Subscriber::Open(options);
  if (!subscriber.ok()) {
    std::cerr << "carehub-subscribe: " << subscriber.status().code() << ": "
              << subscriber.status().message() << "\n";
    return 1;
  }
  auto& sub = *subscriber.value();
  std::optional<std::string> last_notice;
  uint64_t written = 0;
  uint64_t last_seq = 0;
  auto last_new = std::chrono::steady_clock::now();
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  carehub::tools::JsonLineWriter json_lines(json_options);
  int rc = 0;
  while (!g_stop) {
    auto batch = sub.Next(std::chrono::milliseconds(250));
    if (!batch.ok()) {
      std::cerr << "carehub-subscribe: " << batch.status().code() << ": "
                << batch.status().message() << "\n";
      rc = 1;
      break;
    }
    if (auto n = sub.notice(); n && (!last_notice || *last_notice != n->code())) {
      std::cerr << "carehub-subscribe: notice " << n->code() << ": " << n->message() << "\n";
      last_notice = n->code();
    }
    auto now = std::chrono::steady_clock::now();
    if (batch.value()) {
      auto& b = *batch.value();
      std::string out;
      uint64_t ack_to = b.scanned_to_seq;
      for (const auto& d : b.events) {
        if (max_events > 0 && written >= max_events) {
          // Acknowledge only what was written: the rest is delivered again next time.
          ack_to = last_seq;
          break;
        }
        if (format == "csv") {
          out += CsvRow(d);
        } else {
          (void)json_lines.Append(d, &out);
          out += "\n";
        }
        last_seq = d.event().envelope().hub_seq();
        ++written;
      }
      if (!out.empty()) {
        if (!write_all(out) || (fd != STDOUT_FILENO && fsync(fd) != 0)) {
          std::cerr << "carehub-subscribe: cannot write output; not acknowledging\n";
          rc = 1;
          break;
        }
        last_new = now;
      }
      if (ack_to > 0) {
        (void)sub.Ack(ack_to);
      }
    }
    if (max_events > 0 && written >= max_events) {
      break;
    }
    if (until_idle > 0 && now - last_new > std::chrono::duration<double>(until_idle)) {
      break;
    }
  }
  // Give the last Ack a moment to leave before the socket closes.
  (void)sub.Next(std::chrono::milliseconds(100));
  if (fd != STDOUT_FILENO) {
    close(fd);
  }
  nlohmann::json summary = {
      {"subscription", subscription}, {"written", written}, {"last_hub_seq", last_seq}};
  std::cerr << summary.dump() << std::endl;
  return rc;
}
