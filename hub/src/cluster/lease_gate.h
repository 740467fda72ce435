#pragma once
// Whether this hub may act as the primary now: true until a deadline on the monotonic clock that
// the cluster member (cluster_member.h) moves forward each time etcd renews the leader lease.
//
// The deadline is the time the renewal was *sent* plus a fraction of the TTL etcd granted: etcd
// starts the TTL when it handles the request, after the send, so the gate closes before the lease
// can have expired anywhere, and before any other hub can have been elected. CLOCK_MONOTONIC runs
// on while the process is stopped (SIGSTOP): a hub resumed after its lease ran out finds the gate
// closed at its next check, before it answers or delivers anything.
//
// The serving paths check it just before each acknowledgement and each delivery; a closed gate
// means RETRY / hold, never an answer.
//
// Thread-safety: every method from any thread (one atomic).

#include <atomic>
#include <chrono>

namespace carehub::hub {

class LeaseGate {
 public:
  using Clock = std::chrono::steady_clock;

  bool Open() const { return Clock::now().time_since_epoch().count() < until_.load(); }
  void OpenUntil(Clock::time_point until) { until_.store(until.time_since_epoch().count()); }
  void Close() { until_.store(0); }
  // Time left (zero or negative when closed), for metrics and status.
  std::chrono::milliseconds Remaining() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        Clock::duration(until_.load() - Clock::now().time_since_epoch().count()));
  }

 private:
  std::atomic<Clock::rep> until_{0};
};

}  // namespace carehub::hub
