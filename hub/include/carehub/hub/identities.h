#pragma once
// Who may connect to a CURVE hub (DESIGN §7): the identities file maps CURVE public keys to
// identities. The ZAP handler looks a connecting key up here and names the connection after the
// identity's id; the ingest and subscribe authorisers then look that id up again for what it may
// do.
//
// File format (YAML, strict: unknown keys, bad keys and duplicates are errors):
//
//   identities:
//     rxk-pas:                      # identity id (the ZAP User-Id)
//       kind: publisher             # publisher | subscriber | operator
//       ods: [RXK]                  # publisher: the ODS codes it may publish under
//       public_keys: ["<z85>"]      # one or more (two while a key is being rotated); quoted,
//                                   # since a Z85 key may start with YAML syntax (! & * ...):
//                                   # an unquoted one is refused naming the identity
//     hub-b:                        # a standby hub (docs/replication.md)
//       kind: replica
//       public_keys: ["<z85>"]
//     ics-analytics:
//       kind: subscriber
//       subscriber: ics-analytics   # subscriber id in the agreements; defaults to the identity id
//       public_keys: ["<z85>"]
//
// An IdentitySet is immutable once loaded; IdentityHolder swaps sets on reload. Thread-safe.

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/mutex.h"
#include "carehub/core/status.h"

namespace carehub::hub {

enum class IdentityKind { kPublisher, kSubscriber, kOperator, kReplica };

std::string_view IdentityKindName(IdentityKind kind);

struct Identity {
  std::string id;
  IdentityKind kind = IdentityKind::kPublisher;
  std::vector<std::string> ods;          // publisher only
  std::string subscriber;                // subscriber only
  std::vector<std::string> public_keys;  // Z85, 40 characters each
};

class IdentitySet {
 public:
  // Null when the key (Z85) belongs to no identity.
  const Identity* FindByKey(std::string_view z85_public_key) const;
  // Null when no identity has this id.
  const Identity* FindById(std::string_view id) const;
  const std::map<std::string, Identity, std::less<>>& identities() const { return by_id_; }
  size_t key_count() const { return by_key_.size(); }

 private:
  friend Result<std::shared_ptr<const IdentitySet>> ParseIdentities(const std::string& yaml_text);
  std::map<std::string, Identity, std::less<>> by_id_;
  std::map<std::string, std::string, std::less<>> by_key_;  // key -> identity id
};

Result<std::shared_ptr<const IdentitySet>> ParseIdentities(const std::string& yaml_text);
// Errors name the file and the problem on one line.
Result<std::shared_ptr<const IdentitySet>> LoadIdentities(const std::filesystem::path& file);

// What the authorisers enforce. An identity missing from `set` (e.g. removed by a reload while its
// connection stays open) may do nothing.
bool MayPublish(const IdentitySet& set, std::string_view identity, std::string_view ods);
bool MaySubscribe(const IdentitySet& set, std::string_view identity, std::string_view subscriber);

// Human-readable changes between two sets (ids, kinds, ODS codes, key fingerprints), for the audit
// log on reload. Empty when nothing changed.
std::vector<std::string> DiffIdentities(const IdentitySet& before, const IdentitySet& after);

// A short, stable fingerprint of a public key for logs ("sha256:" + 12 hex digits), so a log line
// can be matched to a key without printing key material.
std::string KeyFingerprint(std::string_view z85_public_key);

class IdentityHolder {
 public:
  std::shared_ptr<const IdentitySet> Get() const {
    MutexLock lock(mu_);
    return set_;
  }
  void Set(std::shared_ptr<const IdentitySet> set) {
    MutexLock lock(mu_);
    set_ = std::move(set);
  }

 private:
  mutable Mutex mu_;
  std::shared_ptr<const IdentitySet> set_ CAREHUB_GUARDED_BY(mu_);
};

}  // namespace carehub::hub
