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

// The seq of a route-index key under a prefix of `prefix_size` bytes, appended to `seqs`.
Status AppendRouteSeq(std::string_view key, size_t prefix_size, std::vector<uint64_t>* seqs) {
  if (key.size() != prefix_size + 8) {
    return Status::Error("store_corrupt", "route index key of the wrong size");
  }
  seqs->push_back(DecodeSeq(key.substr(prefix_size)));
  return Status::Ok();
}

}  // namespace

Result<std::vector<uint64_t>> RouteIndex::Scan(const RouteKey& route, uint64_t from, uint64_t to,
                                               size_t limit) const {
  std::vector<uint64_t> seqs;
  const std::string prefix = RoutePrefix(route);
  std::string upper = prefix + EncodeSeq(to);
  upper.push_back('\0');  // inclusive of `to`
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(Column::kRoute)));
  for (it->Seek(prefix + EncodeSeq(from)); it->Valid() && seqs.size() < limit; it->Next()) {
    if (Status s = AppendRouteSeq(it->key().ToStringView(), prefix.size(), &seqs); !s.ok()) {
      return s;
    }
  }
  if (Status s = FromRocks(it->status(), "scan route index"); !s.ok()) {
    return s;
  }
  return seqs;
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
    if (Status s = AppendRouteSeq(it->key().ToStringView(), prefix.size(), &seqs); !s.ok()) {
      return s;
    }
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
