#include "carehub/hub/store/resend_counts.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <string>

#include "carehub/hub/store/keys.h"
#include "database.h"

namespace carehub::hub {
namespace {

constexpr size_t kValueBytes = 24;

std::string Encode(const Resends& r) {
  return EncodeSeq(r.count) + EncodeSeq(static_cast<uint64_t>(r.first_unix_ms)) +
         EncodeSeq(static_cast<uint64_t>(r.last_unix_ms));
}

std::optional<Resends> Decode(std::string_view v) {
  if (v.size() != kValueBytes) {
    return std::nullopt;
  }
  return Resends{DecodeSeq(v.substr(0, 8)), static_cast<int64_t>(DecodeSeq(v.substr(8, 8))),
                 static_cast<int64_t>(DecodeSeq(v.substr(16, 8)))};
}

class ResendMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    auto add = Decode(value.ToStringView());
    if (!add) {
      return false;  // RocksDB reports a corruption for this key rather than guessing
    }
    if (existing != nullptr) {
      auto old = Decode(existing->ToStringView());
      if (!old) {
        return false;
      }
      add->count += old->count;
      add->first_unix_ms = std::min(add->first_unix_ms, old->first_unix_ms);
      add->last_unix_ms = std::max(add->last_unix_ms, old->last_unix_ms);
    }
    *new_value = Encode(*add);
    return true;
  }
  const char* Name() const override { return "carehub.ResendMergeOperator"; }
};

class ResendExpiryFilter : public rocksdb::CompactionFilter {
 public:
  ResendExpiryFilter(uint32_t window_days, const Clock& clock)
      : window_ms_(int64_t{window_days} * 86'400'000), clock_(clock) {}
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    auto r = Decode(value.ToStringView());
    return r && ToUnixMillis(clock_.Now()) - r->last_unix_ms > window_ms_;
  }
  const char* Name() const override { return "carehub.ResendExpiryFilter"; }

 private:
  int64_t window_ms_;
  const Clock& clock_;
};

}  // namespace

void ResendCounts::Add(WriteBatch* batch, std::string_view dedup_key, int64_t at_unix_ms) {
  RocksBatch(batch)
      ->Merge(db_->cf(Column::kResend), dedup_key, Encode(Resends{1, at_unix_ms, at_unix_ms}))
      .PermitUncheckedError();
}

Result<std::optional<Resends>> ResendCounts::Get(std::string_view dedup_key) const {
  std::string value;
  auto s = db_->db()->Get({}, db_->cf(Column::kResend), dedup_key, &value);
  if (s.IsNotFound()) {
    return std::optional<Resends>();
  }
  if (!s.ok()) {
    return FromRocks(s, "read resend count");
  }
  auto r = Decode(value);
  if (!r) {
    return Status::Error("store_corrupt", "a resend count is not 24 bytes");
  }
  return std::optional<Resends>(*r);
}

std::shared_ptr<rocksdb::MergeOperator> NewResendMergeOperator() {
  return std::make_shared<ResendMergeOperator>();
}

std::unique_ptr<rocksdb::CompactionFilter> NewResendExpiryFilter(uint32_t window_days,
                                                                 const Clock& clock) {
  return std::make_unique<ResendExpiryFilter>(window_days, clock);
}

}  // namespace carehub::hub
