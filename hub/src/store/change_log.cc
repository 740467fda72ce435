#include "carehub/hub/store/change_log.h"

#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "carehub/hub/store/keys.h"
#include "database.h"

namespace carehub::hub {
namespace {

// Copies the records of `batch` from its `skip`-th on into `out`. The log may hold, as one
// record, writes that were two changes when shipped (RocksDB merges concurrent writers' batches),
// so a follower's position can fall inside a log record.
class TailCopier : public rocksdb::WriteBatch::Handler {
 public:
  TailCopier(const Database& db, uint64_t skip, rocksdb::WriteBatch* out)
      : db_(db), skip_(skip), out_(out) {}

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    if (!Take()) {
      return rocksdb::Status::OK();
    }
    auto* handle = Handle(cf);
    return handle ? out_->Put(handle, key, value) : Unknown(cf);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    if (!Take()) {
      return rocksdb::Status::OK();
    }
    auto* handle = Handle(cf);
    return handle ? out_->Delete(handle, key) : Unknown(cf);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    if (!Take()) {
      return rocksdb::Status::OK();
    }
    auto* handle = Handle(cf);
    return handle ? out_->DeleteRange(handle, begin, end) : Unknown(cf);
  }

 private:
  bool Take() {
    if (skip_ == 0) {
      return true;
    }
    --skip_;
    return false;
  }
  // Column family ids are the Column values (Database::Open checks).
  rocksdb::ColumnFamilyHandle* Handle(uint32_t id) const {
    return id < kColumnCount ? db_.cf(static_cast<Column>(id)) : nullptr;
  }
  static rocksdb::Status Unknown(uint32_t id) {
    return rocksdb::Status::NotSupported("column family id " + std::to_string(id));
  }
  const Database& db_;
  uint64_t skip_;
  rocksdb::WriteBatch* out_;
};

}  // namespace

uint64_t ChangeLog::Position() const { return db_->Position(); }

void ChangeLog::SetObserver(Observer observer) { db_->SetChangeObserver(std::move(observer)); }

Status ChangeLog::Apply(const Change& change, bool sync) {
  return db_->ApplyReplicated(change.first, change.last, change.data, sync);
}

Status ChangeLog::ReadSince(uint64_t from, size_t max_bytes,
                            const std::function<bool(Change)>& fn) const {
  if (from == 0) {
    from = 1;
  }
  if (from > db_->Position()) {
    return Status::Ok();  // nothing written there yet
  }
  std::unique_ptr<rocksdb::TransactionLogIterator> it;
  rocksdb::TransactionLogIterator::ReadOptions read_options;
  read_options.verify_checksums_ = true;
  auto s = db_->db()->GetUpdatesSince(from, &it, read_options);
  if (s.IsNotFound()) {
    return Status::Error("change_log_gone", "the write-ahead log no longer holds position " +
                                                std::to_string(from) + ": " + s.ToString());
  }
  if (!s.ok()) {
    return FromRocks(s, "read the write-ahead log");
  }
  size_t read = 0;
  uint64_t next = from;
  for (; it->Valid() && read < max_bytes; it->Next()) {
    rocksdb::BatchResult batch = it->GetBatch();
    const uint64_t first = batch.sequence;
    const uint64_t count = batch.writeBatchPtr->Count();
    if (count == 0) {
      continue;
    }
    const uint64_t last = first + count - 1;
    if (last < next) {
      continue;
    }
    if (first > next) {
      return Status::Error("change_log_gone", "the write-ahead log jumps from position " +
                                                  std::to_string(next) + " to " +
                                                  std::to_string(first));
    }
    Change change;
    change.first = next;
    change.last = last;
    if (first == next) {
      change.data = batch.writeBatchPtr->Data();
    } else {
      rocksdb::WriteBatch tail;
      TailCopier copier(*db_, next - first, &tail);
      auto copied = batch.writeBatchPtr->Iterate(&copier);
      if (!copied.ok() || tail.Count() != last - next + 1) {
        return Status::Error("change_log_gone",
                             "cannot cut the write-ahead log record at position " +
                                 std::to_string(next) + ": " + copied.ToString());
      }
      change.data = tail.Data();
    }
    read += change.data.size();
    next = last + 1;
    if (!fn(std::move(change))) {
      return Status::Ok();
    }
  }
  // TryAgain: the iterator reached the part of the log still being written; the caller asks again.
  if (!it->status().ok() && !it->status().IsTryAgain()) {
    return FromRocks(it->status(), "read the write-ahead log");
  }
  return Status::Ok();
}

namespace {
constexpr std::string_view kEpochPrefix = "epoch/";
}  // namespace

Result<std::vector<ChangeLog::Epoch>> ChangeLog::Epochs() const {
  std::vector<Epoch> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator({}, db_->cf(Column::kMeta)));
  for (it->Seek(rocksdb::Slice(kEpochPrefix.data(), kEpochPrefix.size()));
       it->Valid() &&
       it->key().starts_with(rocksdb::Slice(kEpochPrefix.data(), kEpochPrefix.size()));
       it->Next()) {
    const auto key = it->key().ToStringView().substr(kEpochPrefix.size());
    if (key.size() != 8 || it->value().size() != 8) {
      return Status::Error("store_corrupt", "an epoch record is not 8+8 bytes");
    }
    out.push_back(Epoch{DecodeSeq(key), DecodeSeq(it->value().ToStringView())});
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), "read epochs");
  }
  return out;
}

Result<uint64_t> ChangeLog::CurrentEpoch() const {
  auto epochs = Epochs();
  if (!epochs.ok()) {
    return epochs.status();
  }
  return epochs.value().empty() ? 0 : epochs.value().back().number;
}

Result<uint64_t> ChangeLog::BeginEpoch(uint64_t at_least) {
  auto current = CurrentEpoch();
  if (!current.ok()) {
    return current.status();
  }
  const uint64_t next = std::max(current.value() + 1, at_least);
  Status s = db_->Put(Column::kMeta, std::string(kEpochPrefix) + EncodeSeq(next),
                      EncodeSeq(db_->Position()), /*sync=*/true);
  if (!s.ok()) {
    return s;
  }
  return next;
}

Result<uint64_t> ChangeLog::Checkpoint(const std::filesystem::path& dir) const {
  rocksdb::Checkpoint* raw = nullptr;
  auto s = rocksdb::Checkpoint::Create(db_->db(), &raw);
  if (!s.ok()) {
    return FromRocks(s, "checkpoint");
  }
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  uint64_t position = 0;
  s = checkpoint->CreateCheckpoint(dir.string(), /*log_size_for_flush=*/0, &position);
  if (!s.ok()) {
    return FromRocks(s, "checkpoint");
  }
  return position;
}

}  // namespace carehub::hub
