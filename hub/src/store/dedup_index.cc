#include "carehub/hub/store/dedup_index.h"

#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>

#include "carehub/hub/store/keys.h"
#include "database.h"
#include "dedup_expiry_filter.h"

namespace carehub::hub {
namespace {

constexpr size_t kDedupValueBytes = 8 + 16 + 4;

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

uint32_t DaysSinceEpoch(Clock::TimePoint t) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::hours>(t.time_since_epoch()).count() / 24);
}

class DedupExpiryFilter : public rocksdb::CompactionFilter {
 public:
  DedupExpiryFilter(uint32_t window_days, const Clock& clock)
      : window_days_(window_days), clock_(clock) {}
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (value.size() != kDedupValueBytes) {
      return false;
    }
    const uint32_t day = GetU32(value.data() + 24);
    const uint32_t today = DaysSinceEpoch(clock_.Now());
    return today > day && today - day > window_days_;
  }
  const char* Name() const override { return "carehub.DedupExpiryFilter"; }

 private:
  uint32_t window_days_;
  const Clock& clock_;
};

}  // namespace

std::unique_ptr<rocksdb::CompactionFilter> NewDedupExpiryFilter(uint32_t window_days,
                                                                const Clock& clock) {
  return std::make_unique<DedupExpiryFilter>(window_days, clock);
}

namespace {

// The value layout into `out`, which has kDedupValueBytes.
void EncodeDedupValueInto(const DedupEntry& e, char* out) {
  uint64_t seq = e.hub_seq;
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  std::memcpy(out + 8, e.hash.data(), e.hash.size());
  for (int i = 3; i >= 0; --i) {
    out[24 + i] = static_cast<char>((e.day >> (8 * (3 - i))) & 0xff);
  }
}

}  // namespace

std::string EncodeDedupValue(const DedupEntry& e) {
  std::string v(kDedupValueBytes, '\0');
  EncodeDedupValueInto(e, v.data());
  return v;
}

std::optional<DedupEntry> DecodeDedupValue(std::string_view v) {
  if (v.size() != kDedupValueBytes) {
    return std::nullopt;
  }
  DedupEntry e;
  e.hub_seq = DecodeSeq(v.substr(0, 8));
  std::memcpy(e.hash.data(), v.data() + 8, 16);
  e.day = GetU32(v.data() + 24);
  return e;
}

Result<std::vector<std::optional<DedupEntry>>> DedupIndex::Lookup(
    const std::vector<std::string>& keys) const {
  std::vector<std::string_view> views(keys.begin(), keys.end());
  return Lookup(views);
}

namespace {

// Measures a lookup when its caller asks (DedupLookupCost): its wall time, and what the calling
// thread's MultiGet read from files, from RocksDB's thread-local perf context. Raises the perf
// level to counting for its lifetime if needed, and restores it. The context is read as a
// difference, never reset: another user of it on the same thread (the bench's lookup profile) keeps
// its figures.
class LookupCostMeter {
 public:
  LookupCostMeter() : started_(std::chrono::steady_clock::now()), level_(rocksdb::GetPerfLevel()) {
    if (level_ < rocksdb::PerfLevel::kEnableCount) {
      rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
    }
    const auto* pc = rocksdb::get_perf_context();
    blocks_ = pc->block_read_count;
    index_ = pc->index_block_read_count;
    filter_ = pc->filter_block_read_count;
  }
  ~LookupCostMeter() {
    if (level_ < rocksdb::PerfLevel::kEnableCount) {
      rocksdb::SetPerfLevel(level_);
    }
  }
  LookupCostMeter(const LookupCostMeter&) = delete;
  LookupCostMeter& operator=(const LookupCostMeter&) = delete;

  void AddTo(DedupLookupCost* cost) const {
    const auto* pc = rocksdb::get_perf_context();
    const uint64_t index = pc->index_block_read_count - index_;
    const uint64_t filter = pc->filter_block_read_count - filter_;
    const uint64_t all = pc->block_read_count - blocks_;
    cost->index_blocks_read = index;
    cost->filter_blocks_read = filter;
    // block_read_count counts every block read from a file; index and filter blocks are also
    // counted on their own (compression dictionaries, unused here, would fall under data).
    cost->data_blocks_read = all >= index + filter ? all - index - filter : 0;
    cost->elapsed = std::chrono::steady_clock::now() - started_;
  }

 private:
  std::chrono::steady_clock::time_point started_;
  rocksdb::PerfLevel level_;
  uint64_t blocks_ = 0, index_ = 0, filter_ = 0;
};

}  // namespace

Result<std::vector<std::optional<DedupEntry>>> DedupIndex::Lookup(
    std::span<const std::string_view> keys, DedupLookupCost* cost) const {
  std::vector<std::optional<DedupEntry>> out(keys.size());
  if (cost != nullptr) {
    *cost = DedupLookupCost{};
    cost->keys = keys.size();
  }
  if (keys.empty()) {
    return out;
  }
  // Only when asked: the consistency checker and IG queries look keys up without measuring.
  std::optional<LookupCostMeter> meter;
  if (cost != nullptr) {
    meter.emplace();
  }
  // MultiGet wants its keys in the family's order (bytewise); sorted here, through an index, they
  // cost a fraction of what RocksDB's own sort of them did (~7% of the ingest thread, callgrind).
  std::vector<uint32_t> order(keys.size());
  for (uint32_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(),
            [&keys](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  std::vector<rocksdb::Slice> slices;
  slices.reserve(keys.size());
  for (uint32_t i : order) {
    slices.emplace_back(keys[i].data(), keys[i].size());
  }
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->db()->MultiGet({}, db_->cf(Column::kDedup), keys.size(), slices.data(), values.data(),
                      statuses.data(), /*sorted_input=*/true);
  if (meter) {
    meter->AddTo(cost);
    meter.reset();  // the perf level back before decoding
  }
  for (size_t j = 0; j < keys.size(); ++j) {
    const size_t i = order[j];
    if (statuses[j].IsNotFound()) {
      continue;
    }
    if (!statuses[j].ok()) {
      return FromRocks(statuses[j], "dedup lookup");
    }
    out[i] = DecodeDedupValue(values[j].ToStringView());
    if (!out[i]) {
      return Status::Error("store_corrupt", "dedup entry of the wrong size (" +
                                                std::to_string(values[j].size()) + " bytes)");
    }
    if (cost != nullptr) {
      ++cost->found;
    }
  }
  return out;
}

void DedupIndex::Add(WriteBatch* batch, std::string_view key, const DedupEntry& entry) {
  // On the stack: this runs once per accepted event.
  char value[kDedupValueBytes];
  EncodeDedupValueInto(entry, value);
  RocksBatch(batch)
      ->Put(db_->cf(Column::kDedup), rocksdb::Slice(key.data(), key.size()),
            rocksdb::Slice(value, sizeof(value)))
      .PermitUncheckedError();
}

uint64_t DedupIndex::ApproximateKeys() const { return db_->ApproximateKeys(Column::kDedup); }

std::string DedupIndex::LevelShape() const {
  std::string shape;
  for (int level = 0; level < db_->db()->NumberLevels(db_->cf(Column::kDedup)); ++level) {
    std::string files;
    if (db_->db()->GetProperty(db_->cf(Column::kDedup),
                               "rocksdb.num-files-at-level" + std::to_string(level), &files) &&
        files != "0") {
      shape += (shape.empty() ? "L" : ", L") + std::to_string(level) + " " + files;
    }
  }
  return shape.empty() ? "no files" : shape;
}

}  // namespace carehub::hub
