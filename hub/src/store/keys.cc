#include "carehub/hub/store/keys.h"

#include <tuple>

#include "carehub/core/ordered_key.h"
#include "carehub/core/wire_reader.h"
#include "carehub/hub/store/event_codec.h"

namespace carehub::hub {

std::string EncodeSeq(uint64_t seq) { return EncodeOrderedU64(seq); }

uint64_t DecodeSeq(std::string_view bytes) { return DecodeOrderedU64(bytes); }

bool RouteKey::operator<(const RouteKey& o) const {
  return std::tie(publisher_ods, site_ods, event_type) <
         std::tie(o.publisher_ods, o.site_ods, o.event_type);
}

std::string RoutePrefix(std::string_view publisher, std::string_view site,
                        std::string_view event_type) {
  std::string p;
  RoutePrefixInto(&p, publisher, site, event_type);
  return p;
}

void RoutePrefixInto(std::string* out, std::string_view publisher, std::string_view site,
                     std::string_view event_type) {
  out->clear();
  out->reserve(publisher.size() + site.size() + event_type.size() + 3);
  out->append(publisher).push_back('\0');
  out->append(site).push_back('\0');
  out->append(event_type).push_back('\0');
}

std::string RoutePrefix(const RouteKey& route) {
  return RoutePrefix(route.publisher_ods, route.site_ods, route.event_type);
}

std::optional<RouteKey> ParseRoutePrefix(std::string_view prefix) {
  const size_t a = prefix.find('\0');
  if (a == std::string_view::npos) {
    return std::nullopt;
  }
  const size_t b = prefix.find('\0', a + 1);
  if (b == std::string_view::npos) {
    return std::nullopt;
  }
  const size_t c = prefix.find('\0', b + 1);
  if (c == std::string_view::npos) {
    return std::nullopt;
  }
  return RouteKey{std::string(prefix.substr(0, a)), std::string(prefix.substr(a + 1, b - a - 1)),
                  std::string(prefix.substr(b + 1, c - b - 1))};
}

void EncodeRouteEntryValue(std::span<const uint64_t> seqs, std::string* out) {
  out->clear();
  for (size_t i = 1; i < seqs.size(); ++i) {
    AppendVarint(out, seqs[i] - seqs[i - 1]);
  }
}

bool DecodeRouteEntry(uint64_t first, std::string_view value, std::vector<uint64_t>* seqs) {
  seqs->clear();
  seqs->push_back(first);
  wire::Reader reader(value);
  while (!reader.done()) {
    uint64_t distance = 0;
    if (!reader.Varint(&distance) || distance == 0 || distance > UINT64_MAX - seqs->back()) {
      return false;
    }
    seqs->push_back(seqs->back() + distance);
  }
  return true;
}

std::string DedupKey(std::string_view publisher_ods, std::string_view event_id) {
  std::string k;
  k.reserve(publisher_ods.size() + event_id.size() + 1);
  k.append(publisher_ods).push_back('\0');
  k.append(event_id);
  return k;
}

}  // namespace carehub::hub
