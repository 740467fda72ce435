#include "carehub/hub/store/route_index.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdint>
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

void RouteIndex::Add(WriteBatch* batch, std::string_view route_prefix,
                     std::span<const uint64_t> seqs) {
  std::string value;
  EncodeRouteEntryValue(seqs, &value);
  RocksBatch(batch)
      ->Put(db_->cf(Column::kRoute), std::string(route_prefix) + EncodeSeq(seqs.front()), value)
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

// The seqs of the route-index entry `it` is on, under a route prefix of `prefix_size` bytes.
Status ReadEntry(const rocksdb::Iterator& it, size_t prefix_size, std::vector<uint64_t>* seqs) {
  const std::string_view key = it.key().ToStringView();
  if (key.size() != prefix_size + 8) {
    return Status::Error("store_corrupt", "route index key of the wrong size");
  }
  if (!DecodeRouteEntry(DecodeSeq(key.substr(prefix_size)), it.value().ToStringView(), seqs)) {
    return Status::Error("store_corrupt", "malformed route index entry");
  }
  return Status::Ok();
}

// An iterator over the route-index keys in [*lower, *upper) (either may be null: unbounded). The
// bounds must outlive it. With `lower` a route's prefix, SeekForPrev never leaves the route.
std::unique_ptr<rocksdb::Iterator> NewRouteIterator(Database* db, const rocksdb::Slice* lower,
                                                    const rocksdb::Slice* upper) {
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = lower;
  ro.iterate_upper_bound = upper;
  return std::unique_ptr<rocksdb::Iterator>(db->db()->NewIterator(ro, db->cf(Column::kRoute)));
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
      : prefix_(RoutePrefix(route)), upper_(prefix_ + EncodeSeq(to)), from_(from), to_(to) {
    upper_.push_back('\0');  // inclusive of `to`
    lower_slice_ = rocksdb::Slice(prefix_);
    upper_slice_ = rocksdb::Slice(upper_);
    it_ = NewRouteIterator(db, &lower_slice_, &upper_slice_);
    // An entry holding `from` starts at or before it: the route's last entry that does, if any.
    const std::string start = prefix_ + EncodeSeq(from);
    it_->SeekForPrev(start);
    if (!it_->Valid()) {
      if (!it_->status().ok()) {
        status_ = FromRocks(it_->status(), "scan route index");
        return;
      }
      it_->Seek(start);
    }
    if (LoadEntry()) {
      Settle();
    }
  }

  bool Valid() const override { return valid_; }
  uint64_t seq() const override { return entry_[at_]; }
  void Next() override {
    last_ = entry_[at_];
    ++at_;
    Settle();
  }
  Status status() const override { return status_; }

 private:
  // Reads the entry under the iterator; false at the end of the range or on an error.
  bool LoadEntry() {
    at_ = 0;
    entry_.clear();
    if (!it_->Valid()) {
      status_ = FromRocks(it_->status(), "scan route index");
      return false;
    }
    status_ = ReadEntry(*it_, prefix_.size(), &entry_);
    return status_.ok();
  }

  // Moves on to the first seq in [from, to] at or after the current one; invalid at the end.
  void Settle() {
    valid_ = false;
    while (true) {
      if (at_ == entry_.size()) {
        it_->Next();
        if (!LoadEntry()) {
          return;
        }
        continue;
      }
      const uint64_t seq = entry_[at_];
      if (seq < from_) {
        ++at_;
        continue;
      }
      if (seq > to_) {
        return;  // entries after this one hold only later seqs
      }
      if (last_ != 0 && seq <= last_) {
        status_ = Status::Error("store_corrupt",
                                "route index entries overlap at hub_seq " + std::to_string(seq));
        return;
      }
      valid_ = true;
      return;
    }
  }

  const std::string prefix_;
  std::string upper_;
  rocksdb::Slice lower_slice_;  // prefix_ and upper_: the iterator keeps pointers to them
  rocksdb::Slice upper_slice_;
  const uint64_t from_, to_;
  std::unique_ptr<rocksdb::Iterator> it_;
  std::vector<uint64_t> entry_;  // the seqs of the entry under it_
  size_t at_ = 0;                // the current one of them
  uint64_t last_ = 0;            // the seq the cursor was on before (0: none yet)
  bool valid_ = false;
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
  if (below <= from || limit == 0) {
    return seqs;
  }
  const std::string prefix = RoutePrefix(route);
  // Bounded by the route, not by `from`: an entry that starts below `from` may hold seqs above.
  const rocksdb::Slice lower(prefix);
  auto it = NewRouteIterator(db_, &lower, nullptr);
  std::vector<uint64_t> entry;
  uint64_t later_first = UINT64_MAX;  // the first seq of the entry read before this one
  // SeekForPrev lands on the last entry starting at or before `below - 1`.
  for (it->SeekForPrev(prefix + EncodeSeq(below - 1)); it->Valid(); it->Prev()) {
    CAREHUB_RETURN_IF_ERROR(ReadEntry(*it, prefix.size(), &entry));
    if (entry.back() >= later_first) {
      return Status::Error("store_corrupt",
                           "route index entries overlap at hub_seq " + std::to_string(later_first));
    }
    later_first = entry.front();
    for (auto seq = entry.rbegin(); seq != entry.rend(); ++seq) {
      if (*seq >= below) {
        continue;
      }
      if (*seq < from) {
        return seqs;
      }
      seqs.push_back(*seq);
      if (seqs.size() == limit) {
        return seqs;
      }
    }
  }
  if (Status s = FromRocks(it->status(), "scan route index"); !s.ok()) {
    return s;
  }
  return seqs;
}

Status RouteIndex::AddDeleteBefore(WriteBatch* batch, uint64_t cutoff_seq) const {
  if (cutoff_seq == 0) {
    return Status::Ok();
  }
  auto* rocks = RocksBatch(batch);
  std::vector<uint64_t> entry;
  std::string value;
  for (const auto& route : Known()) {
    const std::string prefix = RoutePrefix(route);
    // The one entry that can hold seqs on both sides of the cutoff starts below it.
    const rocksdb::Slice lower(prefix);
    auto it = NewRouteIterator(db_, &lower, nullptr);
    it->SeekForPrev(prefix + EncodeSeq(cutoff_seq - 1));
    if (it->Valid()) {
      CAREHUB_RETURN_IF_ERROR(ReadEntry(*it, prefix.size(), &entry));
      if (entry.back() >= cutoff_seq) {
        const std::span<const uint64_t> rest(
            std::lower_bound(entry.begin(), entry.end(), cutoff_seq), entry.end());
        EncodeRouteEntryValue(rest, &value);
        rocks->Put(db_->cf(Column::kRoute), prefix + EncodeSeq(rest.front()), value)
            .PermitUncheckedError();
      }
    } else if (Status s = FromRocks(it->status(), "read route index for retention"); !s.ok()) {
      return s;
    }
    rocks
        ->DeleteRange(db_->cf(Column::kRoute), prefix + EncodeSeq(0),
                      prefix + EncodeSeq(cutoff_seq))
        .PermitUncheckedError();
  }
  return Status::Ok();
}

}  // namespace carehub::hub
