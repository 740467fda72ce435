#pragma once
// The store's key layouts, in one place: every on-disk key the hub writes is built here, so the
// writer (ingest), the readers (delivery, retention) and the offline checker cannot disagree.
//
//   hub_seq        8-byte big-endian: sorts in numeric order (events, quarantine ids, audit time)
//   route prefix   publisher \0 site \0 event_type \0   (then hub_seq, in the route index)
//   dedup key      publisher \0 event_id
//
// and the one value layout more than one part reads, the route-index entry (route_index.h):
//
//   route entry    key: route prefix + first hub_seq (8 BE)
//                  value: the entry's further hub_seqs, each as the varint of its distance from the
//                  one before (>= 1); empty for an entry of one event (store format 1's only kind)
//
// Pure functions on bytes; thread-safe.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace carehub::hub {

// Big-endian u64 keys sort in numeric order.
std::string EncodeSeq(uint64_t seq);
// Reads the first 8 bytes (fewer if the input is shorter).
uint64_t DecodeSeq(std::string_view bytes);

// A route: the (publisher, site, type) a stored event is filed under.
struct RouteKey {
  std::string publisher_ods;
  std::string site_ods;
  std::string event_type;
  bool operator<(const RouteKey& o) const;
  bool operator==(const RouteKey& o) const = default;
};

// "publisher \0 site \0 type \0": the prefix of every route-index key of that route. ODS codes and
// type names never contain NUL (validation refuses them), so the prefix is unambiguous.
std::string RoutePrefix(std::string_view publisher, std::string_view site,
                        std::string_view event_type);
std::string RoutePrefix(const RouteKey& route);
// The same bytes into `*out` (replacing what it held): for a buffer reused once per event.
void RoutePrefixInto(std::string* out, std::string_view publisher, std::string_view site,
                     std::string_view event_type);
// The inverse of RoutePrefix; empty when `prefix` does not hold three NUL-terminated parts.
std::optional<RouteKey> ParseRoutePrefix(std::string_view prefix);

// The value of a route-index entry of `seqs` (ascending, no repeats, at least one; the first is in
// the key) into `*out`, replacing what it held.
void EncodeRouteEntryValue(std::span<const uint64_t> seqs, std::string* out);
// The hub_seqs of the entry whose key holds `first` and whose value is `value`, ascending, into
// `*seqs` (replacing what it held). False when the value is malformed: a truncated or over-long
// varint, a distance of 0, or a seq past 2^64.
bool DecodeRouteEntry(uint64_t first, std::string_view value, std::vector<uint64_t>* seqs);

// The dedup index key of (publisher, event_id).
std::string DedupKey(std::string_view publisher_ods, std::string_view event_id);

}  // namespace carehub::hub
