#pragma once
// What the soak's publishers sent, kept compactly enough for a long run (about 40 bytes an event):
// for every event a content hash, its route (publisher, site, type) and patient, so subscriber
// deliveries and the stopped hub's store can be checked against it without keeping the events.
//
// Event ids are "<prefix><counter>" (SyntheticGenerator), so an id maps to a slot by arithmetic.
// Thread-safe: publishers record while subscribers look up.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/v1/event.pb.h"

namespace carehub::soak {

// Small integer for a repeated string (ODS codes, event type names).
using Sym = uint16_t;

struct Original {
  bool recorded = false;
  bool valid = false;
  Sym publisher = 0;
  Sym site = 0;
  Sym type = 0;
  uint64_t nhs = 0;              // the patient's NHS number as a number
  uint64_t content_hash = 0;     // ContentHash of what the publisher sent
  uint64_t secondary_hash = 0;   // SecondaryHashOfOriginal: what secondary use may see
  uint32_t stored = 0;           // times found in the store (filled by the final check)
};

// Hash of the event's bytes with the hub's fields (hub_seq, received_at) cleared.
uint64_t ContentHash(const v1::Event& event);
// What a secondary-use delivery of this original must carry: birth year-month, postcode district,
// sex, registered practice (of the patient and of a merged patient).
uint64_t SecondaryHashOfOriginal(const v1::Event& event);
// The same fields as delivered.
uint64_t SecondaryHashOfDelivered(const v1::Event& event);
uint64_t NhsAsNumber(const std::string& nhs);

class Ledger {
 public:
  // `prefixes[i]` is publisher client i's event id prefix.
  explicit Ledger(std::vector<std::string> prefixes);

  Sym Intern(std::string_view s);
  std::string Name(Sym sym) const;

  // Records an event the publisher client `client` is about to enqueue for the first time.
  void Record(size_t client, const v1::Event& event, bool valid);
  // The original of (client prefix + counter) event id; empty when never recorded.
  std::optional<Original> Find(std::string_view event_id) const;
  // Marks an event found in the store; returns its original (empty when unknown).
  std::optional<Original> MarkStored(std::string_view event_id);

  // The first identifying string of patient `nhs` (names, address, MRNs, full birth date and
  // postcode, as the publishers sent them) found in `bytes`; empty when none is.
  std::optional<std::string> FindIdentifierIn(uint64_t nhs, std::string_view bytes) const;

  // Calls fn(event_id, original) for every recorded event.
  template <typename Fn>
  void ForEach(Fn fn) const {
    std::lock_guard lock(mu_);
    for (size_t c = 0; c < slots_.size(); ++c) {
      for (size_t i = 0; i < slots_[c].size(); ++i) {
        if (slots_[c][i].recorded) {
          fn(prefixes_[c] + std::to_string(i), slots_[c][i]);
        }
      }
    }
  }

 private:
  // (client, counter) of an event id; empty when it has no known prefix.
  std::optional<std::pair<size_t, uint64_t>> Slot(std::string_view event_id) const;
  Sym InternLocked(std::string_view s);

  const std::vector<std::string> prefixes_;
  mutable std::mutex mu_;
  std::vector<std::vector<Original>> slots_;
  std::map<std::string, Sym, std::less<>> syms_;
  std::vector<std::string> names_;
  std::map<uint64_t, std::set<std::string>> identifiers_;
};

}  // namespace carehub::soak
