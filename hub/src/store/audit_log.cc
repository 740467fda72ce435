#include "carehub/hub/store/audit_log.h"

#include <algorithm>
#include <memory>

#include "carehub/hub/store/keys.h"
#include "database.h"

namespace carehub::hub {

Status AuditLog::Append(const v1::AuditRecord& record) {
  const std::string key =
      EncodeSeq(static_cast<uint64_t>(record.at_unix_ms())) + EncodeSeq(counter_.fetch_add(1));
  return db_->Put(Column::kAudit, key, record.SerializeAsString(), /*sync=*/false);
}

Result<std::vector<v1::AuditRecord>> AuditLog::Query(const std::string& subscriber,
                                                     int64_t since_ms, int64_t until_ms,
                                                     size_t limit) const {
  std::vector<v1::AuditRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator({}, db_->cf(Column::kAudit)));
  for (it->Seek(EncodeSeq(static_cast<uint64_t>(std::max<int64_t>(since_ms, 0))));
       it->Valid() && out.size() < limit; it->Next()) {
    if (static_cast<int64_t>(DecodeSeq(it->key().ToStringView())) > until_ms) {
      break;
    }
    v1::AuditRecord r;
    if (!r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Error("store_corrupt", "an audit record does not decode");
    }
    if (subscriber.empty() || r.subscriber() == subscriber) {
      out.push_back(std::move(r));
    }
  }
  if (Status s = FromRocks(it->status(), "read audit"); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace carehub::hub
