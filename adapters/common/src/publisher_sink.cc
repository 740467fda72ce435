#include "carehub/adapters/publisher_sink.h"

#include <chrono>

#include "carehub/core/data_quality.h"

namespace carehub::adapters {

Status PublisherSink::Publish(const std::vector<v1::Event>& events) {
  if (events.empty()) {
    return Status::Ok();
  }
  MutexLock lock(mu_);
  ++stats_.publish_calls;
  if (!open_) {
    open_ = std::make_shared<Group>();
  }
  std::shared_ptr<Group> group = open_;
  group->events.insert(group->events.end(), events.begin(), events.end());
  // Only a writer closes a group, and it marks the group done before clearing writing_: so a
  // caller that sees no writer and its group not done still holds the open group and writes it.
  while (!group->done && writing_) {
    written_.Wait(mu_);
  }
  if (!group->done) {
    writing_ = true;
    open_.reset();
    mu_.Unlock();  // the fsync runs unlocked, so later callers can join the next group
    Status status = publisher_->Enqueue(group->events);
    mu_.Lock();
    ++stats_.outbox_writes;
    if (status.ok()) {
      stats_.events += group->events.size();
    }
    group->status = std::move(status);
    group->done = true;
    group->events.clear();
    group->events.shrink_to_fit();
    writing_ = false;
    written_.NotifyAll();
  }
  if (!group->status.ok()) {
    ++stats_.failures;
  } else {
    CountQuality(events);
  }
  return group->status;
}

void PublisherSink::CountQuality(const std::vector<v1::Event>& events) {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const v1::Event& event : events) {
    const DataQualityMeasures m = MeasureDataQuality(event);
    stats_.dq_verified_nhs_number += m.verified_nhs_number ? 1 : 0;
    stats_.dq_valid_postcode += m.valid_postcode ? 1 : 0;
    stats_.dq_valid_practice += m.valid_practice ? 1 : 0;
    stats_.dq_valid_codes += m.valid_codes ? 1 : 0;
    stats_.dq_flags += static_cast<uint64_t>(event.envelope().data_quality_size());
    stats_.dq_delay_seconds_sum +=
        static_cast<double>(now - event.envelope().occurred_at().seconds());
  }
}

PublisherSinkStats PublisherSink::Stats() const {
  MutexLock lock(mu_);
  return stats_;
}

}  // namespace carehub::adapters
