#include "read_pool.h"

#include <pthread.h>

#include <algorithm>

#include "carehub/hub/store/thread_setup.h"

namespace carehub::hub {

ReadPool::ReadPool(int threads, const char* name) {
  threads_.reserve(static_cast<size_t>(std::max(threads, 0)));
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, name] {
      pthread_setname_np(pthread_self(), name);
      PrepareStoreThread();
      Serve();
    });
  }
}

ReadPool::~ReadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  for (auto& t : threads_) {
    t.join();
  }
}

void ReadPool::RunAll(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) {
    return;
  }
  Group group;
  group.fn = &fn;
  group.n = n;
  // The caller takes a part itself: invite a pool thread for each of the others, at most all.
  const size_t invited = std::min(n - 1, threads_.size());
  if (invited > 0) {
    {
      std::lock_guard lock(mu_);
      queue_.insert(queue_.end(), invited, &group);
    }
    if (invited == 1) {
      work_.notify_one();
    } else {
      work_.notify_all();
    }
  }
  RunParts(&group);
  // Every part is claimed. Invitations not yet taken are withdrawn, and the pool threads still
  // running a part of this group are waited for: `group` lives on this stack.
  std::unique_lock lock(mu_);
  if (invited > 0) {
    queue_.erase(std::remove(queue_.begin(), queue_.end(), &group), queue_.end());
  }
  left_.wait(lock, [&group] { return group.pool_guests == 0; });
}

void ReadPool::RunParts(Group* group) {
  for (;;) {
    size_t part;
    {
      std::lock_guard lock(mu_);
      if (group->next == group->n) {
        return;
      }
      part = group->next++;
    }
    (*group->fn)(part);
  }
}

void ReadPool::Serve() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      return;
    }
    Group* group = queue_.front();
    queue_.pop_front();
    ++group->pool_guests;
    lock.unlock();
    RunParts(group);
    lock.lock();
    // The last touch of `group`: its caller may return as soon as mu_ is released.
    if (--group->pool_guests == 0) {
      left_.notify_all();
    }
  }
}

}  // namespace carehub::hub
