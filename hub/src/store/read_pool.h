#pragma once
// A few threads that run a caller's blocking reads side by side, so their waits on the disk
// overlap instead of adding up.
//
// Why: a read that misses the block cache and the OS page cache waits for the disk. One after
// another, a batch's reads pay the disk's latency once each — on a virtio disk busy with the
// store's own compactions and WAL syncs that is 0.1-0.5 ms per read; issued together, the disk
// serves them in parallel (docs/performance.md, "old resends read side by side"). RocksDB can
// issue a MultiGet's reads together only with io_uring, which Debian's RocksDB 7.8 is built
// without.
//
// Usage: RunAll(n, fn) calls fn(0) ... fn(n-1), each exactly once, on the pool's threads and the
// calling thread together, and returns when every call has returned. The caller takes parts too,
// so RunAll finishes even when every pool thread is busy with other callers' parts.
//
// Ownership: owns its threads; the destructor joins them and must not run while a RunAll does.
// Thread safety: RunAll may be called from any number of threads at once. fn must not throw; it
// runs on several threads at once (for distinct indexes).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace carehub::hub {

class ReadPool {
 public:
  // `threads` threads named `name` (at most 15 characters), each prepared as a store thread
  // (thread_setup.h). 0 threads: RunAll runs everything on the caller.
  ReadPool(int threads, const char* name);
  ~ReadPool();
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  int threads() const { return static_cast<int>(threads_.size()); }
  void RunAll(size_t n, const std::function<void(size_t)>& fn);

 private:
  // One RunAll: its parts are claimed by index, by whichever thread gets there first.
  struct Group {
    const std::function<void(size_t)>* fn = nullptr;
    size_t n = 0;
    size_t next = 0;      // the next unclaimed part; guarded by mu_
    int pool_guests = 0;  // pool threads working on this group; guarded by mu_
  };

  void Serve();
  // Claims and runs the group's parts until none is left. Takes mu_ to claim.
  void RunParts(Group* group);

  std::mutex mu_;
  std::condition_variable work_;  // a group queued, or stopping
  std::condition_variable left_;  // a pool thread left a group
  std::deque<Group*> queue_;      // a group once per pool thread invited to help with it
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace carehub::hub
