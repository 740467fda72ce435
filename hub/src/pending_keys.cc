#include "carehub/hub/pending_keys.h"

namespace carehub::hub {

std::optional<PendingKeys::Entry> PendingKeys::Find(std::string_view key) const {
  auto it = map_.find(key);
  if (it == map_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<PendingKeys::Entry> PendingKeys::Claim(std::string* key, const Entry& mine,
                                                     std::deque<std::string>* owner) {
  // One probe finds the key or the slot it goes in; only a new key is moved, and the view
  // stored is of its new home in `owner`, which a deque never moves.
  bool claimed = false;
  auto it = map_.lazy_emplace(std::string_view(*key), [&](const auto& construct) {
    owner->push_back(std::move(*key));
    key->clear();
    construct(std::string_view(owner->back()), mine);
    claimed = true;
  });
  if (claimed) {
    return std::nullopt;
  }
  return it->second;
}

void PendingKeys::Release(const std::deque<std::string>& keys) {
  for (const auto& key : keys) {
    map_.erase(std::string_view(key));
  }
}

}  // namespace carehub::hub
