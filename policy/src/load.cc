// Loads and strictly validates the agreements YAML (docs/agreements.md), then compiles it into the
// indices the hot path uses. yaml-cpp exceptions stop here and become Status values.

#include "carehub/policy/load.h"

#include <sodium.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "carehub/core/event_types.h"
#include "carehub/core/strings.h"
#include "carehub/core/validation.h"
#include "compiled.h"

namespace carehub::policy {
namespace {

namespace fs = std::filesystem;
using std::chrono::sys_days;

constexpr size_t kMinSecretBytes = 32;
constexpr std::string_view kPseudonymKeyContext = "carehub-pseudonym-v1:";

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

bool IsValidId(std::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), IsIdChar);
}

// YAML scalars and lines of the opt-out list: a stray CR from a Windows editor is dropped too.
std::string TrimLine(std::string_view s) { return std::string(Trim(s, kSpaceTabCrLf)); }

bool ParseDigits(std::string_view s, size_t pos, size_t count, int* out) {
  if (pos + count > s.size()) {
    return false;
  }
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    value = value * 10 + (s[i] - '0');
  }
  *out = value;
  return true;
}

// A validity bound: "2026-01-01" (a UTC day) or RFC 3339 "2026-01-01T09:30:00Z" / "+01:00".
// Years are limited to what Clock::TimePoint (nanoseconds since 1970 in 64 bits, 1677-2262) holds
// with room for the day added to a date-only valid_until: "9999-12-31" used to overflow (undefined
// behaviour; in practice an agreement that was never valid), found by fuzz_agreements_yaml.
constexpr int kMinAgreementYear = 1900;
constexpr int kMaxAgreementYear = 2200;

struct Instant {
  Clock::TimePoint at;
  bool date_only = false;
};

bool ParseInstant(std::string_view text, Instant* out) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (text.size() < 10 || !ParseDigits(text, 0, 4, &year) || text[4] != '-' ||
      !ParseDigits(text, 5, 2, &month) || text[7] != '-' || !ParseDigits(text, 8, 2, &day) ||
      year < kMinAgreementYear || year > kMaxAgreementYear) {
    return false;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) {
    return false;
  }
  const Clock::TimePoint midnight = sys_days{ymd};
  if (text.size() == 10) {
    *out = {midnight, true};
    return true;
  }
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (text.size() < 20 || (text[10] != 'T' && text[10] != 't') ||
      !ParseDigits(text, 11, 2, &hour) || text[13] != ':' || !ParseDigits(text, 14, 2, &minute) ||
      text[16] != ':' || !ParseDigits(text, 17, 2, &second) || hour > 23 || minute > 59 ||
      second > 60) {
    return false;
  }
  size_t pos = 19;
  std::chrono::nanoseconds fraction{0};
  if (text[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    const size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += std::chrono::nanoseconds((text[pos] - '0') * scale);
      scale /= 10;
      ++pos;
    }
    if (pos == digits_start) {
      return false;
    }
  }
  std::chrono::minutes offset{0};
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z') && pos + 1 == text.size()) {
    // UTC
  } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-') &&
             text[pos + 3] == ':') {
    int offset_hours = 0;
    int offset_minutes = 0;
    if (!ParseDigits(text, pos + 1, 2, &offset_hours) ||
        !ParseDigits(text, pos + 4, 2, &offset_minutes) || offset_hours > 23 ||
        offset_minutes > 59) {
      return false;
    }
    offset = std::chrono::minutes(offset_hours * 60 + offset_minutes);
    if (text[pos] == '-') {
      offset = -offset;
    }
  } else {
    return false;
  }
  const auto local = midnight + std::chrono::hours(hour) + std::chrono::minutes(minute) +
                     std::chrono::seconds(second) +
                     std::chrono::duration_cast<Clock::TimePoint::duration>(fraction);
  *out = {local - offset, false};
  return true;
}

class Loader {
 public:
  Loader(std::string label, fs::path base_dir)
      : label_(std::move(label)), base_dir_(std::move(base_dir)) {}

  Result<std::shared_ptr<const PolicySet>> Load(std::string_view text) {
    compiled_ = std::make_unique<internal::Compiled>();
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      return Status::Error(
          std::string(kErrorInvalidPolicy),
          label_ + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
    }
    try {
      Status status = LoadRoot(root);
      if (!status.ok()) {
        return status;
      }
    } catch (const YAML::Exception& e) {
      // Node access on malformed input; the shape checks should catch everything before this.
      return Status::Error(std::string(kErrorInvalidPolicy),
                           label_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    return std::shared_ptr<const PolicySet>(std::make_shared<PolicySet>(std::move(compiled_)));
  }

  void set_source(fs::path source) { source_ = std::move(source); }

 private:
  Status Error(const YAML::Node& at, const std::string& message) const {
    const int line = at.IsDefined() ? at.Mark().line : -1;
    return Status::Error(
        std::string(kErrorInvalidPolicy),
        label_ + (line >= 0 ? ":" + std::to_string(line + 1) : "") + ": " + message);
  }

  // Every key must be a known, unrepeated scalar: a misspelt key is an error, never ignored.
  Status CheckKeys(const YAML::Node& map, const std::string& where,
                   std::initializer_list<std::string_view> allowed) const {
    if (!map.IsMap()) {
      return Error(map, where + " must be a mapping");
    }
    std::set<std::string> seen;
    for (const auto& entry : map) {
      if (!entry.first.IsScalar()) {
        return Error(entry.first, where + ": keys must be plain names");
      }
      const std::string& key = entry.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string names;
        for (std::string_view name : allowed) {
          names += (names.empty() ? "" : ", ") + std::string(name);
        }
        return Error(entry.first,
                     where + ": unknown key " + Quote(key) + " (allowed: " + names + ")");
      }
      if (!seen.insert(key).second) {
        return Error(entry.first, where + ": duplicate key " + Quote(key));
      }
    }
    return Status::Ok();
  }

  // A required non-empty scalar.
  Status GetString(const YAML::Node& map, const char* key, const std::string& where,
                   std::string* out) const {
    const YAML::Node value = map[key];
    if (!value.IsDefined() || value.IsNull()) {
      return Error(map, where + ": missing " + Quote(key));
    }
    if (!value.IsScalar()) {
      return Error(value, where + ": " + Quote(key) + " must be a single value");
    }
    *out = TrimLine(value.Scalar());
    if (out->empty()) {
      return Error(value, where + ": " + Quote(key) + " is empty");
    }
    return Status::Ok();
  }

  // A required non-empty sequence of non-empty scalars.
  Status GetList(const YAML::Node& map, const char* key, const std::string& where,
                 std::vector<std::string>* out) const {
    const YAML::Node value = map[key];
    if (!value.IsDefined() || value.IsNull()) {
      return Error(map, where + ": missing " + Quote(key));
    }
    if (!value.IsSequence() || value.size() == 0) {
      return Error(value, where + ": " + Quote(key) + " must be a non-empty list");
    }
    for (const auto& item : value) {
      if (!item.IsScalar() || TrimLine(item.Scalar()).empty()) {
        return Error(item, where + ": " + Quote(key) + " entries must be non-empty names");
      }
      out->push_back(TrimLine(item.Scalar()));
    }
    return Status::Ok();
  }

  Status LoadRoot(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) {
      return Error(root, "empty policy");
    }
    Status status = CheckKeys(
        root, "policy",
        {"organisation_groups", "subscribers", "agreements", "pseudonymisation", "opt_out"});
    if (!status.ok()) {
      return status;
    }
    compiled_->source = source_;
    if (status = LoadGroups(root["organisation_groups"]); !status.ok()) {
      return status;
    }
    if (status = LoadSubscribers(root); !status.ok()) {
      return status;
    }
    if (status = LoadAgreements(root); !status.ok()) {
      return status;
    }
    if (status = LoadSecret(root); !status.ok()) {
      return status;
    }
    if (status = LoadOptOut(root); !status.ok()) {
      return status;
    }
    Compile();
    return Status::Ok();
  }

  Status LoadGroups(const YAML::Node& groups) {
    if (!groups.IsDefined() || groups.IsNull()) {
      return Status::Ok();
    }
    if (!groups.IsMap()) {
      return Error(groups, "organisation_groups must be a mapping of group name to ODS codes");
    }
    for (const auto& entry : groups) {
      if (!entry.first.IsScalar() || !IsValidId(entry.first.Scalar())) {
        return Error(entry.first, "organisation_groups: bad group name (letters, digits, - _ .)");
      }
      const std::string name = entry.first.Scalar();
      const std::string where = "organisation group " + Quote(name);
      if (compiled_->groups.count(name) != 0) {
        return Error(entry.first, where + ": duplicate group");
      }
      if (!entry.second.IsSequence() || entry.second.size() == 0) {
        return Error(entry.second, where + ": must be a non-empty list of ODS codes");
      }
      std::vector<std::string> members;
      for (const auto& item : entry.second) {
        const std::string code = item.IsScalar() ? TrimLine(item.Scalar()) : std::string();
        if (!IsValidOdsCode(code)) {
          return Error(item, where + ": " + Quote(code) + " is not an ODS code");
        }
        members.push_back(code);
      }
      compiled_->groups.emplace(name, std::move(members));
    }
    return Status::Ok();
  }

  Status LoadSubscribers(const YAML::Node& root) {
    const YAML::Node subscribers = root["subscribers"];
    if (!subscribers.IsDefined() || subscribers.IsNull()) {
      return Error(root, "missing 'subscribers'");
    }
    if (!subscribers.IsSequence()) {
      return Error(subscribers, "'subscribers' must be a list");
    }
    std::set<std::string> subscriber_ids;
    std::set<std::string> subscription_ids;
    for (const auto& node : subscribers) {
      Status status = CheckKeys(node, "subscriber", {"id", "name", "subscriptions"});
      if (!status.ok()) {
        return status;
      }
      Subscriber subscriber;
      if (status = GetString(node, "id", "subscriber", &subscriber.id); !status.ok()) {
        return status;
      }
      const std::string where = "subscriber " + Quote(subscriber.id);
      if (!IsValidId(subscriber.id)) {
        return Error(node["id"], where + ": id must be letters, digits, - _ .");
      }
      if (!subscriber_ids.insert(subscriber.id).second) {
        return Error(node["id"], where + ": duplicate subscriber id");
      }
      if (node["name"].IsDefined()) {
        if (status = GetString(node, "name", where, &subscriber.name); !status.ok()) {
          return status;
        }
      }
      const YAML::Node subscriptions = node["subscriptions"];
      if (!subscriptions.IsDefined() || !subscriptions.IsSequence() || subscriptions.size() == 0) {
        return Error(subscriptions.IsDefined() ? subscriptions : node,
                     where + ": 'subscriptions' must be a non-empty list");
      }
      for (const auto& sub_node : subscriptions) {
        const std::string sub_where = where + " subscription";
        if (status = CheckKeys(sub_node, sub_where, {"id", "purpose"}); !status.ok()) {
          return status;
        }
        SubscriptionRef sub;
        sub.subscriber = subscriber.id;
        if (status = GetString(sub_node, "id", sub_where, &sub.id); !status.ok()) {
          return status;
        }
        const std::string full_where = where + " subscription " + Quote(sub.id);
        if (!IsValidId(sub.id)) {
          return Error(sub_node["id"], full_where + ": id must be letters, digits, - _ .");
        }
        if (!subscription_ids.insert(sub.id).second) {
          return Error(sub_node["id"], full_where + ": duplicate subscription id");
        }
        std::string purpose;
        if (status = GetString(sub_node, "purpose", full_where, &purpose); !status.ok()) {
          return status;
        }
        if (!ParsePurpose(purpose, &sub.purpose)) {
          return Error(sub_node["purpose"], full_where + ": purpose " + Quote(purpose) +
                                                " must be direct_care or secondary_use");
        }
        subscriber.subscriptions.push_back(sub.id);
        compiled_->subscriptions.push_back(std::move(sub));
      }
      compiled_->subscribers.push_back(std::move(subscriber));
    }
    return Status::Ok();
  }

  Status CheckSource(const YAML::Node& at, const std::string& where,
                     const std::string& source) const {
    if (source == "*") {
      return Status::Ok();
    }
    if (source.rfind("group:", 0) == 0) {
      const std::string group = source.substr(6);
      if (compiled_->groups.count(group) == 0) {
        return Error(at, where + ": sources: unknown organisation group " + Quote(group));
      }
      return Status::Ok();
    }
    if (!IsValidOdsCode(source)) {
      return Error(at, where + ": sources: " + Quote(source) +
                           " is not an ODS code, \"group:<name>\" or \"*\"");
    }
    return Status::Ok();
  }

  // "*", "activity.*", "referral.*" or an exact type name this build knows.
  static bool IsValidTypePattern(const std::string& pattern) {
    if (pattern == "*" || pattern == "activity.*" || pattern == "referral.*") {
      return true;
    }
    if (pattern.rfind("activity.", 0) == 0) {
      v1::ActivityKind kind;
      const std::string name = pattern.substr(9);
      return ParseActivityKind(name, &kind) && kind != v1::ACTIVITY_KIND_UNSPECIFIED &&
             ActivityKindName(kind) == name;
    }
    if (pattern.rfind("referral.", 0) == 0) {
      v1::ReferralStatus status;
      const std::string name = pattern.substr(9);
      return ParseReferralStatus(name, &status) && status != v1::REFERRAL_STATUS_UNSPECIFIED &&
             ReferralStatusName(status) == name;
    }
    return false;
  }

  Status LoadAgreements(const YAML::Node& root) {
    const YAML::Node agreements = root["agreements"];
    if (!agreements.IsDefined() || agreements.IsNull()) {
      return Error(root, "missing 'agreements'");
    }
    if (!agreements.IsSequence()) {
      return Error(agreements, "'agreements' must be a list");
    }
    std::set<std::string> ids;
    for (const auto& node : agreements) {
      Status status =
          CheckKeys(node, "agreement",
                    {"id", "subscriber", "purpose", "legal_basis", "description", "valid_from",
                     "valid_until", "sources", "event_types", "patient_fields"});
      if (!status.ok()) {
        return status;
      }
      Agreement a;
      if (status = GetString(node, "id", "agreement", &a.id); !status.ok()) {
        return status;
      }
      const std::string where = "agreement " + Quote(a.id);
      if (!IsValidId(a.id)) {
        return Error(node["id"], where + ": id must be letters, digits, - _ .");
      }
      if (!ids.insert(a.id).second) {
        return Error(node["id"], where + ": duplicate agreement id");
      }
      if (status = GetString(node, "subscriber", where, &a.subscriber); !status.ok()) {
        return status;
      }
      const bool known_subscriber =
          std::any_of(compiled_->subscribers.begin(), compiled_->subscribers.end(),
                      [&](const Subscriber& s) { return s.id == a.subscriber; });
      if (!known_subscriber) {
        return Error(node["subscriber"],
                     where + ": subscriber: unknown subscriber " + Quote(a.subscriber));
      }
      std::string text;
      if (status = GetString(node, "purpose", where, &text); !status.ok()) {
        return status;
      }
      if (!ParsePurpose(text, &a.purpose)) {
        return Error(node["purpose"],
                     where + ": purpose: " + Quote(text) + " must be direct_care or secondary_use");
      }
      const bool has_subscription =
          std::any_of(compiled_->subscriptions.begin(), compiled_->subscriptions.end(),
                      [&](const SubscriptionRef& s) {
                        return s.subscriber == a.subscriber && s.purpose == a.purpose;
                      });
      if (!has_subscription) {
        return Error(node["purpose"], where + ": purpose: subscriber " + Quote(a.subscriber) +
                                          " has no " + text + " subscription to use it");
      }
      if (status = GetString(node, "legal_basis", where, &a.legal_basis); !status.ok()) {
        return status;
      }
      if (node["description"].IsDefined()) {
        if (status = GetString(node, "description", where, &a.description); !status.ok()) {
          return status;
        }
      }
      Instant from;
      Instant until;
      if (status = GetString(node, "valid_from", where, &a.valid_from_text); !status.ok()) {
        return status;
      }
      if (!ParseInstant(a.valid_from_text, &from)) {
        return Error(node["valid_from"],
                     where + ": valid_from: " + Quote(a.valid_from_text) +
                         " is not a date (YYYY-MM-DD) or RFC 3339 time in years 1900-2200");
      }
      if (status = GetString(node, "valid_until", where, &a.valid_until_text); !status.ok()) {
        return status;
      }
      if (!ParseInstant(a.valid_until_text, &until)) {
        return Error(node["valid_until"], where + ": valid_until: " + Quote(a.valid_until_text) +
                                              " is not a date (YYYY-MM-DD) or RFC 3339 time in "
                                              "years 1900-2200");
      }
      a.starts_at = from.at;
      // A date names a whole day; an instant is the last valid moment.
      a.ends_at = until.date_only ? until.at + std::chrono::hours(24)
                                  : until.at + Clock::TimePoint::duration(1);
      if (until.at < from.at) {
        return Error(node["valid_until"], where + ": valid_until " + a.valid_until_text +
                                              " is before valid_from " + a.valid_from_text);
      }
      if (status = GetList(node, "sources", where, &a.sources); !status.ok()) {
        return status;
      }
      for (size_t i = 0; i < a.sources.size(); ++i) {
        if (status = CheckSource(node["sources"][i], where, a.sources[i]); !status.ok()) {
          return status;
        }
      }
      if (status = GetList(node, "event_types", where, &a.event_types); !status.ok()) {
        return status;
      }
      for (size_t i = 0; i < a.event_types.size(); ++i) {
        if (!IsValidTypePattern(a.event_types[i])) {
          return Error(node["event_types"][i],
                       where + ": event_types: " + Quote(a.event_types[i]) +
                           " is not \"*\", \"activity.*\", \"referral.*\" or a known type name");
        }
      }
      if (status = GetString(node, "patient_fields", where, &text); !status.ok()) {
        return status;
      }
      if (!ParseFieldLevel(text, &a.patient_fields)) {
        return Error(node["patient_fields"], where + ": patient_fields: " + Quote(text) +
                                                 " must be identifiable or pseudonymised");
      }
      if (a.purpose == Purpose::kSecondaryUse && a.patient_fields != FieldLevel::kPseudonymised) {
        return Error(node["patient_fields"],
                     where + ": patient_fields: secondary_use must be pseudonymised");
      }
      compiled_->agreements.push_back(std::move(a));
    }
    return Status::Ok();
  }

  Result<std::string> ReadFile(const YAML::Node& at, const std::string& where,
                               const fs::path& path) const {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      const int err = errno;
      return Status::Error(std::string(kErrorPolicyUnreadable),
                           label_ + ":" + std::to_string(at.Mark().line + 1) + ": " + where +
                               ": cannot read " + path.string() + ": " + std::strerror(err));
    }
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) {
      return Status::Error(std::string(kErrorPolicyUnreadable),
                           label_ + ": " + where + ": error reading " + path.string());
    }
    return content.str();
  }

  // A file named by an optional top-level section with one key (`opt_out: {file: F}`), read whole.
  struct SectionFile {
    YAML::Node node;  // the section's `key` node, for error locations
    fs::path path;
    std::string content;
  };

  // The file `section`.`key` names, or nullopt when the section is absent or null; that is the
  // error `missing` when the loaded agreements `need` it. `what` names the file in errors.
  Result<std::optional<SectionFile>> ReadSectionFile(const YAML::Node& root, const char* section,
                                                     const char* key, const std::string& what,
                                                     bool need, const char* missing) const {
    const YAML::Node node = root[section];
    if (!node.IsDefined() || node.IsNull()) {
      if (need) {
        return Error(root, missing);
      }
      return std::optional<SectionFile>();
    }
    CAREHUB_RETURN_IF_ERROR(CheckKeys(node, section, {key}));
    std::string name;
    CAREHUB_RETURN_IF_ERROR(GetString(node, key, section, &name));
    SectionFile file{node[key], Resolve(name), {}};
    auto content = ReadFile(file.node, what, file.path);
    if (!content.ok()) {
      return content.status();
    }
    file.content = std::move(content).value();
    return std::optional<SectionFile>(std::move(file));
  }

  fs::path Resolve(const std::string& name) const {
    const fs::path path(name);
    return path.is_absolute() ? path : base_dir_ / path;
  }

  bool NeedsSecret() const {
    return std::any_of(
        compiled_->agreements.begin(), compiled_->agreements.end(),
        [](const Agreement& a) { return a.patient_fields == FieldLevel::kPseudonymised; });
  }

  bool NeedsOptOut() const {
    return std::any_of(compiled_->agreements.begin(), compiled_->agreements.end(),
                       [](const Agreement& a) { return a.purpose == Purpose::kSecondaryUse; });
  }

  Status LoadSecret(const YAML::Node& root) {
    auto file = ReadSectionFile(root, "pseudonymisation", "secret_file",
                                "pseudonymisation secret_file", NeedsSecret(),
                                "pseudonymisation: missing, but pseudonymised agreements need a "
                                "secret_file");
    if (!file.ok() || !file->has_value()) {
      return file.status();
    }
    const fs::path& path = (*file)->path;
    // Hex digits, possibly wrapped over lines, with '#' comment lines allowed.
    std::string hex;
    std::istringstream lines((*file)->content);
    for (std::string line; std::getline(lines, line);) {
      line = TrimLine(line);
      if (line.empty() || line[0] == '#') {
        continue;
      }
      hex += line;
    }
    std::vector<unsigned char> secret(hex.size() / 2 + 1);
    size_t secret_len = 0;
    const char* hex_end = nullptr;
    const bool parsed = sodium_hex2bin(secret.data(), secret.size(), hex.data(), hex.size(),
                                       nullptr, &secret_len, &hex_end) == 0 &&
                        hex_end == hex.data() + hex.size();
    sodium_memzero(hex.data(), hex.size());
    if (!parsed || secret_len < kMinSecretBytes) {
      sodium_memzero(secret.data(), secret.size());
      return Error((*file)->node, "pseudonymisation: secret_file " + path.string() +
                                      " must hold at least " + std::to_string(kMinSecretBytes) +
                                      " bytes as hex");
    }
    compiled_agreements_.resize(compiled_->agreements.size());
    for (size_t i = 0; i < compiled_->agreements.size(); ++i) {
      const std::string context = std::string(kPseudonymKeyContext) + compiled_->agreements[i].id;
      unsigned char key[crypto_auth_hmacsha256_BYTES];
      crypto_auth_hmacsha256_state state;
      crypto_auth_hmacsha256_init(&state, secret.data(), secret_len);
      crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(context.data()),
                                    context.size());
      crypto_auth_hmacsha256_final(&state, key);
      compiled_agreements_[i].has_key = true;
      crypto_auth_hmacsha256_init(&compiled_agreements_[i].keyed_hmac, key, sizeof(key));
      sodium_memzero(key, sizeof(key));
      sodium_memzero(&state, sizeof(state));
    }
    unsigned char fingerprint[8];
    static constexpr char kFingerprintContext[] = "carehub-secret-fingerprint";
    crypto_generichash(fingerprint, sizeof(fingerprint), secret.data(), secret_len,
                       reinterpret_cast<const unsigned char*>(kFingerprintContext),
                       sizeof(kFingerprintContext) - 1);
    char fingerprint_hex[2 * sizeof(fingerprint) + 1];
    sodium_bin2hex(fingerprint_hex, sizeof(fingerprint_hex), fingerprint, sizeof(fingerprint));
    compiled_->secret_fingerprint = fingerprint_hex;
    sodium_memzero(secret.data(), secret.size());
    return Status::Ok();
  }

  Status LoadOptOut(const YAML::Node& root) {
    auto file = ReadSectionFile(root, "opt_out", "file", "opt_out file", NeedsOptOut(),
                                "opt_out: missing, but secondary_use agreements must apply the "
                                "national data opt-out");
    if (!file.ok() || !file->has_value()) {
      return file.status();
    }
    const fs::path& path = (*file)->path;
    std::istringstream lines((*file)->content);
    int line_number = 0;
    for (std::string line; std::getline(lines, line);) {
      ++line_number;
      const auto hash = line.find('#');
      const std::string value = TrimLine(std::string_view(line).substr(0, hash));
      if (value.empty()) {
        continue;
      }
      uint64_t key = 0;
      if (!IsValidNhsNumber(value) || !internal::NhsKey(value, &key)) {
        // The number itself is not echoed: it may be a real, mistyped NHS number.
        return Status::Error(std::string(kErrorInvalidPolicy),
                             path.string() + ":" + std::to_string(line_number) +
                                 ": not a valid NHS number (10 digits with a Modulus 11 check "
                                 "digit)");
      }
      compiled_->opt_out.insert(key);
    }
    return Status::Ok();
  }

  // Builds the indices: sorted ids, subscription -> agreements, ODS ids and bitsets, type masks.
  void Compile() {
    internal::Compiled& c = *compiled_;
    // Sort agreements by id (lowest id wins a tie) and keep keys alongside.
    std::vector<size_t> order(c.agreements.size());
    for (size_t i = 0; i < order.size(); ++i) {
      order[i] = i;
    }
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return c.agreements[x].id < c.agreements[y].id; });
    std::vector<Agreement> agreements;
    c.compiled_agreements.resize(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      agreements.push_back(std::move(c.agreements[order[i]]));
      c.compiled_agreements[i] = compiled_agreements_.empty() ? internal::CompiledAgreement{}
                                                              : compiled_agreements_[order[i]];
    }
    c.agreements = std::move(agreements);
    for (auto& pending : compiled_agreements_) {
      sodium_memzero(&pending.keyed_hmac, sizeof(pending.keyed_hmac));
    }

    std::sort(c.subscribers.begin(), c.subscribers.end(),
              [](const Subscriber& x, const Subscriber& y) { return x.id < y.id; });
    for (uint32_t i = 0; i < c.subscribers.size(); ++i) {
      c.subscriber_index.emplace(c.subscribers[i].id, i);
    }
    std::sort(c.subscriptions.begin(), c.subscriptions.end(),
              [](const SubscriptionRef& x, const SubscriptionRef& y) { return x.id < y.id; });
    c.subscription_agreements.resize(c.subscriptions.size());
    c.subscription_view.resize(c.subscriptions.size());
    std::map<std::pair<std::string, Purpose>, uint32_t> views;
    for (uint32_t i = 0; i < c.subscriptions.size(); ++i) {
      SubscriptionRef& sub = c.subscriptions[i];
      sub.index = i;
      c.subscription_index.emplace(sub.id, i);
      c.subscription_view[i] = views.try_emplace({sub.subscriber, sub.purpose}, i).first->second;
      for (uint32_t a = 0; a < c.agreements.size(); ++a) {
        if (c.agreements[a].subscriber == sub.subscriber &&
            c.agreements[a].purpose == sub.purpose) {
          c.subscription_agreements[i].push_back(a);
        }
      }
    }

    for (size_t i = 0; i < c.agreements.size(); ++i) {
      const Agreement& a = c.agreements[i];
      internal::CompiledAgreement& ca = c.compiled_agreements[i];
      std::set<std::string> effective;
      for (const std::string& source : a.sources) {
        if (source == "*") {
          ca.all_sources = true;
        } else if (source.rfind("group:", 0) == 0) {
          const auto& members = c.groups.at(source.substr(6));
          effective.insert(members.begin(), members.end());
        } else {
          effective.insert(source);
        }
      }
      if (ca.all_sources) {
        ca.effective_sources = {"*"};
      } else {
        ca.effective_sources.assign(effective.begin(), effective.end());
      }
      for (const std::string& code : effective) {
        const auto [it, inserted] =
            c.ods_index.emplace(code, static_cast<uint32_t>(c.ods_index.size()));
        const uint32_t id = it->second;
        if (ca.ods_bits.size() <= id / 64) {
          ca.ods_bits.resize(id / 64 + 1, 0);
        }
        ca.ods_bits[id / 64] |= uint64_t{1} << (id % 64);
      }
      for (const std::string& pattern : a.event_types) {
        ca.type_mask |= internal::TypeMaskFor(pattern);
      }
    }
    for (int slot = 0; slot < internal::kTypeSlots; ++slot) {
      c.type_index.emplace(internal::TypeSlotName(slot), static_cast<uint32_t>(slot));
    }
  }

  std::string label_;
  fs::path base_dir_;
  fs::path source_;
  std::unique_ptr<internal::Compiled> compiled_;
  // Keys derived before Compile() sorts the agreements; parallel to the unsorted order.
  std::vector<internal::CompiledAgreement> compiled_agreements_;
};

}  // namespace

Result<std::shared_ptr<const PolicySet>> LoadPolicy(const std::filesystem::path& yaml) {
  if (sodium_init() < 0) {
    return Status::Error(std::string(kErrorPolicyUnreadable), "libsodium failed to initialise");
  }
  std::ifstream in(yaml, std::ios::binary);
  if (!in) {
    const int err = errno;
    return Status::Error(std::string(kErrorPolicyUnreadable),
                         "cannot read " + yaml.string() + ": " + std::strerror(err));
  }
  std::ostringstream text;
  text << in.rdbuf();
  const fs::path base = yaml.has_parent_path() ? yaml.parent_path() : fs::path(".");
  Loader loader(yaml.string(), base);
  loader.set_source(yaml);
  return loader.Load(text.str());
}

Result<std::shared_ptr<const PolicySet>> LoadPolicyFromString(std::string_view yaml_text,
                                                              const fs::path& base_dir) {
  if (sodium_init() < 0) {
    return Status::Error(std::string(kErrorPolicyUnreadable), "libsodium failed to initialise");
  }
  Loader loader("<string>", base_dir);
  return loader.Load(yaml_text);
}

}  // namespace carehub::policy
