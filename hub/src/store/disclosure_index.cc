#include "carehub/hub/store/disclosure_index.h"

#include <rocksdb/write_batch.h>
#include <sodium.h>

#include <algorithm>
#include <memory>

#include "carehub/hub/store/event_codec.h"
#include "carehub/hub/store/keys.h"
#include "database.h"

namespace carehub::hub {
namespace {

constexpr std::string_view kKeyRecord = "disclosure_index_key";

rocksdb::Slice AsSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// An entry's key, patient key + audit key + hub_seq (8 BE), as parts the write batch joins: no
// std::string per entry (the delivery thread writes one per delivered event).
class IndexKey {
 public:
  IndexKey(std::string_view patient_key, std::string_view audit_key, uint64_t hub_seq)
      : seq_(EncodeSeq(hub_seq)),
        slices_{AsSlice(patient_key), AsSlice(audit_key), AsSlice(seq_)} {}
  IndexKey(const IndexKey&) = delete;
  IndexKey& operator=(const IndexKey&) = delete;
  rocksdb::SliceParts parts() const { return rocksdb::SliceParts(slices_, 3); }

 private:
  std::string seq_;  // 8 bytes: held inline, no allocation
  rocksdb::Slice slices_[3];
};

}  // namespace

std::string PatientHasher::Hash(std::string_view kind, std::string_view a,
                                std::string_view b) const {
  // Length-prefixed parts: ("mrn", "AB", "C1") and ("mrn", "A", "BC1") hash differently.
  crypto_generichash_state state;
  crypto_generichash_init(&state, secret_.data(), secret_.size(), kKeyBytes);
  for (std::string_view part : {kind, a, b}) {
    const auto n = static_cast<uint32_t>(part.size());
    const unsigned char len[4] = {
        static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
        static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
    crypto_generichash_update(&state, len, sizeof len);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  }
  std::string out(kKeyBytes, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(out.data()), kKeyBytes);
  return out;
}

std::string PatientHasher::ForNhsNumber(std::string_view nhs_number) const {
  return Hash("nhs", nhs_number, "");
}

std::string PatientHasher::ForLocalMrn(std::string_view assigning_ods, std::string_view mrn) const {
  return Hash("mrn", assigning_ods, mrn);
}

void PatientHasher::KeysOf(const v1::Event& event, std::vector<std::string>* out) const {
  auto add = [&](const v1::Patient& p) {
    std::string key;
    if (!p.nhs_number().empty()) {
      key = ForNhsNumber(p.nhs_number());
    } else if (!p.local_mrn().empty()) {
      key = ForLocalMrn(p.mrn_assigning_ods(), p.local_mrn());
    } else {
      return;
    }
    if (std::find(out->begin(), out->end(), key) == out->end()) {
      out->push_back(std::move(key));
    }
  };
  add(event.envelope().patient());
  if (event.has_activity() && event.activity().has_merged_patient()) {
    add(event.activity().merged_patient());
  }
}

Result<std::optional<PatientHasher>> DisclosureIndex::ReadKey() const {
  std::string value;
  auto s = db_->db()->Get({}, db_->cf(Column::kMeta), std::string(kKeyRecord), &value);
  if (s.IsNotFound()) {
    return std::optional<PatientHasher>();
  }
  if (!s.ok()) {
    return FromRocks(s, "read the disclosure index key");
  }
  std::array<unsigned char, 32> secret{};
  if (value.size() != secret.size()) {
    return Status::Error("store_corrupt", "the disclosure index key is not 32 bytes");
  }
  std::copy(value.begin(), value.end(), secret.begin());
  return std::optional<PatientHasher>(PatientHasher(secret));
}

Status DisclosureIndex::EnsureKey() {
  MutexLock lock(mu_);
  if (hasher_) {
    return Status::Ok();
  }
  auto read = ReadKey();
  if (!read.ok()) {
    return read.status();
  }
  if (read.value()) {
    hasher_ = read.value();
    return Status::Ok();
  }
  std::array<unsigned char, 32> secret{};
  randombytes_buf(secret.data(), secret.size());
  CAREHUB_RETURN_IF_ERROR(
      db_->Put(Column::kMeta, kKeyRecord,
               std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()),
               /*sync=*/true));
  hasher_ = PatientHasher(secret);
  return Status::Ok();
}

Result<PatientHasher> DisclosureIndex::Hasher() const {
  MutexLock lock(mu_);
  if (!hasher_) {
    // A standby has no key of its own: it reads the one its primary wrote, once replicated.
    auto read = ReadKey();
    if (!read.ok()) {
      return read.status();
    }
    if (!read.value()) {
      return Status::Error("no_index_key",
                           "this store has no disclosure index key yet (no primary has run on it)");
    }
    hasher_ = read.value();
  }
  return *hasher_;
}

void DisclosureIndex::Add(WriteBatch* batch, std::string_view patient_key,
                          std::string_view audit_key, uint64_t hub_seq,
                          const v1::DisclosureEntry& entry) {
  AddEncoded(batch, patient_key, audit_key, hub_seq, entry.SerializeAsString());
}

void DisclosureIndex::AddEncoded(WriteBatch* batch, std::string_view patient_key,
                                 std::string_view audit_key, uint64_t hub_seq,
                                 std::string_view entry_bytes) {
  const rocksdb::Slice value = AsSlice(entry_bytes);
  RocksBatch(batch)->Put(db_->cf(Column::kDisclosure),
                         IndexKey(patient_key, audit_key, hub_seq).parts(),
                         rocksdb::SliceParts(&value, 1));
}

void AppendDisclosureEntry(std::string* out, std::string_view agreement,
                           std::string_view field_level, std::string_view event_type,
                           std::string_view publisher_ods, std::string_view event_id) {
  uint32_t field = 0;
  for (std::string_view value : {agreement, field_level, event_type, publisher_ods, event_id}) {
    ++field;
    if (!value.empty()) {
      AppendLengthDelimited(out, field, value);
    }
  }
}

void DisclosureIndex::Delete(WriteBatch* batch, std::string_view patient_key,
                             std::string_view audit_key, uint64_t hub_seq) {
  RocksBatch(batch)->Delete(db_->cf(Column::kDisclosure),
                            IndexKey(patient_key, audit_key, hub_seq).parts());
}

Result<std::vector<FoundDisclosure>> DisclosureIndex::ForPatient(
    std::string_view patient_key, int64_t since_ms, int64_t until_ms, size_t limit,
    std::optional<uint64_t> hub_seq) const {
  std::vector<FoundDisclosure> out;
  const std::string prefix(patient_key);
  const std::string start =
      prefix + EncodeSeq(static_cast<uint64_t>(std::max<int64_t>(since_ms, 0)));
  // The bound keeps RocksDB from reading past the patient's entries into the next patient's.
  const std::string end =
      prefix + EncodeSeq(static_cast<uint64_t>(std::max<int64_t>(until_ms, 0)) + 1);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  ro.prefix_same_as_start = true;  // one patient: the family's prefix is the patient key
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(Column::kDisclosure)));
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    const std::string_view key = it->key().ToStringView();
    if (key.size() != PatientHasher::kKeyBytes + kAuditKeyBytes + 8) {
      return Status::Error("store_corrupt", "a disclosure index key has the wrong size");
    }
    const std::string_view audit_key = key.substr(PatientHasher::kKeyBytes, kAuditKeyBytes);
    FoundDisclosure found;
    found.hub_seq = DecodeSeq(key.substr(PatientHasher::kKeyBytes + kAuditKeyBytes));
    if (hub_seq && found.hub_seq != *hub_seq) {
      continue;
    }
    found.audit_key = std::string(audit_key);
    found.at_unix_ms = static_cast<int64_t>(DecodeSeq(audit_key));
    if (!found.entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Error("store_corrupt", "a disclosure index entry does not decode");
    }
    out.push_back(std::move(found));
  }
  if (Status s = FromRocks(it->status(), "read the disclosure index"); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace carehub::hub
