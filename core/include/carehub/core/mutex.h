#pragma once
// carehub::Mutex, carehub::MutexLock and carehub::CondVar: std::mutex and std::condition_variable
// with Clang thread-safety annotations (carehub/core/thread_annotations.h), so that
// `CAREHUB_GUARDED_BY(mu_)` on a member is checked by clang's -Wthread-safety (the ctest
// `ThreadSafetyAnalysis`). libstdc++'s std::mutex and std::lock_guard carry no annotations: the
// analysis cannot see them lock anything. These are thin inline wrappers with the same behaviour
// and cost as the std types they hold.
//
//   class Queue {
//     void Push(int v) CAREHUB_EXCLUDES(mu_) {
//       { carehub::MutexLock lock(mu_); items_.push_back(v); }
//       ready_.NotifyOne();
//     }
//     int Pop() CAREHUB_EXCLUDES(mu_) {
//       carehub::MutexLock lock(mu_);
//       while (items_.empty()) { ready_.Wait(mu_); }   // the condition is read with mu_ held
//       ...
//     }
//     carehub::Mutex mu_;
//     carehub::CondVar ready_;
//     std::deque<int> items_ CAREHUB_GUARDED_BY(mu_);
//   };
//
// Condition waits are written as explicit loops over CondVar::Wait/WaitUntil rather than with a
// predicate lambda: the analysis checks each function on its own and cannot know that a lambda
// runs with the lock held.
//
// Not recursive; neither type is copyable or movable. Thread-safe, like the std types.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "carehub/core/thread_annotations.h"

namespace carehub {

class CAREHUB_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() CAREHUB_ACQUIRE() { mu_.lock(); }
  void Unlock() CAREHUB_RELEASE() { mu_.unlock(); }
  [[nodiscard]] bool TryLock() CAREHUB_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex from construction to destruction (std::lock_guard).
class CAREHUB_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) CAREHUB_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() CAREHUB_RELEASE() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// std::condition_variable waiting on a carehub::Mutex the caller holds. Like the std type, a wait
// releases the mutex while blocked and holds it again when it returns, and may wake spuriously:
// callers loop on their condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex& mu) CAREHUB_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held: the caller's MutexLock unlocks it
  }

  // std::cv_status::timeout once `deadline` has passed.
  template <typename Clock, typename Duration>
  std::cv_status WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline)
      CAREHUB_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const std::cv_status status = cv_.wait_until(lock, deadline);
    lock.release();
    return status;
  }

  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace carehub
