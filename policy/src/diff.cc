#include "carehub/policy/diff.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "compiled.h"

namespace carehub::policy {
namespace {

std::string JoinList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i > 0 ? ", " : "") + items[i];
  }
  return out + "]";
}

void Compare(std::string* detail, const char* field, const std::string& before,
             const std::string& after) {
  if (before == after) {
    return;
  }
  if (!detail->empty()) {
    *detail += "; ";
  }
  *detail += std::string(field) + " " + before + " -> " + after;
}

template <typename T, typename Describe>
void DiffById(const std::map<std::string, const T*>& before,
              const std::map<std::string, const T*>& after, const char* what, Describe changes,
              std::vector<PolicyChange>* out) {
  for (const auto& [id, item] : before) {
    auto it = after.find(id);
    if (it == after.end()) {
      out->push_back({PolicyChange::Kind::kRemoved, what, id, {}});
      continue;
    }
    std::string detail = changes(*item, *it->second);
    if (!detail.empty()) {
      out->push_back({PolicyChange::Kind::kChanged, what, id, std::move(detail)});
    }
  }
  for (const auto& [id, item] : after) {
    if (before.count(id) == 0) {
      out->push_back({PolicyChange::Kind::kAdded, what, id, {}});
    }
  }
}

}  // namespace

std::string PolicyChange::ToString() const {
  const char* verb = kind == Kind::kAdded     ? "added"
                     : kind == Kind::kRemoved ? "removed"
                                              : "changed";
  std::string line = std::string(verb) + " " + what + " " + id;
  if (!detail.empty()) {
    line += ": " + detail;
  }
  return line;
}

// Long on purpose: one comparison block per kind of change an auditor reads (agreements added,
// removed, narrowed or widened; subscriptions; opt-outs), in the order the audit detail lists them.
std::vector<PolicyChange> DiffPolicies(const PolicySet& before, const PolicySet& after) {
  std::vector<PolicyChange> changes;
  const internal::Compiled& b = before.compiled();
  const internal::Compiled& a = after.compiled();
  const bool secret_changed = b.secret_fingerprint != a.secret_fingerprint;

  // Agreements, compared with their effective (group-expanded) sources.
  std::map<std::string, const Agreement*> before_agreements;
  std::map<std::string, const Agreement*> after_agreements;
  std::map<const Agreement*, const internal::CompiledAgreement*> compiled_of;
  for (size_t i = 0; i < b.agreements.size(); ++i) {
    before_agreements[b.agreements[i].id] = &b.agreements[i];
    compiled_of[&b.agreements[i]] = &b.compiled_agreements[i];
  }
  for (size_t i = 0; i < a.agreements.size(); ++i) {
    after_agreements[a.agreements[i].id] = &a.agreements[i];
    compiled_of[&a.agreements[i]] = &a.compiled_agreements[i];
  }
  DiffById<Agreement>(
      before_agreements, after_agreements, "agreement",
      [&](const Agreement& x, const Agreement& y) {
        std::string detail;
        Compare(&detail, "subscriber", x.subscriber, y.subscriber);
        Compare(&detail, "purpose", std::string(PurposeName(x.purpose)),
                std::string(PurposeName(y.purpose)));
        Compare(&detail, "legal_basis", "\"" + x.legal_basis + "\"", "\"" + y.legal_basis + "\"");
        Compare(&detail, "valid_from", x.valid_from_text, y.valid_from_text);
        Compare(&detail, "valid_until", x.valid_until_text, y.valid_until_text);
        Compare(&detail, "sources", JoinList(x.sources), JoinList(y.sources));
        Compare(&detail, "effective_sources", JoinList(compiled_of[&x]->effective_sources),
                JoinList(compiled_of[&y]->effective_sources));
        Compare(&detail, "event_types", JoinList(x.event_types), JoinList(y.event_types));
        Compare(&detail, "patient_fields", std::string(FieldLevelName(x.patient_fields)),
                std::string(FieldLevelName(y.patient_fields)));
        if (secret_changed && y.patient_fields == FieldLevel::kPseudonymised) {
          detail += std::string(detail.empty() ? "" : "; ") + "pseudonym key changed";
        }
        return detail;
      },
      &changes);

  std::map<std::string, const SubscriptionRef*> before_subs;
  std::map<std::string, const SubscriptionRef*> after_subs;
  for (const SubscriptionRef& s : b.subscriptions) {
    before_subs[s.id] = &s;
  }
  for (const SubscriptionRef& s : a.subscriptions) {
    after_subs[s.id] = &s;
  }
  DiffById<SubscriptionRef>(
      before_subs, after_subs, "subscription",
      [](const SubscriptionRef& x, const SubscriptionRef& y) {
        std::string detail;
        Compare(&detail, "subscriber", x.subscriber, y.subscriber);
        Compare(&detail, "purpose", std::string(PurposeName(x.purpose)),
                std::string(PurposeName(y.purpose)));
        return detail;
      },
      &changes);

  std::map<std::string, const std::vector<std::string>*> before_groups;
  std::map<std::string, const std::vector<std::string>*> after_groups;
  for (const auto& [name, members] : b.groups) {
    before_groups[name] = &members;
  }
  for (const auto& [name, members] : a.groups) {
    after_groups[name] = &members;
  }
  DiffById<std::vector<std::string>>(
      before_groups, after_groups, "organisation_group",
      [](const std::vector<std::string>& x, const std::vector<std::string>& y) {
        std::string detail;
        Compare(&detail, "members", JoinList(x), JoinList(y));
        return detail;
      },
      &changes);

  if (b.opt_out != a.opt_out) {
    size_t added = 0;
    size_t removed = 0;
    for (uint64_t key : a.opt_out) {
      added += b.opt_out.count(key) == 0 ? 1 : 0;
    }
    for (uint64_t key : b.opt_out) {
      removed += a.opt_out.count(key) == 0 ? 1 : 0;
    }
    changes.push_back({PolicyChange::Kind::kChanged, "opt_out", "national_data_opt_out",
                       std::to_string(b.opt_out.size()) + " -> " +
                           std::to_string(a.opt_out.size()) + " NHS numbers (+" +
                           std::to_string(added) + " -" + std::to_string(removed) + ")"});
  }
  if (secret_changed) {
    changes.push_back({PolicyChange::Kind::kChanged, "pseudonym_secret", "secret_file",
                       "fingerprint " +
                           (b.secret_fingerprint.empty() ? "none" : b.secret_fingerprint) + " -> " +
                           (a.secret_fingerprint.empty() ? "none" : a.secret_fingerprint) +
                           "; every pseudonym changes"});
  }
  return changes;
}

}  // namespace carehub::policy
