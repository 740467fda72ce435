#include "carehub/hub/store/audit_log.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "carehub/hub/store/keys.h"
#include "database.h"

namespace carehub::hub {

std::string AuditLog::NewKey(int64_t at_unix_ms) {
  return EncodeSeq(static_cast<uint64_t>(at_unix_ms)) + EncodeSeq(counter_.fetch_add(1));
}

Status AuditLog::Append(const v1::AuditRecord& record) {
  return db_->Put(Column::kAudit, NewKey(record.at_unix_ms()), record.SerializeAsString(),
                  /*sync=*/false);
}

void AuditLog::AddRecord(WriteBatch* batch, std::string_view key, const v1::AuditRecord& record) {
  RocksBatch(batch)->Put(db_->cf(Column::kAudit), key, record.SerializeAsString());
}

Result<std::vector<std::optional<v1::AuditRecord>>> AuditLog::Get(
    const std::vector<std::string>& keys) const {
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->db()->MultiGet({}, db_->cf(Column::kAudit), keys.size(), slices.data(), values.data(),
                      statuses.data());
  std::vector<std::optional<v1::AuditRecord>> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      continue;
    }
    if (Status s = FromRocks(statuses[i], "read audit"); !s.ok()) {
      return s;
    }
    v1::AuditRecord r;
    if (!r.ParseFromArray(values[i].data(), static_cast<int>(values[i].size()))) {
      return Status::Error("store_corrupt", "an audit record does not decode");
    }
    out[i] = std::move(r);
  }
  return out;
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
