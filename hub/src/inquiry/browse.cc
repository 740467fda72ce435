// BrowseEvents and EventDetail: what arrived, newest first, with patient identifiers masked.

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <queue>

#include "carehub/core/event_types.h"
#include "inquiry.h"

namespace carehub::hub::inquiry {
namespace {

constexpr const char* kMasked = "masked";

void MaskPatient(v1::Patient* p) {
  for (std::string* field :
       {p->mutable_nhs_number(), p->mutable_local_mrn(), p->mutable_birth_date(),
        p->mutable_postcode(), p->mutable_given_name(), p->mutable_family_name(),
        p->mutable_address(), p->mutable_pseudonym()}) {
    if (!field->empty()) {
      *field = kMasked;
    }
  }
}

int64_t ReceivedMs(const v1::Event& e) {
  const auto& t = e.envelope().received_at();
  return t.seconds() * 1000 + t.nanos() / 1000000;
}

bool TypeMatches(const std::string& wanted, const std::string& type) {
  if (wanted.empty() || wanted == type) {
    return true;
  }
  // "activity.*": the family.
  return wanted.size() > 2 && wanted.compare(wanted.size() - 2, 2, ".*") == 0 &&
         type.compare(0, wanted.size() - 1, wanted, 0, wanted.size() - 1) == 0;
}

json Summary(const v1::Event& e) {
  const auto& env = e.envelope();
  return {{"hub_seq", env.hub_seq()},
          {"received_at_unix_ms", ReceivedMs(e)},
          {"publisher_ods", env.publisher_ods()},
          {"site_ods", env.site_ods()},
          {"event_type", EventTypeName(e)},
          {"lifecycle", v1::Lifecycle_Name(env.lifecycle())},
          {"event_id", env.event_id()},
          {"patient",
           env.patient().nhs_number().empty() && env.patient().local_mrn().empty() ? "" : kMasked}};
}

}  // namespace

json EventJson(const v1::Event& event, bool masked) {
  v1::Event copy = event;
  if (masked) {
    auto* env = copy.mutable_envelope();
    MaskPatient(env->mutable_patient());
    for (auto& flag : *env->mutable_data_quality()) {
      if (!flag.raw_value().empty()) {
        flag.set_raw_value(kMasked);
      }
    }
    if (copy.has_activity()) {
      if (copy.activity().has_merged_patient()) {
        MaskPatient(copy.mutable_activity()->mutable_merged_patient());
      }
      if (!copy.activity().note().empty()) {
        copy.mutable_activity()->set_note(kMasked);  // free text may name the patient
      }
    }
    if (copy.has_referral() && !copy.referral().note().empty()) {
      copy.mutable_referral()->set_note(kMasked);
    }
  }
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(copy, &text, options).ok()) {
    return json::object();
  }
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

Result<json> BrowseEvents(const Store& store, const BrowseQuery& query) {
  auto range = store.events().Range();
  if (!range.ok()) {
    return range.status();
  }
  json items = json::array();
  if (range->last == 0) {
    return json{{"items", items}, {"next_before_seq", nullptr}};
  }
  // Seqs grow with the time received: the window maps to a seq range by binary search.
  uint64_t below =
      query.before_seq > 0 ? std::min(query.before_seq, range->last + 1) : range->last + 1;
  if (query.until_unix_ms != INT64_MAX) {
    auto after_until = store.events().SeqAtTime(query.until_unix_ms + 1);
    if (!after_until.ok()) {
      return after_until.status();
    }
    below = std::min(below, after_until.value());
  }
  uint64_t from = range->first;
  if (query.since_unix_ms > 0) {
    auto at = store.events().SeqAtTime(query.since_unix_ms);
    if (!at.ok()) {
      return at.status();
    }
    from = std::max(from, at.value());
  }
  const size_t limit = std::clamp<size_t>(query.limit, 1, 1000);
  std::vector<uint64_t> seqs;
  if (query.publisher_ods.empty() && query.site_ods.empty() && query.event_type.empty()) {
    for (uint64_t s = below; s > from && seqs.size() < limit; --s) {
      seqs.push_back(s - 1);
    }
  } else {
    // The newest `limit` over every route that matches: each route's newest, merged.
    std::vector<uint64_t> merged;
    for (const auto& route : store.routes().Known()) {
      if ((!query.publisher_ods.empty() && route.publisher_ods != query.publisher_ods) ||
          (!query.site_ods.empty() && route.site_ods != query.site_ods) ||
          !TypeMatches(query.event_type, route.event_type)) {
        continue;
      }
      auto got = store.routes().ScanBackward(route, from, below, limit);
      if (!got.ok()) {
        return got.status();
      }
      merged.insert(merged.end(), got->begin(), got->end());
    }
    std::sort(merged.begin(), merged.end(), std::greater<>());
    merged.resize(std::min(merged.size(), limit));
    seqs = std::move(merged);
  }
  auto bytes = store.events().MultiGet(seqs);
  if (!bytes.ok()) {
    return bytes.status();
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    v1::Event e;
    if (bytes.value()[i].empty()) {
      continue;  // cut by retention between the reads
    }
    if (!e.ParseFromString(bytes.value()[i])) {
      return Status::Error("store_corrupt",
                           "event " + std::to_string(seqs[i]) + " does not decode");
    }
    items.push_back(Summary(e));
  }
  json next = nullptr;
  if (seqs.size() == limit && seqs.back() > from) {
    next = seqs.back();
  }
  return json{{"items", items}, {"next_before_seq", next}};
}

Result<json> EventDetail(const Store& store, uint64_t hub_seq, bool reveal) {
  auto e = store.events().Get(hub_seq);
  if (!e.ok()) {
    return e.status();
  }
  if (!e.value()) {
    return json(nullptr);
  }
  json out = Summary(*e.value());
  out["masked"] = !reveal;
  out["event"] = EventJson(*e.value(), /*masked=*/!reveal);
  return out;
}

}  // namespace carehub::hub::inquiry
