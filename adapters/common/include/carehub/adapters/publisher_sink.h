#pragma once
// The production EventSink: events go into the publisher client's durable outbox
// (carehub::client::Publisher::Enqueue), so Publish returns OK only once they are fsync'd and the
// adapter may acknowledge its source.
//
// Group commit: Publish calls that arrive while an outbox write is in progress are merged into the
// next write, so N concurrent sources (MLLP connections, HTTP requests) cost about one fsync per
// round instead of N. Each caller still returns only when the write holding its events is durable,
// and gets that write's status. A failed write fails every caller in it (the source then retries:
// HL7 AE, HTTP 503, CSV file left in place).
//
// Thread-safe. The publisher is not owned and must outlive the sink.

#include <cstdint>
#include <memory>
#include <vector>

#include "carehub/adapters/event_sink.h"
#include "carehub/client/publisher.h"
#include "carehub/core/mutex.h"

namespace carehub::adapters {

struct PublisherSinkStats {
  uint64_t publish_calls = 0;
  uint64_t events = 0;         // events durably enqueued
  uint64_t outbox_writes = 0;  // Enqueue calls (fewer than publish_calls under concurrency)
  uint64_t failures = 0;       // Publish calls that returned an error
  // Data quality of the events durably enqueued (carehub/core/data_quality.h, issue 21): how
  // many met each measure, how many flags adapters raised, and the summed delay from
  // occurred_at to the enqueue (the hub's received_at comes later; this is the source's part).
  uint64_t dq_verified_nhs_number = 0;
  uint64_t dq_valid_postcode = 0;
  uint64_t dq_valid_practice = 0;
  uint64_t dq_valid_codes = 0;
  uint64_t dq_flags = 0;
  double dq_delay_seconds_sum = 0;
};

class PublisherSink final : public EventSink {
 public:
  explicit PublisherSink(client::Publisher* publisher) : publisher_(publisher) {}
  PublisherSink(const PublisherSink&) = delete;
  PublisherSink& operator=(const PublisherSink&) = delete;

  Status Publish(const std::vector<v1::Event>& events) override CAREHUB_EXCLUDES(mu_);

  PublisherSinkStats Stats() const CAREHUB_EXCLUDES(mu_);

 private:
  // Adds the data-quality measures of `events` (durably enqueued) to stats_.
  void CountQuality(const std::vector<v1::Event>& events) CAREHUB_REQUIRES(mu_);
  // Touched only with mu_ held, except `events` while its writer enqueues them (the group is no
  // longer open_ then, so nobody else touches it until `done`).
  struct Group {
    std::vector<v1::Event> events;
    Status status;
    bool done = false;
  };

  client::Publisher* publisher_;
  mutable Mutex mu_;
  CondVar written_;  // signalled when a write ends
  // The group new callers join; taken (and reset) by the caller that writes it.
  std::shared_ptr<Group> open_ CAREHUB_GUARDED_BY(mu_);
  bool writing_ CAREHUB_GUARDED_BY(mu_) = false;
  PublisherSinkStats stats_ CAREHUB_GUARDED_BY(mu_);
};

}  // namespace carehub::adapters
