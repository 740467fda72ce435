#include "carehub/hub/store/event_log.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "carehub/core/crash_points.h"
#include "carehub/hub/store/keys.h"
#include "carehub/hub/store/route_index.h"
#include "database.h"

namespace carehub::hub {
namespace {

Result<int64_t> ReceivedAtMillis(uint64_t seq, std::string_view bytes) {
  v1::Event e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Error("store_corrupt",
                         "event at hub_seq " + std::to_string(seq) + " does not decode");
  }
  const auto& t = e.envelope().received_at();
  return t.seconds() * 1000 + t.nanos() / 1'000'000;
}

}  // namespace

void EventLog::Add(WriteBatch* batch, uint64_t hub_seq, std::string_view stored_bytes) {
  RocksBatch(batch)
      ->Put(db_->cf(Column::kEvents), EncodeSeq(hub_seq),
            rocksdb::Slice(stored_bytes.data(), stored_bytes.size()))
      .PermitUncheckedError();  // appending to an in-memory batch cannot fail below 4 GiB
}

Result<uint64_t> EventLog::EdgeSeq(bool last) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator({}, db_->cf(Column::kEvents)));
  if (last) {
    it->SeekToLast();
  } else {
    it->SeekToFirst();
  }
  if (it->Valid()) {
    return DecodeSeq(it->key().ToStringView());
  }
  Status s = FromRocks(it->status(), last ? "read last event" : "read first event");
  if (!s.ok()) {
    return s;
  }
  return uint64_t{0};
}

Result<uint64_t> EventLog::LastSeq() const { return EdgeSeq(/*last=*/true); }

Result<uint64_t> EventLog::FirstSeq() const { return EdgeSeq(/*last=*/false); }

Result<std::optional<v1::Event>> EventLog::Get(uint64_t hub_seq) const {
  std::string value;
  auto s = db_->db()->Get({}, db_->cf(Column::kEvents), EncodeSeq(hub_seq), &value);
  if (s.IsNotFound()) {
    return std::optional<v1::Event>();
  }
  if (!s.ok()) {
    return FromRocks(s, "read event");
  }
  v1::Event e;
  if (!e.ParseFromString(value)) {
    return Status::Error("store_corrupt",
                         "event at hub_seq " + std::to_string(hub_seq) + " does not decode");
  }
  return std::optional<v1::Event>(std::move(e));
}

Status EventLog::Scan(uint64_t from, uint64_t to,
                      const std::function<bool(uint64_t, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  // A scan reads each block once, in order (a subscription catching up, the consistency check):
  // filling the block cache with it evicted what ingest's dedup lookups and other readers use.
  // carehub-bench --catchup, full subscription over a 2M backlog: 11.5 and 13.5 s with the cache
  // filled, 10.5 and 10.0 s without (alternating runs). Live sessions read recent events from the
  // memtables, or share one read (subscribe/shared_scan.h).
  ro.fill_cache = false;
  std::string upper = EncodeSeq(to == UINT64_MAX ? to : to + 1);
  rocksdb::Slice upper_slice(upper);
  if (to != UINT64_MAX) {
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro, db_->cf(Column::kEvents)));
  for (it->Seek(EncodeSeq(from)); it->Valid(); it->Next()) {
    if (!fn(DecodeSeq(it->key().ToStringView()), it->value().ToStringView())) {
      return Status::Ok();
    }
  }
  // Not valid means the end or an error: ask.
  return FromRocks(it->status(), "scan event log");
}

Result<std::vector<std::string>> EventLog::MultiGet(const std::vector<uint64_t>& seqs) const {
  std::vector<std::string> keys;
  keys.reserve(seqs.size());
  for (uint64_t s : seqs) {
    keys.push_back(EncodeSeq(s));
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  rocksdb::ReadOptions ro;
  // A route-index read (a narrow subscription catching up, an operator's browse page) wants a few
  // events scattered over many blocks, each read once: putting each block in the block cache cost
  // an allocation, a copy and an eviction per event and evicted blocks other readers use.
  // carehub-bench --catchup --catchup-events 2000000, the 1% subscription's 20k events: 0.48-0.49 s
  // with the cache filled, 0.23-0.27 s without (alternating runs of one binary).
  ro.fill_cache = false;
  db_->db()->MultiGet(ro, db_->cf(Column::kEvents), keys.size(), slices.data(), values.data(),
                      statuses.data(), /*sorted_input=*/std::is_sorted(seqs.begin(), seqs.end()));
  std::vector<std::string> out(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (statuses[i].ok()) {
      out[i] = values[i].ToString();
    } else if (!statuses[i].IsNotFound()) {
      return FromRocks(statuses[i], "read events");
    }
  }
  return out;
}

Result<uint64_t> EventLog::SeqAtTime(int64_t unix_ms) const {
  auto range = Range();
  if (!range.ok()) {
    return range.status();
  }
  uint64_t lo = range.value().first;
  uint64_t hi = range.value().last;
  if (lo == 0) {
    return uint64_t{1};
  }
  // received_at grows with hub_seq (both assigned by the single ingest thread).
  uint64_t answer = hi + 1;
  while (lo <= hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    // Seqs can have gaps (retention, failed commits): look at the first event at or after mid.
    uint64_t found_seq = 0;
    Result<int64_t> found_ms = int64_t{0};
    Status s = Scan(mid, hi, [&](uint64_t seq, std::string_view bytes) {
      found_seq = seq;
      found_ms = ReceivedAtMillis(seq, bytes);
      return false;
    });
    if (!s.ok()) {
      return s;
    }
    if (found_seq == 0) {
      hi = mid - 1;
      continue;
    }
    if (!found_ms.ok()) {
      return found_ms.status();
    }
    if (*found_ms >= unix_ms) {
      answer = found_seq;
      if (mid == 0) {
        break;
      }
      hi = mid - 1;
    } else {
      lo = found_seq + 1;
    }
  }
  return answer;
}

Result<uint64_t> EventLog::DeleteBefore(int64_t unix_ms, const RouteIndex& routes) {
  auto range = Range();
  if (!range.ok()) {
    return range.status();
  }
  auto at = SeqAtTime(unix_ms);
  if (!at.ok()) {
    return at.status();
  }
  const uint64_t first = range.value().first;
  // The newest event always stays: LastSeq() is where hub_seq resumes after a restart, so an
  // emptied log would hand out sequence numbers again that subscribers already acknowledged.
  const uint64_t cutoff = std::min(at.value(), range.value().last);
  if (first == 0 || cutoff <= first) {
    return uint64_t{0};
  }
  CAREHUB_CRASH_POINT("retention.before_delete");
  WriteBatch batch;
  RocksBatch(&batch)
      ->DeleteRange(db_->cf(Column::kEvents), EncodeSeq(0), EncodeSeq(cutoff))
      .PermitUncheckedError();
  if (Status s = routes.AddDeleteBefore(&batch, cutoff); !s.ok()) {
    return s;
  }
  Status s = db_->Commit(&batch, /*sync=*/true);
  if (!s.ok()) {
    return s;
  }
  CAREHUB_CRASH_POINT("retention.after_delete");
  return cutoff - first;
}

Result<EventLog::SeqRange> EventLog::Range() const {
  auto first = FirstSeq();
  if (!first.ok()) {
    return first.status();
  }
  auto last = LastSeq();
  if (!last.ok()) {
    return last.status();
  }
  return SeqRange{first.value(), last.value()};
}

Result<uint64_t> EventLog::ApproximateCount() const {
  auto range = Range();
  if (!range.ok()) {
    return range.status();
  }
  return range.value().first == 0 ? uint64_t{0} : range.value().last - range.value().first + 1;
}

}  // namespace carehub::hub
