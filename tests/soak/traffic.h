#pragma once
// The soak's publishers: each is an adapter-like client using the real client library with its
// durable outbox, publishing synthetic events for its own providers at a steady rate, with a share
// of resends (the same bytes again, answered DUPLICATE) and a few invalid events (REJECTED). Every
// event is recorded in the ledger before it is enqueued. Once during the run each client is closed
// and reopened on the same outbox, as an adapter restart would.
//
// One PublisherWorker per thread; counters() from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "carehub/client/publisher.h"
#include "carehub/core/status.h"
#include "feeds.h"
#include "ledger.h"

namespace carehub::soak {

struct TrafficOptions {
  std::string endpoint;
  std::filesystem::path outbox_dir;
  std::vector<std::string> providers;  // publisher ODS codes this client publishes for
  std::string id_prefix;
  uint64_t seed = 1;
  double events_per_second = 500;
  double resend_ratio = 0.02;
  double invalid_ratio = 0.002;
  uint32_t population = 5000;
  // Soak time (SoakNowMs) at which the client is closed and reopened on its outbox.
  int64_t reopen_at_ms = INT64_MAX;
};

struct TrafficCounters {
  uint64_t sent_valid = 0;     // first sends of valid events
  uint64_t sent_resends = 0;   // the same bytes again
  uint64_t sent_invalid = 0;
  uint64_t enqueue_calls = 0;
  uint64_t enqueue_errors = 0;
  uint64_t client_reopens = 0;
  // From the client library's stats, summed over every Open.
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  uint64_t conflict = 0;
  uint64_t retried = 0;
  uint64_t outbox_depth = 0;   // of the open client
};

class PublisherWorker {
 public:
  PublisherWorker(size_t client, TrafficOptions options, Ledger* ledger, Findings* findings);
  ~PublisherWorker();

  Status Open();
  // Publishes at the configured rate until `stop` is set.
  void Run(const std::atomic<bool>& stop);
  // Waits until the outbox is empty; false on timeout.
  bool Drain(std::chrono::milliseconds timeout);
  void Close();
  TrafficCounters counters() const;

 private:
  void AddStats(const client::PublisherStats& s, TrafficCounters* c) const;

  const size_t client_;
  const TrafficOptions options_;
  Ledger* ledger_;
  Findings* findings_;
  mutable std::mutex mu_;  // guards publisher_, counters_
  std::unique_ptr<client::Publisher> publisher_;
  TrafficCounters counters_;
};

}  // namespace carehub::soak
