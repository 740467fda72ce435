#include "carehub/hub/store/quarantine_table.h"

#include <rocksdb/write_batch.h>

#include <memory>

#include "carehub/hub/store/keys.h"
#include "database.h"

namespace carehub::hub {
namespace {

Result<v1::QuarantineRecord> Decode(std::string_view bytes) {
  v1::QuarantineRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Error("store_corrupt", "a quarantine record does not decode");
  }
  return r;
}

}  // namespace

Status QuarantineTable::Load() {
  // Counting reads every record once: keep them out of the block cache the hot paths use.
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(Column::kQuarantine)));
  uint64_t count = 0;
  uint64_t bytes = 0;
  uint64_t open = 0;
  uint64_t last = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++count;
    bytes += it->value().size();
    last = DecodeSeq(it->key().ToStringView());
    auto r = Decode(it->value().ToStringView());
    if (!r.ok()) {
      return r.status();
    }
    open += IsOpen(r.value()) ? 1 : 0;
  }
  if (Status s = FromRocks(it->status(), "read quarantine"); !s.ok()) {
    return s;
  }
  count_ = count;
  bytes_ = bytes;
  open_ = open;
  next_id_ = last + 1;
  return Status::Ok();
}

void QuarantineTable::Add(WriteBatch* batch, const v1::QuarantineRecord& record) {
  RocksBatch(batch)
      ->Put(db_->cf(Column::kQuarantine), EncodeSeq(record.id()), record.SerializeAsString())
      .PermitUncheckedError();
}

Result<std::vector<v1::QuarantineRecord>> QuarantineTable::List(uint64_t after_id,
                                                                size_t limit) const {
  std::vector<v1::QuarantineRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator({}, db_->cf(Column::kQuarantine)));
  for (it->Seek(EncodeSeq(after_id + 1)); it->Valid() && out.size() < limit; it->Next()) {
    auto r = Decode(it->value().ToStringView());
    if (!r.ok()) {
      return r.status();
    }
    out.push_back(std::move(r).value());
  }
  if (Status s = FromRocks(it->status(), "list quarantine"); !s.ok()) {
    return s;
  }
  return out;
}

Result<std::optional<v1::QuarantineRecord>> QuarantineTable::Get(uint64_t id) const {
  std::string value;
  auto s = db_->db()->Get({}, db_->cf(Column::kQuarantine), EncodeSeq(id), &value);
  if (s.IsNotFound()) {
    return std::optional<v1::QuarantineRecord>();
  }
  if (!s.ok()) {
    return FromRocks(s, "read quarantine record");
  }
  auto r = Decode(value);
  if (!r.ok()) {
    return r.status();
  }
  return std::optional<v1::QuarantineRecord>(std::move(r).value());
}

Status QuarantineTable::Put(const v1::QuarantineRecord& record) {
  return db_->Put(Column::kQuarantine, EncodeSeq(record.id()), record.SerializeAsString(),
                  /*sync=*/true);
}

Result<v1::QuarantineRecord> QuarantineTable::Close(
    uint64_t id, const std::string& state, const std::string& by, int64_t at_unix_ms,
    const std::string& note, const std::function<void(v1::QuarantineRecord&)>& update) {
  MutexLock lock(close_mu_);
  auto found = Get(id);
  if (!found.ok()) {
    return found.status();
  }
  if (!found.value()) {
    return Status::Error("not_found", "no quarantine record with that id");
  }
  v1::QuarantineRecord record = std::move(*found.value());
  if (!IsOpen(record)) {
    return Status::Error("not_open", "record " + std::to_string(id) + " is already " +
                                         record.state() + " (by " + record.state_by() + ")");
  }
  if (update) {
    update(record);
  }
  record.set_state(state);
  record.set_state_by(by);
  record.set_state_at_unix_ms(at_unix_ms);
  record.set_state_note(note);
  if (Status s = Put(record); !s.ok()) {
    return s;
  }
  open_.fetch_sub(1);
  return record;
}

}  // namespace carehub::hub
