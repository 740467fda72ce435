#include "carehub/notify/fhir_resources.h"

#include <google/protobuf/util/time_util.h>
#include <sodium.h>

#include <optional>
#include <sstream>

#include "carehub/core/event_types.h"

namespace carehub::notify {
namespace {

using nlohmann::json;

// The systems the FHIR adapter reads (adapters/fhir/src/fhir_mapping.h) and carehub's own.
constexpr char kNhsNumberSystem[] = "https://fhir.nhs.uk/Id/nhs-number";
constexpr char kOdsSystem[] = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr char kUbrnSystem[] = "https://fhir.nhs.uk/Id/UBRN";
constexpr char kActivityKindSystem[] = "https://carehub.nhs.uk/CodeSystem/activity-kind";
constexpr char kEncounterIdSystem[] = "https://carehub.nhs.uk/Id/encounter";
constexpr char kReferralIdSystem[] = "https://carehub.nhs.uk/Id/referral";
constexpr char kLocalNumberSystem[] = "https://carehub.nhs.uk/Id/local-patient-number";
constexpr char kPseudonymSystem[] = "https://carehub.nhs.uk/Id/pseudonym";
constexpr char kTreatmentFunctionSystem[] = "https://carehub.nhs.uk/CodeSystem/treatment-function";
constexpr char kSpecialtySystem[] = "https://carehub.nhs.uk/CodeSystem/specialty";
constexpr char kReferralStatusSystem[] = "https://carehub.nhs.uk/CodeSystem/referral-status";
constexpr char kUkCore[] = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-";
constexpr char kUkCoreCodes[] = "https://fhir.hl7.org.uk/CodeSystem/UKCore-";
constexpr char kActCodeSystem[] = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
constexpr char kDataAbsentSystem[] = "http://terminology.hl7.org/CodeSystem/data-absent-reason";

// FHIR strings may not be empty: every optional element is set only when there is a value.
void SetIf(json& object, const char* key, const std::string& value) {
  if (!value.empty()) {
    object[key] = value;
  }
}

json Coding(const std::string& system, const std::string& code, const std::string& display = "") {
  json c = json::object();
  SetIf(c, "system", system);
  SetIf(c, "code", code);
  SetIf(c, "display", display);
  return c;
}

json Concept(const std::string& system, const std::string& code) {
  return json{{"coding", json::array({Coding(system, code)})}};
}

json OdsReference(const std::string& ods) {
  return json{{"type", "Organization"}, {"identifier", {{"system", kOdsSystem}, {"value", ods}}}};
}

// The adapter maps these back (MapCodeSystem): ICD-10 and OPCS-4 by name, any other as sent.
std::string FhirCodeSystem(const std::string& system) {
  if (system == "ICD-10") {
    return "http://hl7.org/fhir/sid/icd-10";
  }
  if (system == "OPCS-4") {
    return "https://fhir.nhs.uk/CodeSystem/OPCS-4";
  }
  return system;
}

json Extension(const std::string& url, const char* value_key, json value) {
  return json{{"url", url}, {value_key, std::move(value)}};
}

json CodeExtension(const std::string& name, const std::string& code_system,
                   const std::string& code) {
  return Extension(std::string(kUkCore) + name, "valueCodeableConcept",
                   Concept(std::string(kUkCoreCodes) + code_system, code));
}

const char* LifecycleCode(v1::Lifecycle lifecycle) {
  switch (lifecycle) {
    case v1::LIFECYCLE_UPDATE:
      return "update";
    case v1::LIFECYCLE_CANCEL:
      return "cancel";
    default:
      return "new";
  }
}

// The envelope fields FHIR has no element for (see the header).
json EnvelopeExtension(const v1::DeliveredEvent& delivered) {
  const v1::Event& event = delivered.event();
  const v1::Envelope& env = event.envelope();
  json parts = json::array();
  auto add_string = [&](const char* url, const std::string& value) {
    if (!value.empty()) {
      parts.push_back(Extension(url, "valueString", value));
    }
  };
  auto add_instant = [&](const char* url, const google::protobuf::Timestamp& t) {
    const std::string text = Instant(t);
    if (!text.empty()) {
      parts.push_back(Extension(url, "valueInstant", text));
    }
  };
  add_string("eventId", env.event_id());
  add_string("eventType", EventTypeName(event));
  add_string("publisherOds", env.publisher_ods());
  add_string("siteOds", env.site_ods());
  add_string("sourceSystem", env.source_system());
  parts.push_back(Extension("lifecycle", "valueCode", LifecycleCode(env.lifecycle())));
  add_string("supersedesEventId", env.supersedes_event_id());
  add_instant("occurredAt", env.occurred_at());
  add_instant("recordedAt", env.recorded_at());
  add_instant("receivedAt", env.received_at());
  add_string("hubSeq", std::to_string(env.hub_seq()));
  add_string("agreement", delivered.agreement_id());
  for (const v1::DataQualityFlag& flag : env.data_quality()) {
    json flag_parts = json::array();
    if (!flag.field().empty()) {
      flag_parts.push_back(Extension("field", "valueString", flag.field()));
    }
    if (!flag.problem().empty()) {
      flag_parts.push_back(Extension("problem", "valueString", flag.problem()));
    }
    if (!flag.raw_value().empty()) {
      flag_parts.push_back(Extension("rawValue", "valueString", flag.raw_value()));
    }
    if (!flag_parts.empty()) {
      parts.push_back(json{{"url", "dataQuality"}, {"extension", flag_parts}});
    }
  }
  return json{{"url", std::string(kExtensionBase) + "Extension-CarehubEvent"},
              {"extension", parts}};
}

json Meta(const v1::Envelope& env) {
  json meta{{"versionId", std::to_string(env.hub_seq())}};
  // The adapter reads meta.lastUpdated as recorded_at: the source's own time, not the hub's.
  std::string updated = Instant(env.recorded_at());
  if (updated.empty()) {
    updated = Instant(env.received_at());
  }
  SetIf(meta, "lastUpdated", updated);
  return meta;
}

// Secondary use, again after the hub (see the header): nothing that names the person.
v1::Patient Stripped(v1::Patient patient, Purpose purpose) {
  if (purpose != Purpose::kSecondaryUse) {
    return patient;
  }
  patient.clear_nhs_number();
  patient.clear_local_mrn();
  patient.clear_mrn_assigning_ods();
  patient.clear_given_name();
  patient.clear_family_name();
  patient.clear_address();
  if (patient.birth_date().size() > 7) {
    patient.set_birth_date(patient.birth_date().substr(0, 7));
  }
  const std::string& pc = patient.postcode();
  if (!pc.empty()) {
    size_t space = pc.find(' ');
    patient.set_postcode(space != std::string::npos
                             ? pc.substr(0, space)
                             : (pc.size() > 4 ? pc.substr(0, pc.size() - 3) : pc));
  }
  return patient;
}

std::string PatientKey(const v1::Patient& p, const v1::Envelope& env) {
  if (!p.nhs_number().empty()) {
    return "nhs|" + p.nhs_number();
  }
  if (!p.pseudonym().empty()) {
    return "pse|" + p.pseudonym();
  }
  if (!p.local_mrn().empty()) {
    return "mrn|" + p.mrn_assigning_ods() + "|" + p.local_mrn();
  }
  // Nothing links this patient to another event: one Patient per event.
  return "anon|" + env.publisher_ods() + "|" + env.event_id();
}

json PatientJson(const v1::Patient& p, const std::string& id, const v1::Envelope& env) {
  json patient{{"resourceType", "Patient"}, {"id", id}, {"meta", Meta(env)}};
  json identifiers = json::array();
  if (!p.nhs_number().empty() || !p.nhs_number_status().empty()) {
    json nhs{{"system", kNhsNumberSystem}};
    SetIf(nhs, "value", p.nhs_number());
    if (!p.nhs_number_status().empty()) {
      nhs["extension"] =
          json::array({CodeExtension("NHSNumberVerificationStatus",
                                     "NHSNumberVerificationStatusEngland", p.nhs_number_status())});
    }
    identifiers.push_back(nhs);
  }
  if (!p.local_mrn().empty()) {
    json mrn{{"system", kLocalNumberSystem}, {"value", p.local_mrn()}};
    if (!p.mrn_assigning_ods().empty()) {
      mrn["assigner"] = OdsReference(p.mrn_assigning_ods());
    }
    identifiers.push_back(mrn);
  }
  if (!p.pseudonym().empty()) {
    identifiers.push_back({{"system", kPseudonymSystem}, {"value", p.pseudonym()}});
  }
  if (!identifiers.empty()) {
    patient["identifier"] = identifiers;
  }
  if (!p.family_name().empty() || !p.given_name().empty()) {
    json name = json::object();
    SetIf(name, "family", p.family_name());
    json given = json::array();
    std::istringstream parts(p.given_name());
    for (std::string part; parts >> part;) {
      given.push_back(part);
    }
    if (!given.empty()) {
      name["given"] = given;
    }
    patient["name"] = json::array({name});
  }
  switch (p.sex()) {
    case v1::SEX_MALE:
      patient["gender"] = "male";
      break;
    case v1::SEX_FEMALE:
      patient["gender"] = "female";
      break;
    case v1::SEX_OTHER:
      patient["gender"] = "other";
      break;
    case v1::SEX_UNKNOWN:
      patient["gender"] = "unknown";
      break;
    default:
      break;
  }
  SetIf(patient, "birthDate", p.birth_date());
  if (!p.postcode().empty() || !p.address().empty()) {
    json address = json::object();
    SetIf(address, "text", p.address());
    SetIf(address, "postalCode", p.postcode());
    patient["address"] = json::array({address});
  }
  if (!p.registered_gp_ods().empty()) {
    patient["generalPractitioner"] = json::array({OdsReference(p.registered_gp_ods())});
  }
  return patient;
}

json CodingOf(const v1::CodedValue& v) {
  return json::array({Coding(FhirCodeSystem(v.system()), v.code(), v.display())});
}

json EncounterJson(const v1::DeliveredEvent& delivered, const std::string& id,
                   const std::string& patient_ref, const std::string& referral_ref) {
  const v1::Envelope& env = delivered.event().envelope();
  const v1::ActivityEvent& a = delivered.event().activity();
  json enc{{"resourceType", "Encounter"}, {"id", id}, {"meta", Meta(env)}};
  json extensions = json::array({EnvelopeExtension(delivered)});
  if (!a.note().empty()) {
    extensions.push_back(
        Extension(std::string(kExtensionBase) + "Extension-Note", "valueString", a.note()));
  }
  enc["extension"] = extensions;
  if (!a.encounter_id().empty()) {
    json identifier{{"system", kEncounterIdSystem}, {"value", a.encounter_id()}};
    if (!env.publisher_ods().empty()) {
      identifier["assigner"] = OdsReference(env.publisher_ods());
    }
    enc["identifier"] = json::array({identifier});
  }
  enc["status"] = a.status().empty() ? "unknown" : a.status();
  enc["class"] = a.encounter_class().empty() ? Coding(kDataAbsentSystem, "unknown")
                                             : Coding(kActCodeSystem, a.encounter_class());
  if (a.kind() != v1::ACTIVITY_KIND_UNSPECIFIED) {
    enc["type"] = json::array({Concept(kActivityKindSystem, ActivityKindName(a.kind()))});
  }
  if (!a.treatment_function().empty()) {
    enc["serviceType"] = Concept(kTreatmentFunctionSystem, a.treatment_function());
  }
  enc["subject"] = {{"reference", patient_ref}};
  if (!a.referral_id().empty()) {
    enc["basedOn"] = json::array(
        {{{"reference", referral_ref},
          {"identifier", {{"system", kReferralIdSystem}, {"value", a.referral_id()}}}}});
  }
  json period = json::object();
  SetIf(period, "start", Instant(a.period_start()));
  SetIf(period, "end", Instant(a.period_end()));
  if (!period.empty()) {
    enc["period"] = period;
  }
  json contained = json::array();
  json diagnoses = json::array();
  for (int i = 0; i < a.diagnoses_size(); ++i) {
    const std::string cid = "dx" + std::to_string(i);
    contained.push_back({{"resourceType", "Condition"},
                         {"id", cid},
                         {"code", {{"coding", CodingOf(a.diagnoses(i))}}},
                         {"subject", {{"reference", patient_ref}}}});
    diagnoses.push_back({{"condition", {{"reference", "#" + cid}}}});
  }
  // Encounter has no procedure element: contained Procedures point at their container.
  for (int i = 0; i < a.procedures_size(); ++i) {
    contained.push_back({{"resourceType", "Procedure"},
                         {"id", "px" + std::to_string(i)},
                         {"status", "completed"},
                         {"code", {{"coding", CodingOf(a.procedures(i))}}},
                         {"subject", {{"reference", patient_ref}}},
                         {"encounter", {{"reference", "#"}}}});
  }
  if (!contained.empty()) {
    enc["contained"] = contained;
  }
  if (!diagnoses.empty()) {
    enc["diagnosis"] = diagnoses;
  }
  json hosp = json::object();
  json hosp_ext = json::array();
  if (!a.admission_method().empty()) {
    hosp_ext.push_back(
        CodeExtension("AdmissionMethod", "AdmissionMethodEngland", a.admission_method()));
  }
  if (!a.discharge_method().empty()) {
    hosp_ext.push_back(
        CodeExtension("DischargeMethod", "DischargeMethodEngland", a.discharge_method()));
  }
  if (!a.referral_source().empty()) {
    hosp_ext.push_back(Extension(
        std::string(kExtensionBase) + "Extension-SourceOfReferral", "valueCodeableConcept",
        Concept(std::string(kUkCoreCodes) + "SourceOfReferralEngland", a.referral_source())));
  }
  if (!hosp_ext.empty()) {
    hosp["extension"] = hosp_ext;
  }
  if (!a.admission_source().empty()) {
    hosp["admitSource"] =
        Concept(std::string(kUkCoreCodes) + "SourceOfAdmissionEngland", a.admission_source());
  }
  if (!a.discharge_destination().empty()) {
    hosp["dischargeDisposition"] = Concept(
        std::string(kUkCoreCodes) + "DischargeDestinationEngland", a.discharge_destination());
  }
  if (!hosp.empty()) {
    enc["hospitalization"] = hosp;
  }
  if (!a.location().empty()) {
    enc["location"] = json::array({{{"location", {{"display", a.location()}}}}});
  }
  if (!env.site_ods().empty()) {
    enc["serviceProvider"] = OdsReference(env.site_ods());
  }
  return enc;
}

struct ReferralShape {
  const char* request_status;
  const char* task_status;  // nullptr: no Task
  const char* business;     // nullptr: none
};

ReferralShape ShapeOf(v1::ReferralStatus s, bool cancel) {
  switch (s) {
    case v1::REFERRAL_STATUS_CREATED:
      return {"draft", nullptr, nullptr};
    case v1::REFERRAL_STATUS_SENT:
      return {"active", "requested", nullptr};
    case v1::REFERRAL_STATUS_RECEIVED:
      return {"active", "received", nullptr};
    case v1::REFERRAL_STATUS_ACCEPTED:
      return {"active", "accepted", nullptr};
    case v1::REFERRAL_STATUS_REJECTED:
      return {"active", "rejected", nullptr};
    case v1::REFERRAL_STATUS_BOOKED:
      return {"active", "accepted", "booked"};
    case v1::REFERRAL_STATUS_SEEN:
      return {"active", "in-progress", "seen"};
    case v1::REFERRAL_STATUS_COMPLETED:
      return {"completed", "completed", nullptr};
    case v1::REFERRAL_STATUS_CANCELLED:
      return {cancel ? "entered-in-error" : "revoked", "cancelled", nullptr};
    default:
      return {"unknown", nullptr, nullptr};
  }
}

json ServiceRequestJson(const v1::DeliveredEvent& delivered, const std::string& id,
                        const std::string& patient_ref, const ReferralShape& shape) {
  const v1::Envelope& env = delivered.event().envelope();
  const v1::ReferralEvent& r = delivered.event().referral();
  json sr{{"resourceType", "ServiceRequest"}, {"id", id}, {"meta", Meta(env)}};
  json extensions = json::array({EnvelopeExtension(delivered)});
  if (!r.source_of_referral().empty()) {
    extensions.push_back(
        CodeExtension("SourceOfServiceRequest", "SourceOfReferralEngland", r.source_of_referral()));
  }
  sr["extension"] = extensions;
  json identifiers = json::array();
  if (!r.referral_id().empty()) {
    identifiers.push_back({{"system", kReferralIdSystem}, {"value", r.referral_id()}});
  }
  if (!r.ubrn().empty()) {
    identifiers.push_back({{"system", kUbrnSystem}, {"value", r.ubrn()}});
  }
  if (!identifiers.empty()) {
    sr["identifier"] = identifiers;
  }
  sr["status"] = shape.request_status;
  sr["intent"] = "order";
  switch (r.priority()) {
    case v1::REFERRAL_PRIORITY_ROUTINE:
      sr["priority"] = "routine";
      break;
    case v1::REFERRAL_PRIORITY_URGENT:
      sr["priority"] = "urgent";
      break;
    case v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT:
      // NHS e-RS carries the two-week-wait (suspected cancer) pathway as "asap".
      sr["priority"] = "asap";
      break;
    default:
      break;
  }
  sr["subject"] = {{"reference", patient_ref}};
  SetIf(sr, "authoredOn", Instant(r.authored_at()));
  if (!r.requester_ods().empty()) {
    sr["requester"] = OdsReference(r.requester_ods());
  }
  if (!r.specialty().empty()) {
    sr["performerType"] = Concept(kSpecialtySystem, r.specialty());
  }
  if (!r.performer_ods().empty()) {
    sr["performer"] = json::array({OdsReference(r.performer_ods())});
  }
  if (r.reasons_size() > 0) {
    json reasons = json::array();
    for (const v1::CodedValue& v : r.reasons()) {
      reasons.push_back({{"coding", CodingOf(v)}});
    }
    sr["reasonCode"] = reasons;
  }
  if (!r.note().empty()) {
    sr["note"] = json::array({{{"text", r.note()}}});
  }
  return sr;
}

json TaskJson(const v1::DeliveredEvent& delivered, const std::string& id,
              const std::string& request_ref, const std::string& patient_ref,
              const ReferralShape& shape) {
  const v1::Envelope& env = delivered.event().envelope();
  const v1::ReferralEvent& r = delivered.event().referral();
  json task{{"resourceType", "Task"},
            {"id", id},
            {"meta", Meta(env)},
            {"status", shape.task_status},
            {"intent", "order"}};
  if (shape.business != nullptr) {
    task["businessStatus"] = Concept(kReferralStatusSystem, shape.business);
  }
  task["focus"] = {{"reference", request_ref}};
  task["for"] = {{"reference", patient_ref}};
  SetIf(task, "authoredOn", Instant(r.authored_at()));
  // The adapter takes the referral step's time from Task.lastModified.
  SetIf(task, "lastModified", Instant(env.occurred_at()));
  if (!r.requester_ods().empty()) {
    task["requester"] = OdsReference(r.requester_ods());
  }
  if (!r.performer_ods().empty()) {
    task["owner"] = OdsReference(r.performer_ods());
  }
  if (r.has_appointment_at()) {
    task["executionPeriod"] = {{"start", Instant(r.appointment_at())}};
  }
  return task;
}

}  // namespace

std::string Instant(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) {
    return "";
  }
  return google::protobuf::util::TimeUtil::ToString(t);
}

std::string HashedId(const std::string& prefix, const std::string& key) {
  unsigned char digest[8];
  crypto_generichash(digest, sizeof(digest), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size(), nullptr, 0);
  static const char kHex[] = "0123456789abcdef";
  std::string out = prefix;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

MappedEvent MapEvent(const v1::DeliveredEvent& delivered, Purpose purpose, bool full) {
  MappedEvent out;
  // Direct care maps the event as delivered; secondary use maps a stripped copy.
  std::optional<v1::DeliveredEvent> stripped;
  if (purpose == Purpose::kSecondaryUse) {
    stripped = delivered;
    v1::Event& e = *stripped->mutable_event();
    *e.mutable_envelope()->mutable_patient() = Stripped(e.envelope().patient(), purpose);
    for (auto& flag : *e.mutable_envelope()->mutable_data_quality()) {
      flag.clear_raw_value();
    }
    if (e.has_activity()) {
      e.mutable_activity()->clear_note();
      if (e.activity().has_merged_patient()) {
        *e.mutable_activity()->mutable_merged_patient() =
            Stripped(e.activity().merged_patient(), purpose);
      }
    }
    if (e.has_referral()) {
      e.mutable_referral()->clear_note();
    }
  }
  const v1::DeliveredEvent& safe = stripped ? *stripped : delivered;
  const v1::Event& event = safe.event();
  const v1::Envelope& env = event.envelope();
  out.cancel = env.lifecycle() == v1::LIFECYCLE_CANCEL;
  const std::string patient_id = HashedId("pat-", PatientKey(env.patient(), env));
  const std::string patient_ref = "Patient/" + patient_id;
  const std::string publisher = env.publisher_ods();
  if (event.has_activity()) {
    const v1::ActivityEvent& a = event.activity();
    MappedResource enc{
        "Encounter",
        HashedId("enc-",
                 publisher + "|" + (a.encounter_id().empty() ? env.event_id() : a.encounter_id())),
        nullptr};
    const std::string referral_ref =
        "ServiceRequest/" + HashedId("sr-", publisher + "|" + a.referral_id());
    if (full) {
      enc.resource = EncounterJson(safe, enc.id, patient_ref, referral_ref);
    }
    out.resources.push_back(std::move(enc));
  } else if (event.has_referral()) {
    const v1::ReferralEvent& r = event.referral();
    const std::string key =
        publisher + "|" + (r.referral_id().empty() ? env.event_id() : r.referral_id());
    const ReferralShape shape = ShapeOf(r.status(), out.cancel);
    MappedResource sr{"ServiceRequest", HashedId("sr-", key), nullptr};
    if (full) {
      sr.resource = ServiceRequestJson(safe, sr.id, patient_ref, shape);
    }
    const std::string sr_ref = sr.Reference();
    out.resources.push_back(std::move(sr));
    if (shape.task_status != nullptr) {
      MappedResource task{"Task", HashedId("task-", key), nullptr};
      if (full) {
        task.resource = TaskJson(safe, task.id, sr_ref, patient_ref, shape);
      }
      out.resources.push_back(std::move(task));
    }
  } else {
    return out;
  }
  MappedResource patient{"Patient", patient_id, nullptr};
  if (full) {
    patient.resource = PatientJson(env.patient(), patient_id, env);
  }
  if (event.has_activity() && event.activity().has_merged_patient()) {
    const v1::Patient& merged = event.activity().merged_patient();
    MappedResource old{"Patient", HashedId("pat-", PatientKey(merged, env) + "|merged"), nullptr};
    if (!merged.nhs_number().empty() || !merged.pseudonym().empty() ||
        !merged.local_mrn().empty()) {
      old.id = HashedId("pat-", PatientKey(merged, env));
    }
    if (full) {
      old.resource = PatientJson(merged, old.id, env);
      old.resource["active"] = false;
      old.resource["link"] =
          json::array({{{"other", {{"reference", patient_ref}}}, {"type", "replaced-by"}}});
      patient.resource["link"] =
          json::array({{{"other", {{"reference", old.Reference()}}}, {"type", "replaces"}}});
    }
    out.resources.push_back(std::move(patient));
    out.resources.push_back(std::move(old));
  } else {
    out.resources.push_back(std::move(patient));
  }
  return out;
}

}  // namespace carehub::notify
