#pragma once
// The clock and the EventSink the HL7 processor tests share: a fixed "now" after every sample
// message's times, and a sink that records what it was given and can be told to fail (the seam
// where a real outbox would be).

#include <chrono>
#include <mutex>
#include <vector>

#include "carehub/adapters/event_sink.h"
#include "carehub/core/clock.h"

namespace carehub::adapters::hl7::testing {

class FixedClock final : public Clock {
 public:
  // 2024-03-20T12:00:00Z: after every sample message's times.
  TimePoint Now() const override { return TimePoint(std::chrono::seconds(1710936000)); }
};

class RecordingSink final : public EventSink {
 public:
  Status Publish(const std::vector<v1::Event>& events) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_) {
      return Status::Error("outbox_unavailable", "disk full");
    }
    batches_.push_back(events);
    return Status::Ok();
  }
  void set_fail(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = fail;
  }
  std::vector<std::vector<v1::Event>> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  // Every event of every batch, in order.
  std::vector<v1::Event> events() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<v1::Event> out;
    for (const auto& batch : batches_) {
      out.insert(out.end(), batch.begin(), batch.end());
    }
    return out;
  }

 private:
  std::mutex mu_;
  bool fail_ = false;
  std::vector<std::vector<v1::Event>> batches_;
};

}  // namespace carehub::adapters::hl7::testing
