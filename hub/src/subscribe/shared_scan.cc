#include "shared_scan.h"

#include <algorithm>

namespace carehub::hub {

Status ScanTogether(const Store& store, DecodeCache& decoded, std::vector<ScanMember>& members,
                    uint64_t head, uint32_t max_examined) {
  if (members.empty()) {
    return Status::Ok();
  }
  std::vector<bool> taking(members.size(), true);
  size_t still_taking = members.size();
  for (auto& m : members) {
    m.scanned_to = m.from - 1;
  }
  auto read = ScanLog(store, members.front().from, head, max_examined,
                      [&](uint64_t seq, std::string_view bytes) {
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
                        return !full_at_cap && still_taking > 0;
                      });
  if (!read.ok()) {
    return read.status();
  }
  for (size_t i = 0; i < members.size(); ++i) {
    if (taking[i]) {
      members[i].scanned_to = std::max(members[i].from - 1, read.value());
    }
  }
  return Status::Ok();
}

}  // namespace carehub::hub
