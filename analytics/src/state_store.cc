#include "carehub/analytics/state_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "carehub/core/ordered_key.h"

namespace carehub::analytics {
namespace {

constexpr char kCursorKey[] = "m/cursor";
constexpr char kFactPrefix[] = "f/";

// Facts are keyed by (publisher, event_id): the same key an UPDATE or CANCEL names.
std::string FactKey(const std::string& publisher, const std::string& event_id) {
  return std::string(kFactPrefix) + publisher + '\x1f' + event_id;
}

std::string EncodeSeq(uint64_t seq) { return EncodeOrderedU64(seq); }

uint64_t DecodeSeq(const std::string& bytes) { return DecodeOrderedU64(bytes); }

}  // namespace

StateStore::StateStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
StateStore::~StateStore() = default;

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) {
    return Status::Error("state_open_failed", dir + ": " + s.ToString());
  }
  std::unique_ptr<StateStore> store(new StateStore(std::unique_ptr<rocksdb::DB>(raw)));
  std::string value;
  s = store->db_->Get(rocksdb::ReadOptions(), kCursorKey, &value);
  if (s.ok()) {
    store->cursor_ = DecodeSeq(value);
  } else if (!s.IsNotFound()) {
    return Status::Error("state_open_failed", dir + ": " + s.ToString());
  }
  return store;
}

Status StateStore::Apply(const std::vector<v1::DeliveredEvent>& events, uint64_t scanned_to_seq) {
  rocksdb::WriteBatch batch;
  uint64_t new_cursor = cursor_;
  uint64_t written = 0;
  for (const v1::DeliveredEvent& delivered : events) {
    const v1::Event& event = delivered.event();
    const v1::Envelope& env = event.envelope();
    if (env.hub_seq() <= cursor_) {
      continue;
    }
    new_cursor = std::max(new_cursor, env.hub_seq());
    if (env.lifecycle() != v1::LIFECYCLE_NEW && !env.supersedes_event_id().empty()) {
      batch.Delete(FactKey(env.publisher_ods(), env.supersedes_event_id()));
    }
    std::optional<Fact> fact = FactFromEvent(event);
    if (fact) {
      batch.Put(FactKey(env.publisher_ods(), env.event_id()), EncodeFact(*fact));
      ++written;
    }
  }
  new_cursor = std::max(new_cursor, scanned_to_seq);
  if (new_cursor == cursor_) {
    return Status::Ok();
  }
  batch.Put(kCursorKey, EncodeSeq(new_cursor));
  rocksdb::WriteOptions options;
  options.sync = true;
  rocksdb::Status s = db_->Write(options, &batch);
  if (!s.ok()) {
    return Status::Error("state_write_failed", s.ToString());
  }
  cursor_ = new_cursor;
  facts_written_ += written;
  return Status::Ok();
}

Result<std::vector<Fact>> StateStore::LoadFacts() const {
  std::vector<Fact> facts;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kFactPrefix); it->Valid() && it->key().starts_with(kFactPrefix); it->Next()) {
    std::optional<Fact> fact = DecodeFact(it->value().ToString());
    if (fact) {
      facts.push_back(std::move(*fact));
    }
  }
  if (!it->status().ok()) {
    return Status::Error("state_read_failed", it->status().ToString());
  }
  return facts;
}

}  // namespace carehub::analytics
