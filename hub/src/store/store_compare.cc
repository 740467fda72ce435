#include "carehub/hub/store_compare.h"

#include <rocksdb/db.h>

#include <memory>
#include <vector>

#include "carehub/core/strings.h"
#include "carehub/hub/store/resend_counts.h"
#include "database.h"

namespace carehub::hub {
namespace {

struct ReadOnlyStore {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ~ReadOnlyStore() {
    for (auto* h : handles) {
      db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
  }
};

Result<std::unique_ptr<ReadOnlyStore>> OpenReadOnly(const std::filesystem::path& dir) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const char* name : kColumnNames) {
    rocksdb::ColumnFamilyOptions cf;
    if (std::string_view(name) == kColumnNames[static_cast<int>(Column::kResend)]) {
      cf.merge_operator = NewResendMergeOperator();  // its values are merges: read them merged
    }
    cfs.emplace_back(name, cf);
  }
  auto store = std::make_unique<ReadOnlyStore>();
  rocksdb::DB* raw = nullptr;
  auto s =
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir.string(), cfs, &store->handles, &raw);
  if (!s.ok()) {
    return Status::Error("store_error", "cannot open " + dir.string() + ": " + s.ToString());
  }
  store->db.reset(raw);
  return store;
}

// Records both stores may hold differently without being different stores.
bool Ignored(int column, const rocksdb::Slice& key) {
  return column == static_cast<int>(Column::kMeta) && key == rocksdb::Slice("probe");
}

std::string Describe(int column, const rocksdb::Slice& key, const std::string& what) {
  return std::string(kColumnNames[column]) + ": key " + HexEncode(key.ToStringView()) + " " + what;
}

}  // namespace

Result<StoreComparison> CompareStores(const std::filesystem::path& a,
                                      const std::filesystem::path& b) {
  auto store_a = OpenReadOnly(a);
  if (!store_a.ok()) {
    return store_a.status();
  }
  auto store_b = OpenReadOnly(b);
  if (!store_b.ok()) {
    return store_b.status();
  }
  StoreComparison out;
  auto& da = *store_a.value();
  auto& db = *store_b.value();
  out.position_a = da.db->GetLatestSequenceNumber();
  out.position_b = db.db->GetLatestSequenceNumber();
  for (int c = 0; c < kColumnCount && out.first_difference.empty(); ++c) {
    std::unique_ptr<rocksdb::Iterator> ia(da.db->NewIterator({}, da.handles[c]));
    std::unique_ptr<rocksdb::Iterator> ib(db.db->NewIterator({}, db.handles[c]));
    ia->SeekToFirst();
    ib->SeekToFirst();
    while (ia->Valid() || ib->Valid()) {
      if (ia->Valid() && Ignored(c, ia->key())) {
        ia->Next();
        continue;
      }
      if (ib->Valid() && Ignored(c, ib->key())) {
        ib->Next();
        continue;
      }
      const int order = !ia->Valid() ? 1 : !ib->Valid() ? -1 : ia->key().compare(ib->key());
      if (order < 0) {
        out.first_difference = Describe(c, ia->key(), "only in " + a.string());
        break;
      }
      if (order > 0) {
        out.first_difference = Describe(c, ib->key(), "only in " + b.string());
        break;
      }
      if (ia->value() != ib->value()) {
        out.first_difference = Describe(c, ia->key(), "has different values");
        break;
      }
      ++out.records;
      ia->Next();
      ib->Next();
    }
    for (auto* it : {ia.get(), ib.get()}) {
      if (!it->status().ok()) {
        return FromRocks(it->status(), "compare");
      }
    }
  }
  if (out.first_difference.empty() && out.position_a != out.position_b) {
    out.first_difference = "same records, different positions: " + std::to_string(out.position_a) +
                           " and " + std::to_string(out.position_b);
  }
  out.equal = out.first_difference.empty();
  return out;
}

}  // namespace carehub::hub
