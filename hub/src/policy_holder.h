#pragma once
// Holds the policy in force. A reload swaps in a new immutable PolicySet; readers take a shared_ptr
// snapshot per delivery round, so each delivery is decided under one consistent policy and a reload
// takes effect for the next delivery. Thread-safe.

#include <memory>

#include "carehub/core/mutex.h"
#include "carehub/policy/policy_set.h"

namespace carehub::hub {

class PolicyHolder {
 public:
  std::shared_ptr<const policy::PolicySet> Get() const {
    MutexLock lock(mu_);
    return policy_;
  }
  void Set(std::shared_ptr<const policy::PolicySet> policy) {
    MutexLock lock(mu_);
    policy_ = std::move(policy);
  }

 private:
  mutable Mutex mu_;
  std::shared_ptr<const policy::PolicySet> policy_ CAREHUB_GUARDED_BY(mu_);
};

}  // namespace carehub::hub
