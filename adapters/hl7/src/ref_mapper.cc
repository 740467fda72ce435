#include "carehub/adapters/hl7/ref_mapper.h"

#include <algorithm>

#include "carehub/adapters/data_quality.h"
#include "carehub/core/strings.h"
#include "carehub/core/validation.h"
#include "segment_readers.h"

namespace carehub::adapters::hl7 {
namespace {

using internal::Fail;
using internal::Val;

v1::ReferralStatus StatusFromRf1(std::string_view rf1_status) {
  // HL7 table 0283 (referral status).
  if (rf1_status == "A") {
    return v1::REFERRAL_STATUS_ACCEPTED;
  }
  if (rf1_status == "R") {
    return v1::REFERRAL_STATUS_REJECTED;
  }
  if (rf1_status == "E") {
    return v1::REFERRAL_STATUS_CANCELLED;  // expired: the referral no longer stands
  }
  return v1::REFERRAL_STATUS_SENT;
}

// HL7 table 0280 (S STAT, A ASAP, R routine) and the NHS two-week-wait cancer pathway.
v1::ReferralPriority Priority(std::string_view code) {
  if (code == "S" || code == "A" || code == "U") {
    return v1::REFERRAL_PRIORITY_URGENT;
  }
  if (code == "R") {
    return v1::REFERRAL_PRIORITY_ROUTINE;
  }
  if (code == "2WW" || code == "TWW") {
    return v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT;
  }
  return v1::REFERRAL_PRIORITY_UNSPECIFIED;
}

// The ODS code of the first PRD whose role (PRD-1) is one of `roles`: PRD-7.1 (provider
// identifier), else PRD-3.1 (address line, where some UK feeds put the organisation code).
// `raw` receives what was there when it is not an ODS code.
std::string ProviderOds(const Message& msg, std::initializer_list<std::string_view> roles,
                        std::string* raw) {
  for (const Segment& prd : msg.FindAll("PRD")) {
    const std::string role = AsciiUpper(Val(prd, 1));
    if (std::find(roles.begin(), roles.end(), role) == roles.end()) {
      continue;
    }
    for (const std::string& candidate : {Val(prd, 7), Val(prd, 3)}) {
      const std::string code = AsciiUpper(candidate);
      if (IsValidOdsCode(code)) {
        return code;
      }
      if (!candidate.empty() && raw->empty()) {
        *raw = candidate;
      }
    }
  }
  return {};
}

}  // namespace

const std::vector<std::string>& SupportedReferralTriggers() {
  static const std::vector<std::string> kTriggers = {"I12", "I13", "I14", "I15"};
  return kTriggers;
}

Result<std::vector<v1::Event>> MapReferral(const Message& msg, const MapperOptions& options,
                                           ErrorLocation* where) {
  std::string trigger;
  if (Status s =
          internal::CheckMessageType(msg, "REF", SupportedReferralTriggers(), &trigger, where);
      !s.ok()) {
    return s;
  }
  v1::Event event;
  v1::Envelope* env = event.mutable_envelope();
  if (Status s = internal::ReadEnvelope(msg, options, env, where); !s.ok()) {
    return s;
  }
  if (!msg.Has("RF1")) {
    return Fail(kReasonMissingField, "RF1 segment is required for " + trigger, where, "RF1", 0);
  }
  const Segment rf1 = msg.FindAll("RF1").front();
  v1::ReferralEvent* referral = event.mutable_referral();
  referral->set_referral_id(Val(rf1, 6));
  if (referral->referral_id().empty()) {
    return Fail(kReasonMissingField, "RF1-6 originating referral identifier is required", where,
                "RF1", 6);
  }
  const std::string rf1_status = AsciiUpper(Val(rf1, 1));
  if (trigger == "I14") {
    referral->set_status(v1::REFERRAL_STATUS_CANCELLED);
  } else if (trigger == "I15" && rf1_status.empty()) {
    return Fail(kReasonMissingField, "RF1-1 referral status is required for I15", where, "RF1", 1);
  } else {
    referral->set_status(StatusFromRf1(rf1_status));
  }
  if (trigger != "I12") {
    env->set_lifecycle(trigger == "I14" ? v1::LIFECYCLE_CANCEL : v1::LIFECYCLE_UPDATE);
    env->set_supersedes_event_id(referral->referral_id() + ":I12");
  }

  const std::string priority = AsciiUpper(Val(rf1, 2));
  referral->set_priority(Priority(priority));
  if (!priority.empty() && referral->priority() == v1::REFERRAL_PRIORITY_UNSPECIFIED) {
    FlagField(env, "referral.priority", kDqUnknownCode, priority);
  }
  referral->set_specialty(Val(rf1, 3));
  referral->set_source_of_referral(Val(rf1, 5));
  const std::string ubrn = Val(rf1, 11);
  if (ubrn.size() == 12 &&
      std::all_of(ubrn.begin(), ubrn.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    referral->set_ubrn(ubrn);
  } else if (!ubrn.empty()) {
    FlagField(env, "referral.ubrn", kDqUnknownCode, ubrn);
  }
  internal::ReadCodes(msg, "RF1", 10, referral->mutable_reasons());
  for (const auto& [field, name] : {std::pair<int, const char*>{9, "RF1"}, {7, "RF1"}}) {
    if (std::string when = Val(rf1, field); !when.empty()) {
      if (Status s = internal::SetTime(when, name, field, referral->mutable_authored_at(), where);
          !s.ok()) {
        return s;
      }
      break;
    }
  }
  if (!referral->has_authored_at()) {
    *referral->mutable_authored_at() = env->recorded_at();
  }
  std::string raw;
  referral->set_requester_ods(ProviderOds(msg, {"RP"}, &raw));
  if (referral->requester_ods().empty() && !raw.empty()) {
    FlagField(env, "referral.requester_ods", kDqNotOdsCode, raw);
  }
  raw.clear();
  referral->set_performer_ods(ProviderOds(msg, {"RT", "CP"}, &raw));
  if (referral->performer_ods().empty() && !raw.empty()) {
    FlagField(env, "referral.performer_ods", kDqNotOdsCode, raw);
  }

  const std::vector<Segment> pids = msg.FindAll("PID");
  if (pids.empty()) {
    return Fail(kReasonMissingField, "PID segment is required", where, "PID", 0);
  }
  if (Status s = internal::ReadPatient(pids.front(), internal::FindInGroup(msg, 0, "PD1"),
                                       env->site_ods(), env->mutable_patient(), env, where);
      !s.ok()) {
    return s;
  }
  std::vector<v1::Event> events;
  events.push_back(std::move(event));
  return events;
}

}  // namespace carehub::adapters::hl7
