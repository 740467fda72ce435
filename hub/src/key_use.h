#pragma once
// Which CURVE key each identity actually uses, so a key rotation can be watched (issue 22,
// docs/security.md "Key rotation"): per (identity, key fingerprint), the handshakes let in and the
// last time a message came over a connection made with that key. An operator sees the old key's
// last use stop, then removes it.
//
// The ZAP handler records a handshake (NoteHandshake) and puts the key's fingerprint into the
// connection's ZAP metadata (property kKeyProperty), so the ingest and subscribe servers can
// record each message's key (NoteMessage) read from the message (zmq_msg_gets). The set of
// entries is bounded by the keys ever listed in the identities file since start: only a listed key
// gets in. Fingerprints only, never keys (KeyFingerprint).
//
// Thread-safe: the ZAP thread, the ingest and delivery threads write; the admin threads read.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "carehub/core/mutex.h"

namespace carehub::hub {

// The ZAP metadata property that carries the connection's key fingerprint ("sha256:...").
inline constexpr const char* kKeyProperty = "X-Carehub-Key";

struct KeyUse {
  std::string identity;
  std::string key;     // fingerprint
  std::string domain;  // the endpoint of its last handshake (carehub-ingest, carehub-subscribe)
  uint64_t handshakes = 0;
  int64_t last_handshake_unix_ms = 0;
  int64_t last_message_unix_ms = 0;  // 0: no message seen yet over such a connection
};

class KeyUseTracker {
 public:
  // Both stamp the wall clock's now (the times are shown to people, not compared).
  void NoteHandshake(const std::string& identity, const std::string& key,
                     const std::string& domain);
  // `key` may be empty (a plain connection, metadata missing): then nothing is recorded.
  void NoteMessage(const std::string& identity, const std::string& key);
  // Every entry, by identity then key.
  std::vector<KeyUse> Snapshot() const;

 private:
  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, KeyUse> uses_ CAREHUB_GUARDED_BY(mu_);
};

}  // namespace carehub::hub
