#include "carehub/hub/store.h"

#include <memory>

#include "database.h"

namespace carehub::hub {

Store::Store(std::unique_ptr<Database> db)
    : db_(std::move(db)),
      events_(db_.get()),
      dedup_(db_.get()),
      routes_(db_.get()),
      cursors_(db_.get()),
      audit_(db_.get()),
      disclosures_(db_.get()),
      resends_(db_.get()),
      quarantine_(db_.get()),
      changes_(db_.get()) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  auto db = Database::Open(options);
  if (!db.ok()) {
    return db.status();
  }
  std::unique_ptr<Store> store(new Store(std::move(db).value()));
  // Known routes and the quarantine counters are small: load them now.
  if (Status s = store->routes_.Load(); !s.ok()) {
    return s;
  }
  if (Status s = store->quarantine_.Load(); !s.ok()) {
    return s;
  }
  store->audit_.StartCountingAt(store->changes_.Position() + 1);
  if (Status s = store->disclosures_.OpenRunIndex(); !s.ok()) {
    return s;
  }
  if (options.disclosure_run_interval.count() > 0) {
    store->disclosures_.StartBackgroundRuns(options.disclosure_run_interval);
  }
  return store;
}

Status Store::Commit(WriteBatch* batch, bool sync) { return db_->Commit(batch, sync); }

Status Store::SyncWal() { return db_->SyncWal(); }

uint64_t Store::WalSyncTicket() const { return db_->WalSyncTicket(); }

Status Store::WaitWalSynced(uint64_t ticket, std::chrono::milliseconds timeout) const {
  return db_->WaitWalSynced(ticket, timeout);
}

Status Store::Probe() { return db_->Probe(); }

Status Store::Resume() { return db_->Resume(); }

Status Store::CheckHeadroom(uint64_t bytes) const { return db_->CheckHeadroom(bytes); }

uint64_t Store::ApproximateSizeBytes() const { return db_->ApproximateSizeBytes(); }

CompactionBacklog Store::Compactions() const { return db_->Compactions(); }

const std::filesystem::path& Store::dir() const { return db_->options().dir; }

Status Store::ScanColumn(Column column,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const {
  hub::Column cf = hub::Column::kEvents;
  switch (column) {
    case Column::kEvents:
      cf = hub::Column::kEvents;
      break;
    case Column::kDedup:
      cf = hub::Column::kDedup;
      break;
    case Column::kRoute:
      cf = hub::Column::kRoute;
      break;
    case Column::kCursors:
      cf = hub::Column::kCursors;
      break;
    case Column::kAudit:
      cf = hub::Column::kAudit;
      break;
    case Column::kDisclosure:
      cf = hub::Column::kDisclosure;
      break;
  }
  // Total order: the disclosure family reads by patient prefix otherwise (its hash memtable).
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(cf)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) {
      return Status::Ok();
    }
  }
  return FromRocks(it->status(), "scan column");
}

}  // namespace carehub::hub
