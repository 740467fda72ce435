#include "carehub/policy/policy_set.h"

#include <algorithm>
#include <atomic>
#include <sstream>
#include <utility>

#include "carehub/core/event_types.h"
#include "compiled.h"

namespace carehub::policy {
namespace internal {

int TypeSlotOf(const v1::Event& event) {
  switch (event.body_case()) {
    case v1::Event::kActivity: {
      const int kind = event.activity().kind();
      return kind >= 0 && kind <= v1::ActivityKind_MAX ? kActivityBase + kind : kActivityOther;
    }
    case v1::Event::kReferral: {
      const int status = event.referral().status();
      return status >= 0 && status <= v1::ReferralStatus_MAX ? kReferralBase + status
                                                             : kReferralOther;
    }
    default:
      return kUnknownSlot;
  }
}

std::string TypeSlotName(int slot) {
  if (slot >= kActivityBase && slot < kActivityOther) {
    const auto kind = static_cast<v1::ActivityKind>(slot - kActivityBase);
    return v1::ActivityKind_IsValid(kind) ? "activity." + ActivityKindName(kind) : "activity.";
  }
  if (slot == kActivityOther) {
    return "activity.";
  }
  if (slot >= kReferralBase && slot < kReferralOther) {
    const auto status = static_cast<v1::ReferralStatus>(slot - kReferralBase);
    return v1::ReferralStatus_IsValid(status) ? "referral." + ReferralStatusName(status)
                                              : "referral.";
  }
  if (slot == kReferralOther) {
    return "referral.";
  }
  return "unknown";
}

uint64_t TypeMaskFor(std::string_view pattern) {
  uint64_t mask = 0;
  for (int slot = 0; slot < kTypeSlots; ++slot) {
    if (EventTypeMatches(pattern, TypeSlotName(slot))) {
      mask |= uint64_t{1} << slot;
    }
  }
  return mask;
}

bool NhsKey(std::string_view nhs_number, uint64_t* key) {
  if (nhs_number.size() != 10) {
    return false;
  }
  uint64_t value = 0;
  for (char c : nhs_number) {
    if (c < '0' || c > '9') {
      return false;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  *key = value;
  return true;
}

Compiled::~Compiled() {
  for (auto& agreement : compiled_agreements) {
    sodium_memzero(&agreement.keyed_hmac, sizeof(agreement.keyed_hmac));
  }
}

}  // namespace internal

namespace {

// A SubscriptionRef from this PolicySet is used as is; one from an older PolicySet (the hub kept it
// across a reload) is looked up again by id so it can never select another subscription's
// agreements.
const SubscriptionRef* Resolve(const internal::Compiled& c, const SubscriptionRef& sub) {
  if (sub.index < c.subscriptions.size() && &c.subscriptions[sub.index] == &sub) {
    return &sub;
  }
  auto it = c.subscription_index.find(std::string_view(sub.id));
  return it == c.subscription_index.end() ? nullptr : &c.subscriptions[it->second];
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += ", ";
    }
    out += items[i];
  }
  return out + "]";
}

}  // namespace

PolicySet::PolicySet(std::unique_ptr<internal::Compiled> compiled)
    : compiled_(std::move(compiled)), id_([] {
        static std::atomic<uint64_t> next{1};
        return next.fetch_add(1);
      }()) {}

PolicySet::~PolicySet() = default;

const SubscriptionRef* PolicySet::FindSubscription(std::string_view id) const {
  auto it = compiled_->subscription_index.find(id);
  return it == compiled_->subscription_index.end() ? nullptr
                                                   : &compiled_->subscriptions[it->second];
}

const Subscriber* PolicySet::FindSubscriber(std::string_view id) const {
  auto it = compiled_->subscriber_index.find(id);
  return it == compiled_->subscriber_index.end() ? nullptr : &compiled_->subscribers[it->second];
}

std::vector<const Agreement*> PolicySet::AgreementsFor(const SubscriptionRef& subscription) const {
  std::vector<const Agreement*> out;
  const SubscriptionRef* sub = Resolve(*compiled_, subscription);
  if (sub == nullptr) {
    return out;
  }
  for (uint32_t index : compiled_->subscription_agreements[sub->index]) {
    out.push_back(&compiled_->agreements[index]);
  }
  return out;
}

std::optional<uint32_t> PolicySet::ViewOf(const SubscriptionRef& subscription) const {
  const SubscriptionRef* sub = Resolve(*compiled_, subscription);
  if (sub == nullptr) {
    return std::nullopt;
  }
  return compiled_->subscription_view[sub->index];
}

bool PolicySet::MayReceive(const SubscriptionRef& subscription, std::string_view publisher_ods,
                           std::string_view event_type, std::string_view site_ods) const {
  const internal::Compiled& c = *compiled_;
  const SubscriptionRef* sub = Resolve(c, subscription);
  if (sub == nullptr) {
    return false;
  }
  uint64_t type_bits = 0;
  auto type_it = c.type_index.find(event_type);
  if (type_it != c.type_index.end()) {
    type_bits = uint64_t{1} << type_it->second;
  }
  const int64_t publisher_id = c.OdsId(publisher_ods);
  const int64_t site_id = c.OdsId(site_ods);
  for (uint32_t index : c.subscription_agreements[sub->index]) {
    const internal::CompiledAgreement& ca = c.compiled_agreements[index];
    bool type_ok = (ca.type_mask & type_bits) != 0;
    if (type_bits == 0) {
      // A name this build does not know: fall back to the patterns as written.
      for (const std::string& pattern : c.agreements[index].event_types) {
        type_ok = type_ok || EventTypeMatches(pattern, event_type);
      }
    }
    if (type_ok && (ca.all_sources || ca.CoversOds(publisher_id) || ca.CoversOds(site_id))) {
      return true;
    }
  }
  return false;
}

EventSources PolicySet::SourcesOf(const v1::Event& event) const {
  const v1::Envelope& envelope = event.envelope();
  return {id_, compiled_->OdsId(envelope.publisher_ods()), compiled_->OdsId(envelope.site_ods()),
          uint64_t{1} << internal::TypeSlotOf(event)};
}

Decision PolicySet::Decide(const SubscriptionRef& subscription, const v1::Event& event,
                           Clock::TimePoint now) const {
  return Decide(subscription, event, SourcesOf(event), now);
}

Decision PolicySet::Decide(const SubscriptionRef& subscription, const v1::Event& event,
                           const EventSources& resolved, Clock::TimePoint now) const {
  const internal::Compiled& c = *compiled_;
  Decision decision;
  const SubscriptionRef* sub = Resolve(c, subscription);
  if (sub == nullptr) {
    return decision;
  }
  const EventSources sources = resolved.policy_id == id_ ? resolved : SourcesOf(event);
  const uint64_t type_bit = sources.type_bit;
  const v1::Envelope& envelope = event.envelope();
  const int64_t publisher_id = sources.publisher;
  const int64_t site_id = sources.site;
  bool covered = false;
  for (uint32_t index : c.subscription_agreements[sub->index]) {
    const internal::CompiledAgreement& ca = c.compiled_agreements[index];
    if ((ca.type_mask & type_bit) == 0) {
      continue;
    }
    if (!ca.all_sources && !ca.CoversOds(publisher_id) && !ca.CoversOds(site_id)) {
      continue;
    }
    covered = true;
    const Agreement& agreement = c.agreements[index];
    if (!agreement.ValidAt(now)) {
      continue;
    }
    decision.agreement = &agreement;
    if (sub->purpose == Purpose::kSecondaryUse && !c.opt_out.empty()) {
      // A merge message carries two records of one person: either on the list withholds it.
      bool opted_out = IsOptedOut(envelope.patient().nhs_number());
      if (!opted_out && event.has_activity() && event.activity().has_merged_patient()) {
        opted_out = IsOptedOut(event.activity().merged_patient().nhs_number());
      }
      if (opted_out) {
        decision.verdict = Verdict::kWithheld;
        decision.withheld_reason = kWithheldOptOut;
        return decision;
      }
    }
    decision.verdict = Verdict::kDeliver;
    return decision;
  }
  if (covered) {
    decision.verdict = Verdict::kWithheld;
    decision.withheld_reason = kWithheldNoValidAgreement;
  }
  return decision;
}

bool PolicySet::IsOptedOut(std::string_view nhs_number) const {
  uint64_t key = 0;
  return internal::NhsKey(nhs_number, &key) && compiled_->opt_out.count(key) != 0;
}

Validity PolicySet::ValidityNow(const SubscriptionRef& subscription, Clock::TimePoint now) const {
  Validity validity;
  const SubscriptionRef* sub = Resolve(*compiled_, subscription);
  if (sub == nullptr) {
    validity.code = kValidityNoAgreement;
    validity.message = "subscription '" + subscription.id + "' is not in the current policy";
    return validity;
  }
  const auto& indices = compiled_->subscription_agreements[sub->index];
  if (indices.empty()) {
    validity.code = kValidityNoAgreement;
    validity.message = "subscriber '" + sub->subscriber + "' has no " +
                       std::string(PurposeName(sub->purpose)) + " agreement";
    return validity;
  }
  bool upcoming = false;
  std::string reasons;
  for (uint32_t index : indices) {
    const Agreement& agreement = compiled_->agreements[index];
    if (agreement.ValidAt(now)) {
      validity.valid = true;
      validity.code.clear();
      validity.message =
          "agreement " + agreement.id + " is valid until " + agreement.valid_until_text;
      return validity;
    }
    if (!reasons.empty()) {
      reasons += "; ";
    }
    if (now < agreement.starts_at) {
      upcoming = true;
      reasons += "agreement " + agreement.id + " is not valid until " + agreement.valid_from_text;
    } else {
      reasons += "agreement " + agreement.id + " expired on " + agreement.valid_until_text;
    }
  }
  // Something that will start is the more useful thing to tell a subscriber than what has ended.
  validity.code = upcoming ? kValidityNotYetValid : kValidityExpired;
  validity.message = reasons;
  return validity;
}

const std::vector<Agreement>& PolicySet::agreements() const { return compiled_->agreements; }

const std::vector<Subscriber>& PolicySet::subscribers() const { return compiled_->subscribers; }

const std::map<std::string, std::vector<std::string>>& PolicySet::organisation_groups() const {
  return compiled_->groups;
}

size_t PolicySet::opt_out_count() const { return compiled_->opt_out.size(); }

const std::filesystem::path& PolicySet::source() const { return compiled_->source; }

const std::string& PolicySet::secret_fingerprint() const { return compiled_->secret_fingerprint; }

std::string PolicySet::Describe() const {
  const internal::Compiled& c = *compiled_;
  std::ostringstream out;
  out << "policy " << (c.source.empty() ? std::string("<string>") : c.source.string()) << ": "
      << c.subscribers.size() << " subscribers, " << c.subscriptions.size() << " subscriptions, "
      << c.agreements.size() << " agreements, " << c.groups.size() << " organisation groups, "
      << c.opt_out.size() << " opted-out NHS numbers, pseudonym secret "
      << (c.secret_fingerprint.empty() ? std::string("none") : c.secret_fingerprint) << "\n";
  for (const SubscriptionRef& sub : c.subscriptions) {
    out << "subscription " << sub.id << " subscriber=" << sub.subscriber
        << " purpose=" << PurposeName(sub.purpose) << "\n";
  }
  for (size_t i = 0; i < c.agreements.size(); ++i) {
    const Agreement& a = c.agreements[i];
    out << "agreement " << a.id << " subscriber=" << a.subscriber
        << " purpose=" << PurposeName(a.purpose) << " fields=" << FieldLevelName(a.patient_fields)
        << " valid=" << a.valid_from_text << ".." << a.valid_until_text
        << " sources=" << JoinList(a.sources)
        << " effective_sources=" << JoinList(c.compiled_agreements[i].effective_sources)
        << " event_types=" << JoinList(a.event_types) << " legal_basis=\"" << a.legal_basis
        << "\"\n";
  }
  return out.str();
}

}  // namespace carehub::policy
