#include "ledger.h"

#include <charconv>
#include <functional>

#include "carehub/core/event_types.h"

namespace carehub::soak {
namespace {

uint64_t HashString(const std::string& s) { return std::hash<std::string>{}(s); }

std::string District(const std::string& postcode) {
  return postcode.substr(0, postcode.find(' '));
}

void AppendPatientProjection(const v1::Patient& p, bool cut, std::string* out) {
  *out += cut ? p.birth_date().substr(0, 7) : p.birth_date();
  *out += '|';
  *out += cut ? District(p.postcode()) : p.postcode();
  *out += '|' + std::to_string(p.sex()) + '|' + p.registered_gp_ods() + ';';
}

uint64_t SecondaryHash(const v1::Event& event, bool cut) {
  std::string text;
  AppendPatientProjection(event.envelope().patient(), cut, &text);
  if (event.has_activity() && event.activity().has_merged_patient()) {
    AppendPatientProjection(event.activity().merged_patient(), cut, &text);
  }
  return HashString(text);
}

void AddIdentifiers(const v1::Patient& p, std::set<std::string>* out) {
  for (const std::string* s : {&p.nhs_number(), &p.given_name(), &p.family_name(), &p.address(),
                               &p.local_mrn(), &p.birth_date(), &p.postcode()}) {
    // Short values (a sex code, a two-letter name) would match by chance anywhere.
    if (s->size() >= 4) {
      out->insert(*s);
    }
  }
}

}  // namespace

uint64_t ContentHash(const v1::Event& event) {
  v1::Event copy = event;
  copy.mutable_envelope()->clear_hub_seq();
  copy.mutable_envelope()->clear_received_at();
  return HashString(copy.SerializeAsString());
}

uint64_t SecondaryHashOfOriginal(const v1::Event& event) { return SecondaryHash(event, true); }
uint64_t SecondaryHashOfDelivered(const v1::Event& event) { return SecondaryHash(event, false); }

uint64_t NhsAsNumber(const std::string& nhs) {
  uint64_t n = 0;
  std::from_chars(nhs.data(), nhs.data() + nhs.size(), n);
  return n;
}

Ledger::Ledger(std::vector<std::string> prefixes)
    : prefixes_(std::move(prefixes)), slots_(prefixes_.size()) {}

Sym Ledger::Intern(std::string_view s) {
  std::lock_guard lock(mu_);
  return InternLocked(s);
}

Sym Ledger::InternLocked(std::string_view s) {
  auto it = syms_.find(s);
  if (it != syms_.end()) {
    return it->second;
  }
  Sym sym = static_cast<Sym>(names_.size());
  names_.emplace_back(s);
  syms_.emplace(std::string(s), sym);
  return sym;
}

std::string Ledger::Name(Sym sym) const {
  std::lock_guard lock(mu_);
  return sym < names_.size() ? names_[sym] : "?";
}

void Ledger::Record(size_t client, const v1::Event& event, bool valid) {
  auto slot = Slot(event.envelope().event_id());
  Original o;
  o.recorded = true;
  o.valid = valid;
  o.nhs = NhsAsNumber(event.envelope().patient().nhs_number());
  o.content_hash = ContentHash(event);
  o.secondary_hash = SecondaryHashOfOriginal(event);
  const std::string type = EventTypeName(event);
  std::lock_guard lock(mu_);
  o.publisher = InternLocked(event.envelope().publisher_ods());
  o.site = InternLocked(event.envelope().site_ods());
  o.type = InternLocked(type);
  if (valid) {
    auto& ids = identifiers_[o.nhs];
    AddIdentifiers(event.envelope().patient(), &ids);
    if (event.has_activity() && event.activity().has_merged_patient()) {
      AddIdentifiers(event.activity().merged_patient(),
                     &identifiers_[NhsAsNumber(event.activity().merged_patient().nhs_number())]);
    }
  }
  // An invalid event may have lost its id (missing_field); it still used up a counter value.
  if (!slot || slot->first != client) {
    return;
  }
  auto& v = slots_[client];
  if (v.size() <= slot->second) {
    v.resize(slot->second + 1);
  }
  v[slot->second] = o;
}

std::optional<std::pair<size_t, uint64_t>> Ledger::Slot(std::string_view event_id) const {
  for (size_t c = 0; c < prefixes_.size(); ++c) {
    const auto& p = prefixes_[c];
    if (event_id.size() > p.size() && event_id.substr(0, p.size()) == p) {
      uint64_t n = 0;
      const char* begin = event_id.data() + p.size();
      const char* end = event_id.data() + event_id.size();
      auto [ptr, ec] = std::from_chars(begin, end, n);
      if (ec == std::errc() && ptr == end) {
        return std::pair{c, n};
      }
    }
  }
  return std::nullopt;
}

std::optional<Original> Ledger::Find(std::string_view event_id) const {
  auto slot = Slot(event_id);
  if (!slot) {
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  const auto& v = slots_[slot->first];
  if (slot->second >= v.size() || !v[slot->second].recorded) {
    return std::nullopt;
  }
  return v[slot->second];
}

std::optional<Original> Ledger::MarkStored(std::string_view event_id) {
  auto slot = Slot(event_id);
  if (!slot) {
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  auto& v = slots_[slot->first];
  if (slot->second >= v.size() || !v[slot->second].recorded) {
    return std::nullopt;
  }
  ++v[slot->second].stored;
  return v[slot->second];
}

std::optional<std::string> Ledger::FindIdentifierIn(uint64_t nhs, std::string_view bytes) const {
  std::lock_guard lock(mu_);
  auto it = identifiers_.find(nhs);
  if (it == identifiers_.end()) {
    return std::nullopt;
  }
  for (const auto& s : it->second) {
    if (bytes.find(s) != std::string_view::npos) {
      return s;
    }
  }
  return std::nullopt;
}

}  // namespace carehub::soak
