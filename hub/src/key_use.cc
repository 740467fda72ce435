#include "key_use.h"

#include <chrono>

namespace carehub::hub {
namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void KeyUseTracker::NoteHandshake(const std::string& identity, const std::string& key,
                                  const std::string& domain) {
  const int64_t now_unix_ms = NowUnixMs();
  MutexLock lock(mu_);
  KeyUse& use = uses_[{identity, key}];
  use.identity = identity;
  use.key = key;
  use.domain = domain;
  ++use.handshakes;
  use.last_handshake_unix_ms = now_unix_ms;
}

void KeyUseTracker::NoteMessage(const std::string& identity, const std::string& key) {
  if (identity.empty() || key.empty()) {
    return;
  }
  const int64_t now_unix_ms = NowUnixMs();
  MutexLock lock(mu_);
  auto it = uses_.find({identity, key});
  // Only keys the ZAP handler let in are tracked, so the map stays bounded by the identities.
  if (it != uses_.end()) {
    it->second.last_message_unix_ms = now_unix_ms;
  }
}

std::vector<KeyUse> KeyUseTracker::Snapshot() const {
  MutexLock lock(mu_);
  std::vector<KeyUse> out;
  out.reserve(uses_.size());
  for (const auto& [k, use] : uses_) {
    out.push_back(use);
  }
  return out;
}

}  // namespace carehub::hub
