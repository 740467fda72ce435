#include "carehub/sink/postgres_sink.h"

#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "carehub/client/subscriber.h"
#include "carehub/core/crash_points.h"
#include "carehub/core/log.h"
#include "carehub/sink/pg_writer.h"

namespace carehub::sink {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Codes after which retrying cannot help: the operator must change the config or the binary.
bool IsFatal(const Status& s) { return s.code() == "bad_config" || s.code() == "schema_too_new"; }

// The hub's answers to Subscribe that mean "not now", as opposed to "never": no hub answered, or
// the one that did is a standby during a switch-over (docs/replication.md on main: not_primary,
// standby_unavailable).
bool IsRetryableSubscribeError(const Status& s) {
  return s.code() == "hub_unreachable" || s.code() == "not_primary" ||
         s.code() == "standby_unavailable";
}

}  // namespace

struct PostgresSink::Metrics {
  explicit Metrics(metrics::Registry& r)
      : loaded(r.GetCounter("carehub_sink_events_loaded_total",
                            "Events stored in PostgreSQL (committed)")),
        skipped(r.GetCounter("carehub_sink_events_redelivered_total",
                             "Events received again at or below the stored position, skipped")),
        transactions(r.GetCounter("carehub_sink_transactions_total",
                                  "Transactions committed (rows and position together)")),
        repaired(r.GetCounter("carehub_sink_values_repaired_total",
                              "Text values with NUL bytes or invalid UTF-8 repaired before COPY")),
        pg_reconnects(r.GetCounter("carehub_sink_reconnects_total",
                                   "Connection attempts after a failure", {{"peer", "postgres"}})),
        hub_reconnects(r.GetCounter("carehub_sink_reconnects_total",
                                    "Connection attempts after a failure", {{"peer", "hub"}})),
        position(r.GetGauge("carehub_sink_position_hub_seq",
                            "Highest hub_seq whose effect is committed in PostgreSQL")),
        head(r.GetGauge("carehub_sink_hub_head_seq", "The hub's latest hub_seq, as last reported")),
        behind(r.GetGauge("carehub_sink_behind_hub_seq",
                          "hub_seq values between the stored position and the hub's head")),
        rate(r.GetGauge("carehub_sink_load_rate_events_per_second",
                        "Events stored per second over the last progress interval")),
        pg_up(r.GetGauge("carehub_sink_postgres_up", "1 while connected to PostgreSQL")),
        hub_up(r.GetGauge("carehub_sink_hub_up", "1 while subscribed at the hub")),
        commit_seconds(r.GetHistogram("carehub_sink_transaction_seconds",
                                      "Time to write and commit one batch",
                                      metrics::LatencyBuckets())) {}
  metrics::Counter& loaded;
  metrics::Counter& skipped;
  metrics::Counter& transactions;
  metrics::Counter& repaired;
  metrics::Counter& pg_reconnects;
  metrics::Counter& hub_reconnects;
  metrics::Gauge& position;
  metrics::Gauge& head;
  metrics::Gauge& behind;
  metrics::Gauge& rate;
  metrics::Gauge& pg_up;
  metrics::Gauge& hub_up;
  metrics::Histogram& commit_seconds;
};

PostgresSink::PostgresSink(SinkConfig config, metrics::Registry* registry)
    : config_(std::move(config)), metrics_(std::make_shared<Metrics>(*registry)) {}

void PostgresSink::SetProblem(std::string problem) {
  MutexLock lock(mu_);
  problem_ = std::move(problem);
}

std::string PostgresSink::UnhealthyReason() const {
  MutexLock lock(mu_);
  return problem_;
}

std::string PostgresSink::StatusJson() const {
  const uint64_t position = position_.load();
  const uint64_t head = head_.load();
  nlohmann::json j = {{"subscription", config_.subscription},
                      {"schema", config_.schema},
                      {"position", position},
                      {"head_seq", head},
                      {"behind", head > position ? head - position : 0},
                      {"events_loaded", loaded_.load()},
                      {"rate_per_s", rate_.load()},
                      {"problem", UnhealthyReason()}};
  return j.dump();
}

void PostgresSink::SleepBackoff(const std::atomic<bool>& stop, milliseconds* backoff) {
  const auto until = Steady::now() + *backoff;
  while (!stop && Steady::now() < until) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  *backoff = std::min(*backoff * 2, milliseconds(config_.reconnect_max_ms));
}

Status PostgresSink::Run(const std::atomic<bool>& stop) {
  auto log = Logger("sink");
  Metrics& m = *metrics_;
  std::unique_ptr<PgWriter> writer;
  std::unique_ptr<client::Subscriber> subscriber;
  std::vector<v1::DeliveredEvent> pending;
  uint64_t pending_scanned = 0;
  Steady::time_point pending_since{};
  const milliseconds initial_backoff(config_.reconnect_initial_ms);
  milliseconds backoff = initial_backoff;
  bool pg_failed_before = false;
  bool hub_failed_before = false;

  auto last_progress = Steady::now();
  uint64_t loaded_at_progress = 0;
  auto last_new = Steady::now();

  PgWriterOptions writer_options;
  writer_options.dsn = config_.dsn;
  writer_options.schema = config_.schema;
  writer_options.subscription = config_.subscription;
  writer_options.connect_timeout_s = static_cast<int>(config_.connect_timeout_s);

  std::optional<client::CurveClientKeys> curve;
  if (!config_.client_key_file.empty()) {
    auto keys = client::ReadKeyFile(config_.client_key_file);
    if (!keys.ok()) {
      return Status::Error("bad_config", keys.status().message());
    }
    auto server = client::ReadPublicKeyFile(config_.server_public_key_file);
    if (!server.ok()) {
      return Status::Error("bad_config", server.status().message());
    }
    curve = client::CurveClientKeys{keys->public_key, keys->secret_key, server.value()};
  }

  // Drops both connections after a PostgreSQL failure: what was gathered is not committed and
  // comes again from the hub after the next subscribe from the stored position.
  auto reset = [&](const Status& why) {
    log->warn("postgres: {}; reconnecting from the stored position", why.ToString());
    SetProblem("postgres: " + why.ToString());
    writer.reset();
    subscriber.reset();
    pending.clear();
    pending_scanned = 0;
    m.pg_up.Set(0);
    m.hub_up.Set(0);
    pg_failed_before = true;
  };

  // Commits what is gathered (and the position up to pending_scanned), then acknowledges.
  auto flush = [&]() -> Status {
    const auto started = Steady::now();
    auto outcome = writer->Write(pending, pending_scanned);
    if (!outcome.ok()) {
      return outcome.status();
    }
    CAREHUB_CRASH_POINT("sink.after_commit");
    m.commit_seconds.Observe(std::chrono::duration<double>(Steady::now() - started).count());
    m.transactions.Inc();
    m.loaded.Inc(outcome->written);
    m.skipped.Inc(outcome->skipped);
    m.repaired.Inc(outcome->repaired_values);
    loaded_ += outcome->written;
    position_ = outcome->position;
    m.position.Set(static_cast<double>(outcome->position));
    if (subscriber) {
      (void)subscriber->Ack(outcome->position);
    }
    pending.clear();
    return Status::Ok();
  };

  while (!stop) {
    if (!writer) {
      m.pg_reconnects.Inc(pg_failed_before ? 1 : 0);
      auto opened = PgWriter::Open(writer_options);
      if (!opened.ok()) {
        if (IsFatal(opened.status())) {
          return opened.status();
        }
        if (!pg_failed_before) {
          log->warn("postgres: {}; retrying", opened.status().ToString());
        }
        SetProblem("postgres: " + opened.status().ToString());
        pg_failed_before = true;
        SleepBackoff(stop, &backoff);
        continue;
      }
      writer = std::move(opened).value();
      auto position = writer->Position();
      if (!position.ok()) {
        reset(position.status());
        SleepBackoff(stop, &backoff);
        continue;
      }
      position_ = position.value();
      m.position.Set(static_cast<double>(position.value()));
      m.pg_up.Set(1);
      if (pg_failed_before) {
        log->info("postgres: connected again; position hub_seq {}", position.value());
      }
      pg_failed_before = false;
    }
    if (!subscriber) {
      client::SubscriberOptions options;
      options.endpoint = config_.hub_endpoint;
      options.subscription = config_.subscription;
      options.window = config_.window;
      options.curve = curve;
      const uint64_t from = position_.load() + 1;
      options.start = v1::Subscribe::START_AT_SEQ;
      options.start_seq = from;
      auto opened = client::Subscriber::Open(options);
      if (!opened.ok()) {
        if (!IsRetryableSubscribeError(opened.status())) {
          return Status::Error(opened.status().code(), "the hub refused subscription '" +
                                                           config_.subscription +
                                                           "': " + opened.status().message());
        }
        m.hub_reconnects.Inc();
        if (!hub_failed_before) {
          log->warn("hub: {}; retrying", opened.status().ToString());
        }
        hub_failed_before = true;
        SetProblem("hub: " + opened.status().ToString());
        SleepBackoff(stop, &backoff);
        continue;
      }
      subscriber = std::move(opened).value();
      head_ = std::max(head_.load(), subscriber->subscribed().head_seq());
      log->info("subscribed to {} from hub_seq {} (hub head {}) into schema {}",
                config_.subscription, from, subscriber->subscribed().head_seq(), config_.schema);
      hub_failed_before = false;
      m.hub_up.Set(1);
      SetProblem("");
      backoff = initial_backoff;
    }

    // Wait for the next delivery, but never past the moment the gathered batch is due.
    milliseconds wait(250);
    if (!pending.empty() || pending_scanned > position_.load()) {
      const auto due = pending_since + milliseconds(config_.batch_max_delay_ms);
      wait = std::clamp(std::chrono::duration_cast<milliseconds>(due - Steady::now()),
                        milliseconds(0), wait);
    }
    auto next = subscriber->Next(wait);
    if (!next.ok()) {
      log->warn("hub: {}; subscribing again from the stored position", next.status().ToString());
      SetProblem("hub: " + next.status().ToString());
      subscriber.reset();
      pending.clear();
      pending_scanned = 0;
      m.hub_up.Set(0);
      continue;
    }
    const auto now = Steady::now();
    if (next.value()) {
      client::DeliveryBatch& batch = *next.value();
      if (pending.empty() && pending_scanned <= position_.load()) {
        pending_since = now;
      }
      head_ = std::max(head_.load(), batch.head_seq);
      if (!batch.events.empty()) {
        last_new = now;
      }
      for (auto& e : batch.events) {
        pending.push_back(std::move(e));
      }
      pending_scanned = std::max(pending_scanned, batch.scanned_to_seq);
    }
    const bool due = pending.size() >= config_.batch_max_events ||
                     ((!pending.empty() || pending_scanned > position_.load()) &&
                      now - pending_since >= milliseconds(config_.batch_max_delay_ms));
    if (due) {
      Status flushed = flush();
      if (!flushed.ok()) {
        if (IsFatal(flushed)) {
          return flushed;
        }
        reset(flushed);
        SleepBackoff(stop, &backoff);
        continue;
      }
    }
    const uint64_t head = head_.load();
    const uint64_t position = position_.load();
    m.head.Set(static_cast<double>(head));
    m.behind.Set(static_cast<double>(head > position ? head - position : 0));
    if (now - last_progress >= std::chrono::seconds(config_.progress_interval_s)) {
      const double secs = std::chrono::duration<double>(now - last_progress).count();
      const uint64_t loaded = loaded_.load();
      rate_ = static_cast<double>(loaded - loaded_at_progress) / secs;
      m.rate.Set(rate_.load());
      if (loaded != loaded_at_progress || head > position) {
        log->info("position hub_seq {} of {} ({} behind), {:.0f} events/s, {} loaded this run",
                  position, head, head > position ? head - position : 0, rate_.load(), loaded);
      }
      last_progress = now;
      loaded_at_progress = loaded;
    }
    if (config_.exit_when_idle_s > 0 && pending.empty() && position >= head &&
        now - last_new > std::chrono::duration<double>(config_.exit_when_idle_s)) {
      log->info("caught up at hub_seq {} and idle for {} s: exiting", position,
                config_.exit_when_idle_s);
      break;
    }
  }

  // Stopping: commit what was gathered (the open batch), acknowledge, and let the Ack leave.
  if (writer && (!pending.empty() || pending_scanned > position_.load())) {
    Status flushed = flush();
    if (!flushed.ok()) {
      // Nothing is lost: the stored position still says where to resume.
      log->warn("postgres: {} while stopping; the next run resumes from hub_seq {}",
                flushed.ToString(), position_.load() + 1);
    }
  }
  if (subscriber) {
    (void)subscriber->Next(milliseconds(100));
  }
  log->info("stopped at hub_seq {} ({} events loaded this run)", position_.load(), loaded_.load());
  return Status::Ok();
}

}  // namespace carehub::sink
