// Secondary-use redaction (DESIGN §6): what of a patient may leave the hub under a pseudonymised
// agreement. Runs once per delivered event, so it works in place and allocates only the pseudonym.

#include <cctype>
#include <functional>
#include <string>
#include <string_view>

#include "carehub/policy/policy_set.h"
#include "compiled.h"

namespace carehub::policy {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string Pseudonym(const crypto_auth_hmacsha256_state& keyed, std::string_view prefix,
                      std::string_view value) {
  crypto_auth_hmacsha256_state state = keyed;
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(prefix.data()),
                                prefix.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(value.data()),
                                value.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof(state));
  std::string hex(2 * sizeof(mac), '0');
  for (size_t i = 0; i < sizeof(mac); ++i) {
    hex[2 * i] = kHexDigits[mac[i] >> 4];
    hex[2 * i + 1] = kHexDigits[mac[i] & 0x0f];
  }
  return hex;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// "1970-05-17" -> "1970-05". Anything not starting with YYYY-MM is dropped rather than passed on,
// because a malformed value may still be a full date in another format.
std::string BirthYearMonth(std::string_view birth_date) {
  if (birth_date.size() < 7 || birth_date[4] != '-') {
    return {};
  }
  for (size_t i : {0, 1, 2, 3, 5, 6}) {
    if (!IsDigit(birth_date[i])) {
      return {};
    }
  }
  if (birth_date.size() > 7 && birth_date[7] != '-') {
    return {};
  }
  return std::string(birth_date.substr(0, 7));
}

// The outward code (postcode district) of a UK postcode: "LS1 4AP" -> "LS1", "ls14ap" -> "LS1",
// "SW1A 1AA" -> "SW1A". A value that is already only an outward code is kept; anything that is not
// shaped like a postcode is dropped.
std::string PostcodeDistrict(std::string_view postcode) {
  std::string compact;
  compact.reserve(postcode.size());
  for (char c : postcode) {
    if (c == ' ' || c == '\t') {
      continue;
    }
    compact.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  auto valid_outward = [](std::string_view outward) {
    if (outward.size() < 2 || outward.size() > 4 || !IsAlpha(outward[0])) {
      return false;
    }
    if (outward == "GIR") {
      return true;
    }
    bool seen_digit = false;
    for (char c : outward) {
      if (IsDigit(c)) {
        seen_digit = true;
      } else if (!IsAlpha(c)) {
        return false;
      }
    }
    return seen_digit;
  };
  if (compact.size() >= 5 && compact.size() <= 7) {
    std::string_view inward = std::string_view(compact).substr(compact.size() - 3);
    std::string_view outward = std::string_view(compact).substr(0, compact.size() - 3);
    if (IsDigit(inward[0]) && IsAlpha(inward[1]) && IsAlpha(inward[2]) && valid_outward(outward)) {
      return std::string(outward);
    }
  }
  if (valid_outward(compact)) {
    return compact;
  }
  return {};
}

// `keyed` null: no key for this agreement, so no pseudonym at all rather than one under a wrong
// key.
//
// A patient without an NHS number (unidentified, not yet traced: issue 21) leaves *counted but
// unlinkable*: no pseudonym of any kind and the birth date cut to the year. A pseudonym of the
// local MRN would link their events, but MRNs are reissued, merged and mistyped far more often
// than NHS numbers, and some are stand-in values many patients share ("UNKNOWN", interim ED
// numbers), so such a pseudonym could join two people's records; and without an NHS number the
// national data opt-out cannot be checked, which is lawful only for data that is not about an
// identifiable person in the recipient's hands (docs/agreements.md "Patients without an NHS
// number").
void RedactPatient(const crypto_auth_hmacsha256_state* keyed, v1::Patient* patient) {
  const bool identified = !patient->nhs_number().empty();
  if (keyed != nullptr && identified) {
    patient->set_pseudonym(Pseudonym(*keyed, {}, patient->nhs_number()));
  } else {
    patient->clear_pseudonym();
  }
  patient->clear_nhs_number();
  patient->clear_local_mrn();
  patient->clear_mrn_assigning_ods();
  patient->clear_given_name();
  patient->clear_family_name();
  patient->clear_address();
  if (!patient->birth_date().empty()) {
    const std::string year_month = BirthYearMonth(patient->birth_date());
    patient->set_birth_date(identified ? year_month : year_month.substr(0, 4));
  }
  if (!patient->postcode().empty()) {
    patient->set_postcode(PostcodeDistrict(patient->postcode()));
  }
}

}  // namespace

void PolicySet::Redact(const Agreement& agreement, v1::Event* event) const {
  if (!Redacts(agreement)) {
    return;
  }
  // The agreement's position in this policy finds its compiled key. One from another PolicySet
  // (or a copy) has none: everything identifying is still stripped, it just gets no pseudonym.
  const internal::Compiled& c = *compiled_;
  const Agreement* begin = c.agreements.data();
  const Agreement* end = begin + c.agreements.size();
  const crypto_auth_hmacsha256_state* keyed = nullptr;
  if (!std::less<const Agreement*>{}(&agreement, begin) &&
      std::less<const Agreement*>{}(&agreement, end)) {
    const internal::CompiledAgreement& compiled =
        c.compiled_agreements[static_cast<size_t>(&agreement - begin)];
    if (compiled.has_key) {
      keyed = &compiled.keyed_hmac;
    }
  }
  if (event->envelope().has_patient()) {
    RedactPatient(keyed, event->mutable_envelope()->mutable_patient());
  }
  // The raw values adapters kept (a foreign postcode, a practice name) are patient data too; the
  // field and problem stay so secondary use can still measure data quality.
  for (v1::DataQualityFlag& flag : *event->mutable_envelope()->mutable_data_quality()) {
    flag.clear_raw_value();
  }
  if (event->has_activity()) {
    v1::ActivityEvent* activity = event->mutable_activity();
    activity->clear_note();
    if (activity->has_merged_patient()) {
      RedactPatient(keyed, activity->mutable_merged_patient());
    }
  }
  if (event->has_referral()) {
    event->mutable_referral()->clear_note();
  }
}

}  // namespace carehub::policy
