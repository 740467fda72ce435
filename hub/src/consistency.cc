#include "carehub/hub/consistency.h"

#include <chrono>
#include <functional>
#include <set>
#include <unordered_map>

#include "carehub/core/event_types.h"
#include "carehub/hub/store/disclosure_index.h"
#include "carehub/hub/store/event_codec.h"
#include "carehub/hub/store/keys.h"

namespace carehub::hub {
namespace {

constexpr int64_t kMillisPerDay = 24LL * 3600 * 1000;

// What the checker remembers per hub_seq in [first, last]: small, so a large log fits.
struct SeqInfo {
  uint64_t dedup_key_hash = 0;
  uint64_t route_hash = 0;
  uint8_t routes_seen = 0;
  bool stored = false;
};

class Checker {
 public:
  Checker(Store& store, const ConsistencyOptions& options) : store_(store), options_(options) {}

  // Fails only when the store cannot be read; what it finds wrong is in the report.
  Result<ConsistencyReport> Run(uint64_t first_seq, uint64_t last_seq) {
    report_.first_seq = first_seq;
    report_.last_seq = last_seq;
    if (report_.first_seq > 0) {
      seqs_.resize(report_.last_seq - report_.first_seq + 1);
    }
    const int64_t now_ms = options_.now_unix_ms != 0
                               ? options_.now_unix_ms
                               : std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    today_ = static_cast<uint32_t>(now_ms / kMillisPerDay);
    for (const auto& r : store_.routes().Known()) {
      known_routes_.insert(RoutePrefix(r));
    }
    report_.known_routes = known_routes_.size();
    for (Status (Checker::*check)() :
         {&Checker::CheckEvents, &Checker::CheckDedupKeys, &Checker::CheckRoutes,
          &Checker::CheckCursors, &Checker::CheckAudit, &Checker::CheckDisclosures}) {
      if (Status s = (this->*check)(); !s.ok()) {
        return s;
      }
    }
    return std::move(report_);
  }

 private:
  void Problem(std::string text) {
    ++report_.problem_count;
    if (report_.problems.size() < options_.max_problems) {
      report_.problems.push_back(std::move(text));
    }
  }

  SeqInfo* Info(uint64_t seq) {
    if (report_.first_seq == 0 || seq < report_.first_seq || seq > report_.last_seq) {
      return nullptr;
    }
    return &seqs_[seq - report_.first_seq];
  }

  // The events column, with each event's dedup key checked in chunks (one MultiGet each).
  Status CheckEvents() {
    struct Pending {
      uint64_t seq;
      std::string key;
      ContentHash hash;
      uint32_t day;
    };
    std::vector<Pending> chunk;
    Status lookup_error;
    auto flush = [&] {
      std::vector<std::string> keys;
      keys.reserve(chunk.size());
      for (const auto& p : chunk) {
        keys.push_back(p.key);
      }
      auto lookup = store_.dedup().Lookup(keys);
      if (!lookup.ok()) {
        lookup_error = lookup.status();
        chunk.clear();
        return;
      }
      const auto& found = *lookup;
      for (size_t i = 0; i < chunk.size(); ++i) {
        const auto& p = chunk[i];
        // Past the window the key may have expired, or a resend may have been stored again and
        // taken the key over (the pipeline ignores keys older than the window).
        const bool past_window = today_ > p.day && today_ - p.day > options_.dedup_window_days;
        if (!found[i] || (past_window && found[i]->hub_seq != p.seq)) {
          if (past_window) {
            ++report_.dedup_keys_expired;
          } else {
            Problem("event " + std::to_string(p.seq) + ": no dedup key " + Printable(p.key));
          }
          continue;
        }
        if (found[i]->hub_seq != p.seq) {
          Problem("event " + std::to_string(p.seq) + ": dedup key " + Printable(p.key) +
                  " points to hub_seq " + std::to_string(found[i]->hub_seq) +
                  " (event stored twice?)");
        } else if (found[i]->hash != p.hash) {
          Problem("event " + std::to_string(p.seq) + ": dedup key " + Printable(p.key) +
                  " holds another content hash");
        }
      }
      chunk.clear();
    };

    Status scan = store_.ScanColumn(
        Store::Column::kEvents, [&](std::string_view key, std::string_view value) {
          ++report_.events;
          if (key.size() != 8) {
            Problem("events: key of " + std::to_string(key.size()) + " bytes");
            return true;
          }
          const uint64_t seq = DecodeSeq(key);
          v1::Event event;
          if (!event.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            Problem("event " + std::to_string(seq) + ": does not parse");
            return true;
          }
          if (event.envelope().hub_seq() != seq) {
            Problem("event " + std::to_string(seq) + ": envelope.hub_seq is " +
                    std::to_string(event.envelope().hub_seq()));
          }
          const auto& envelope = event.envelope();
          std::string dedup_key = DedupKey(envelope.publisher_ods(), envelope.event_id());
          const std::string route =
              RoutePrefix(envelope.publisher_ods(), envelope.site_ods(), EventTypeName(event));
          if (SeqInfo* info = Info(seq)) {
            info->stored = true;
            info->dedup_key_hash = std::hash<std::string>{}(dedup_key);
            info->route_hash = std::hash<std::string>{}(route);
          }
          const int64_t received_ms =
              envelope.received_at().seconds() * 1000 + envelope.received_at().nanos() / 1'000'000;
          // The hash the ingest pipeline kept: over the bytes the event was accepted as, which the
          // record holds before its hub fields. A record written otherwise (no hub-field suffix)
          // is hashed as the canonical encoding of its event, hub fields cleared.
          std::optional<std::string_view> accepted = AcceptedBytes(value, event);
          ContentHash hash;
          if (accepted) {
            hash = HashContent(*accepted);
          } else {
            ClearHubFields(&event);
            hash = HashContent(CanonicalBytes(event));
          }
          chunk.push_back(Pending{seq, std::move(dedup_key), hash,
                                  static_cast<uint32_t>(received_ms / kMillisPerDay)});
          if (chunk.size() >= 1024) {
            flush();
          }
          return lookup_error.ok();
        });
    if (scan.ok()) {
      flush();
    }
    return scan.ok() ? lookup_error : scan;
  }

  // Every dedup key names a stored event whose own key it is, or a seq retention has cut.
  Status CheckDedupKeys() {
    return store_.ScanColumn(Store::Column::kDedup, [&](std::string_view key,
                                                        std::string_view value) {
      ++report_.dedup_keys;
      auto entry = DecodeDedupValue(value);
      if (!entry) {
        Problem("dedup key " + Printable(key) + ": value of " + std::to_string(value.size()) +
                " bytes does not decode");
        return true;
      }
      if (report_.first_seq != 0 && entry->hub_seq < report_.first_seq) {
        ++report_.dedup_keys_below_cut;
        return true;
      }
      SeqInfo* info = Info(entry->hub_seq);
      if (info == nullptr || !info->stored) {
        Problem("dedup key " + Printable(key) + ": points to hub_seq " +
                std::to_string(entry->hub_seq) + ", which is not stored (log " +
                std::to_string(report_.first_seq) + ".." + std::to_string(report_.last_seq) + ")");
        return true;
      }
      if (info->dedup_key_hash != std::hash<std::string_view>{}(key)) {
        Problem("dedup key " + Printable(key) + ": points to hub_seq " +
                std::to_string(entry->hub_seq) + ", which holds another event");
      }
      return true;
    });
  }

  // One hub_seq a route entry of `prefix` files.
  void CheckRouteSeq(std::string_view prefix, uint64_t seq) {
    ++report_.routes;
    if (report_.first_seq != 0 && seq < report_.first_seq) {
      ++report_.routes_below_cut;
      return;
    }
    SeqInfo* info = Info(seq);
    if (info == nullptr || !info->stored) {
      Problem("route entry " + Printable(prefix) + " hub_seq " + std::to_string(seq) +
              ": no such event (dangling)");
      return;
    }
    if (info->route_hash != std::hash<std::string_view>{}(prefix)) {
      Problem("route entry " + Printable(prefix) + " hub_seq " + std::to_string(seq) +
              ": the event there has another route");
      return;
    }
    if (info->routes_seen < 255) {
      ++info->routes_seen;
    }
  }

  Status CheckRoutes() {
    std::set<std::string> unknown_prefixes;
    std::vector<uint64_t> entry_seqs;
    std::string last_prefix;
    uint64_t last_seq_of_prefix = 0;
    Status scan =
        store_.ScanColumn(Store::Column::kRoute, [&](std::string_view key, std::string_view value) {
          // publisher \0 site \0 type \0 seq(8): the seq may itself hold zero bytes, so the prefix
          // is everything but the last 8 bytes, and must end in its third separator.
          if (key.size() < 8 + 3 || key[key.size() - 9] != '\0') {
            Problem("route entry " + Printable(key) + ": malformed key");
            return true;
          }
          std::string_view prefix = key.substr(0, key.size() - 8);
          if (!known_routes_.count(std::string(prefix)) &&
              unknown_prefixes.insert(std::string(prefix)).second) {
            Problem("route " + Printable(prefix) +
                    ": not among the known routes, so no subscription plans it");
          }
          if (!DecodeRouteEntry(DecodeSeq(key.substr(key.size() - 8)), value, &entry_seqs)) {
            Problem("route entry " + Printable(key) + ": malformed list of hub_seqs");
            return true;
          }
          if (prefix == last_prefix && entry_seqs.front() <= last_seq_of_prefix) {
            Problem("route entry " + Printable(key) + ": overlaps the route's entry before it");
          }
          last_prefix.assign(prefix);
          last_seq_of_prefix = entry_seqs.back();
          for (const uint64_t seq : entry_seqs) {
            CheckRouteSeq(prefix, seq);
          }
          return true;
        });
    if (!scan.ok()) {
      return scan;
    }
    for (uint64_t i = 0; i < seqs_.size(); ++i) {
      if (seqs_[i].stored && seqs_[i].routes_seen == 0) {
        Problem("event " + std::to_string(report_.first_seq + i) + ": no route entry");
      }
    }
    return Status::Ok();
  }

  Status CheckCursors() {
    return store_.ScanColumn(
        Store::Column::kCursors, [&](std::string_view key, std::string_view value) {
          ++report_.cursors;
          if (value.size() != 8) {
            Problem("cursor " + std::string(key) + ": value of " + std::to_string(value.size()) +
                    " bytes");
            return true;
          }
          const uint64_t cursor = DecodeSeq(value);
          if (cursor > report_.last_seq) {
            Problem("cursor " + std::string(key) + " = " + std::to_string(cursor) +
                    " is beyond the last stored hub_seq " + std::to_string(report_.last_seq));
          }
          return true;
        });
  }

  Status CheckAudit() {
    return store_.ScanColumn(
        Store::Column::kAudit, [&](std::string_view key, std::string_view value) {
          ++report_.audit_records;
          v1::AuditRecord record;
          if (key.size() != 16 ||
              !record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            Problem("audit record " + Printable(key) + ": does not parse");
            return true;
          }
          if (record.kind() != "delivery" && record.kind() != "delivery_not_sent") {
            return true;
          }
          ++report_.audit_delivery_records;
          const uint64_t from = record.from_seq();
          const uint64_t to = record.to_seq();
          if (record.kind() == "delivery") {
            delivery_ranges_[std::string(key)] = {from, to};
          }
          if (from < 1 || from > to || to > report_.last_seq) {
            Problem("audit " + record.kind() + " of " + record.subscription() + " names hub_seq " +
                    std::to_string(from) + ".." + std::to_string(to) + " (last stored " +
                    std::to_string(report_.last_seq) + ")");
          } else if (record.delivered() > to - from + 1) {
            Problem("audit " + record.kind() + " of " + record.subscription() + " counts " +
                    std::to_string(record.delivered()) + " deliveries in " + std::to_string(from) +
                    ".." + std::to_string(to));
          }
          return true;
        });
  }

  // Every disclosure index entry names a "delivery" audit record whose range holds its event
  // (store/disclosure_index.h: they are written together): the journal's filings and the legacy
  // family's entries. The run index is derived from the journal and not checked here.
  Status CheckDisclosures() {
    CAREHUB_RETURN_IF_ERROR(store_.ScanColumn(
        Store::Column::kDisclosure, [&](std::string_view key, std::string_view /*value*/) {
          ++report_.disclosure_entries;
          if (key.size() != PatientHasher::kKeyBytes + kAuditKeyBytes + 8) {
            Problem("disclosure index key " + Printable(key) + ": wrong size");
            return true;
          }
          CheckFiling(key.substr(PatientHasher::kKeyBytes, kAuditKeyBytes),
                      DecodeSeq(key.substr(PatientHasher::kKeyBytes + kAuditKeyBytes)));
          return true;
        }));
    return store_.disclosures().ScanFilings(
        [&](std::string_view audit_key, uint64_t seq, bool retracted) {
          if (!retracted) {
            ++report_.disclosure_entries;
            CheckFiling(audit_key, seq);
          }
          return true;
        });
  }

  void CheckFiling(std::string_view audit_key, uint64_t seq) {
    auto it = delivery_ranges_.find(std::string(audit_key));
    if (it == delivery_ranges_.end()) {
      Problem("disclosure index entry for hub_seq " + std::to_string(seq) +
              " names no delivery audit record (" + Printable(audit_key) + ")");
    } else if (seq < it->second.first || seq > it->second.second) {
      Problem("disclosure index entry for hub_seq " + std::to_string(seq) +
              " is outside its delivery's range " + std::to_string(it->second.first) + ".." +
              std::to_string(it->second.second));
    }
  }

  // Keys hold \0 separators and binary seqs: shown with \0 as '/' and other bytes escaped.
  static std::string Printable(std::string_view bytes) {
    std::string out;
    for (unsigned char c : bytes) {
      if (c == 0) {
        out.push_back('/');
      } else if (c < 0x20 || c >= 0x7f) {
        static const char kHex[] = "0123456789abcdef";
        out += "\\x";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    return out;
  }

  Store& store_;
  const ConsistencyOptions& options_;
  ConsistencyReport report_;
  std::vector<SeqInfo> seqs_;
  std::set<std::string> known_routes_;
  std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> delivery_ranges_;  // audit key
  uint32_t today_ = 0;
};

}  // namespace

std::string ConsistencyReport::Summary() const {
  std::string counts =
      "events " + std::to_string(events) + " (hub_seq " + std::to_string(first_seq) + ".." +
      std::to_string(last_seq) + "), dedup keys " + std::to_string(dedup_keys) + " (" +
      std::to_string(dedup_keys_below_cut) + " below the retention cut, " +
      std::to_string(dedup_keys_expired) + " expired), routes " + std::to_string(routes) + " (" +
      std::to_string(routes_below_cut) + " below the cut, " + std::to_string(known_routes) +
      " known), cursors " + std::to_string(cursors) + ", audit records " +
      std::to_string(audit_records) + " (" + std::to_string(audit_delivery_records) +
      " deliveries), disclosure index entries " + std::to_string(disclosure_entries);
  if (consistent()) {
    return "consistent: " + counts;
  }
  return "INCONSISTENT: " + std::to_string(problem_count) +
         (problem_count == 1 ? " problem; " : " problems; ") + counts;
}

Result<ConsistencyReport> CheckConsistency(Store& store, const ConsistencyOptions& options) {
  auto range = store.events().Range();
  if (!range.ok()) {
    return range.status();
  }
  const uint64_t first = range.value().first;
  const uint64_t last = range.value().last;
  // One SeqInfo per hub_seq in the log: refuse a range that could not be a real log rather than
  // allocate for it (a corrupt key would otherwise ask for petabytes).
  if (first > last || last - first > (uint64_t{1} << 32)) {
    return Status::Error("store_error", "the log's hub_seq range " + std::to_string(first) + ".." +
                                            std::to_string(last) + " is not plausible");
  }
  return Checker(store, options).Run(first, last);
}

}  // namespace carehub::hub
