#include "shared_scan.h"

#include <algorithm>

namespace carehub::hub {

Status ScanTogether(const Store& store, DecodeCache& decoded, std::vector<ScanMember>& members,
                    uint64_t to) {
  if (members.empty()) {
    return Status::Ok();
  }
  std::vector<bool> taking(members.size(), true);
  size_t still_taking = members.size();
  for (auto& m : members) {
    m.scanned_to = m.from - 1;
  }
  bool ended_early = false;
  uint64_t last_seen = members.front().from - 1;
  Status s =
      store.events().Scan(members.front().from, to, [&](uint64_t seq, std::string_view bytes) {
        last_seen = seq;
        const DecodedEvent* event = nullptr;
        bool parsed = false;
        bool full_at_cap = false;
        for (size_t i = 0; i < members.size() && members[i].from <= seq; ++i) {
          if (!taking[i]) {
            continue;
          }
          if (!parsed) {
            event = decoded.Decode(seq, bytes);
            parsed = true;
          }
          // Not an event: nothing of it can be disclosed; it counts as read.
          if (event != nullptr && !members[i].take(*event)) {
            taking[i] = false;
            --still_taking;
            members[i].scanned_to = seq;
            full_at_cap = full_at_cap || members[i].full_ends_scan;
          }
        }
        ended_early = full_at_cap || still_taking == 0;
        return !ended_early;
      });
  if (!s.ok()) {
    return s;
  }
  // A scan that ran to its end has read everything up to `to` (seqs can have gaps).
  const uint64_t read_to = ended_early ? last_seen : to;
  for (size_t i = 0; i < members.size(); ++i) {
    if (taking[i]) {
      members[i].scanned_to = std::max(members[i].from - 1, read_to);
    }
  }
  return Status::Ok();
}

}  // namespace carehub::hub
