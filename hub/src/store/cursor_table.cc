#include "carehub/hub/store/cursor_table.h"

#include "carehub/hub/store/keys.h"
#include "database.h"

namespace carehub::hub {

Result<std::optional<uint64_t>> CursorTable::Get(const std::string& subscription) const {
  std::string value;
  auto s = db_->db()->Get({}, db_->cf(Column::kCursors), subscription, &value);
  if (s.IsNotFound()) {
    return std::optional<uint64_t>();
  }
  if (!s.ok()) {
    return FromRocks(s, "read cursor");
  }
  if (value.size() != 8) {
    return Status::Error("store_corrupt", "cursor of " + subscription + " is not 8 bytes");
  }
  return std::optional<uint64_t>(DecodeSeq(value));
}

Status CursorTable::Put(const std::string& subscription, uint64_t seq) {
  return db_->Put(Column::kCursors, subscription, EncodeSeq(seq), /*sync=*/false);
}

}  // namespace carehub::hub
