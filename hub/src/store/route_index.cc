#include "carehub/hub/store/route_index.h"

#include <rocksdb/write_batch.h>

#include <cstring>
#include <memory>

#include "database.h"

namespace carehub::hub {
namespace {

constexpr std::string_view kRouteMetaPrefix = "route:";

}  // namespace

Status RouteIndex::Load() {
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator({}, db_->cf(Column::kMeta)));
  const rocksdb::Slice prefix(kRouteMetaPrefix.data(), kRouteMetaPrefix.size());
  std::vector<RouteKey> routes;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto r = ParseRoutePrefix(it->key().ToStringView().substr(kRouteMetaPrefix.size()));
    if (r) {
      routes.push_back(std::move(*r));
    }
  }
  if (Status s = FromRocks(it->status(), "read known routes"); !s.ok()) {
    return s;
  }
  MutexLock lock(mu_);
  known_ = std::move(routes);
  return Status::Ok();
}

void RouteIndex::Add(WriteBatch* batch, std::string_view route_prefix, uint64_t hub_seq) {
  // Built on the stack: this runs once per accepted event.
  char key[256];
  auto* rocks = RocksBatch(batch);
  if (route_prefix.size() + 8 > sizeof(key)) {
    std::string k(route_prefix);
    k += EncodeSeq(hub_seq);
    rocks->Put(db_->cf(Column::kRoute), k, rocksdb::Slice()).PermitUncheckedError();
    return;
  }
  std::memcpy(key, route_prefix.data(), route_prefix.size());
  for (int i = 7; i >= 0; --i) {
    key[route_prefix.size() + i] = static_cast<char>(hub_seq & 0xff);
    hub_seq >>= 8;
  }
  rocks
      ->Put(db_->cf(Column::kRoute), rocksdb::Slice(key, route_prefix.size() + 8), rocksdb::Slice())
      .PermitUncheckedError();
}

void RouteIndex::AddKnown(WriteBatch* batch, const RouteKey& route) {
  RocksBatch(batch)
      ->Put(db_->cf(Column::kMeta), std::string(kRouteMetaPrefix) + RoutePrefix(route),
            rocksdb::Slice())
      .PermitUncheckedError();
}

void RouteIndex::NoteCommitted(const std::vector<RouteKey>& routes) {
  MutexLock lock(mu_);
  known_.insert(known_.end(), routes.begin(), routes.end());
}

std::vector<RouteKey> RouteIndex::Known() const {
  MutexLock lock(mu_);
  return known_;
}

size_t RouteIndex::KnownCount() const {
  MutexLock lock(mu_);
  return known_.size();
}

namespace {

// The seq of a route-index key under a prefix of `prefix_size` bytes.
Result<uint64_t> RouteSeqOf(std::string_view key, size_t prefix_size) {
  if (key.size() != prefix_size + 8) {
    return Status::Error("store_corrupt", "route index key of the wrong size");
  }
  return DecodeSeq(key.substr(prefix_size));
}

}  // namespace

Result<std::vector<uint64_t>> RouteIndex::Scan(const RouteKey& route, uint64_t from, uint64_t to,
                                               size_t limit) const {
  std::vector<uint64_t> seqs;
  auto cursor = Open(route, from, to);
  for (; cursor->Valid() && seqs.size() < limit; cursor->Next()) {
    seqs.push_back(cursor->seq());
  }
  if (!cursor->Valid()) {
    CAREHUB_RETURN_IF_ERROR(cursor->status());
  }
  return seqs;
}

namespace {

class RocksRouteCursor final : public RouteIndex::Cursor {
 public:
  RocksRouteCursor(Database* db, const RouteKey& route, uint64_t from, uint64_t to)
      : prefix_(RoutePrefix(route)), upper_(prefix_ + EncodeSeq(to)) {
    upper_.push_back('\0');  // inclusive of `to`
    upper_slice_ = rocksdb::Slice(upper_);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice_;
    it_.reset(db->db()->NewIterator(ro, db->cf(Column::kRoute)));
    it_->Seek(prefix_ + EncodeSeq(from));
    Load();
  }

  bool Valid() const override { return valid_; }
  uint64_t seq() const override { return seq_; }
  void Next() override {
    it_->Next();
    Load();
  }
  Status status() const override { return status_; }

 private:
  void Load() {
    valid_ = false;
    if (!it_->Valid()) {
      status_ = FromRocks(it_->status(), "scan route index");
      return;
    }
    auto seq = RouteSeqOf(it_->key().ToStringView(), prefix_.size());
    if (!seq.ok()) {
      status_ = seq.status();
      return;
    }
    seq_ = *seq;
    valid_ = true;
  }

  const std::string prefix_;
  std::string upper_;
  rocksdb::Slice upper_slice_;  // points into upper_; the iterator keeps a pointer to it
  std::unique_ptr<rocksdb::Iterator> it_;
  bool valid_ = false;
  uint64_t seq_ = 0;
  Status status_;
};

}  // namespace

std::unique_ptr<RouteIndex::Cursor> RouteIndex::Open(const RouteKey& route, uint64_t from,
                                                     uint64_t to) const {
  return std::make_unique<RocksRouteCursor>(db_, route, from, to);
}

Result<std::vector<uint64_t>> RouteIndex::ScanBackward(const RouteKey& route, uint64_t from,
                                                       uint64_t below, size_t limit) const {
  std::vector<uint64_t> seqs;
  if (below <= from) {
    return seqs;
  }
  const std::string prefix = RoutePrefix(route);
  const std::string lower = prefix + EncodeSeq(from);
  rocksdb::Slice lower_slice(lower);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(Column::kRoute)));
  // SeekForPrev lands on the last key <= its target: seq `below - 1` or the one before it.
  for (it->SeekForPrev(prefix + EncodeSeq(below - 1)); it->Valid() && seqs.size() < limit;
       it->Prev()) {
    auto seq = RouteSeqOf(it->key().ToStringView(), prefix.size());
    if (!seq.ok()) {
      return seq.status();
    }
    seqs.push_back(*seq);
  }
  if (Status s = FromRocks(it->status(), "scan route index"); !s.ok()) {
    return s;
  }
  return seqs;
}

void RouteIndex::AddDeleteBefore(WriteBatch* batch, uint64_t cutoff_seq) const {
  auto* rocks = RocksBatch(batch);
  for (const auto& route : Known()) {
    const std::string prefix = RoutePrefix(route);
    rocks
        ->DeleteRange(db_->cf(Column::kRoute), prefix + EncodeSeq(0),
                      prefix + EncodeSeq(cutoff_seq))
        .PermitUncheckedError();
  }
}

}  // namespace carehub::hub
