#include "fhir_mapping.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <regex>

#include "carehub/adapters/event_id.h"
#include "carehub/core/event_types.h"
#include "carehub/core/strings.h"

namespace carehub::adapters::fhir::internal {
namespace {

using nlohmann::json;

const json* Member(const json& object, const char* key) {
  if (!object.is_object()) {
    return nullptr;
  }
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string Str(const json& object, const char* key) {
  const json* value = Member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

const json& Array(const json& object, const char* key) {
  static const json kEmpty = json::array();
  const json* value = Member(object, key);
  return value != nullptr && value->is_array() ? *value : kEmpty;
}

const json& Object(const json& object, const char* key) {
  static const json kEmpty = json::object();
  const json* value = Member(object, key);
  return value != nullptr && value->is_object() ? *value : kEmpty;
}

// An id as it may appear in an event id (printable ASCII, at most 128 bytes in all): itself when
// short and printable, else "k" + its fingerprint. 40: see event_id.h before changing.
constexpr size_t kMaxIdPartBytes = 40;
std::string IdPart(const std::string& text) { return EventIdPart(text, kMaxIdPartBytes); }

// Value of the first identifier with `system` in an identifier array.
std::string IdentifierValue(const json& identifiers, const std::string& system) {
  if (!identifiers.is_array()) {
    return {};
  }
  for (const json& identifier : identifiers) {
    if (Str(identifier, "system") == system) {
      return Str(identifier, "value");
    }
  }
  return {};
}

std::string MapCodeSystem(const std::string& system) {
  if (system == "http://hl7.org/fhir/sid/icd-10" || system == "http://hl7.org/fhir/sid/icd-10-uk") {
    return "ICD-10";
  }
  if (system.find("opcs") != std::string::npos || system.find("OPCS") != std::string::npos) {
    return "OPCS-4";
  }
  return system;
}

void AddCodings(const json& concept_json, google::protobuf::RepeatedPtrField<v1::CodedValue>* out) {
  for (const json& coding : Array(concept_json, "coding")) {
    std::string code = Str(coding, "code");
    if (code.empty()) {
      continue;
    }
    v1::CodedValue* value = out->Add();
    value->set_system(MapCodeSystem(Str(coding, "system")));
    value->set_code(code);
    value->set_display(Str(coding, "display"));
  }
}

// The first coding's code of the first extension whose URL ends with `name` (UK Core extension
// URLs are https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-<name>; older NHS Digital
// CareConnect ones end the same way), in any of `holders`' extension arrays.
std::string ExtensionCode(std::initializer_list<const json*> holders, const std::string& name) {
  for (const json* holder : holders) {
    for (const json& extension : Array(*holder, "extension")) {
      const std::string url = Str(extension, "url");
      if (url.size() < name.size() ||
          url.compare(url.size() - name.size(), name.size(), name) != 0) {
        continue;
      }
      const json& codings = Array(Object(extension, "valueCodeableConcept"), "coding");
      if (!codings.empty()) {
        return Str(codings[0], "code");
      }
      const std::string code = Str(extension, "valueCode");
      if (!code.empty()) {
        return code;
      }
    }
  }
  return {};
}

// Resolves references against the Bundle (fullUrl and Type/id) and a resource's contained list.
class ResourceIndex {
 public:
  void Add(const std::string& full_url, const json& resource) {
    if (!full_url.empty()) {
      by_ref_[full_url] = &resource;
    }
    std::string type = Str(resource, "resourceType");
    std::string id = Str(resource, "id");
    if (!type.empty() && !id.empty()) {
      by_ref_[type + "/" + id] = &resource;
    }
  }

  // `reference` is a FHIR Reference object; `container` the resource holding it (for "#id").
  const json* Resolve(const json& reference, const json& container) const {
    std::string ref = Str(reference, "reference");
    if (ref.empty()) {
      return nullptr;
    }
    if (ref[0] == '#') {
      for (const json& contained : Array(container, "contained")) {
        if (Str(contained, "id") == ref.substr(1)) {
          return &contained;
        }
      }
      return nullptr;
    }
    auto it = by_ref_.find(ref);
    if (it != by_ref_.end()) {
      return it->second;
    }
    // An absolute URL ending in Type/id matches a resource known by its Type/id.
    size_t slash = ref.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      size_t type_start = ref.rfind('/', slash - 1);
      if (type_start != std::string::npos) {
        it = by_ref_.find(ref.substr(type_start + 1));
        if (it != by_ref_.end()) {
          return it->second;
        }
      }
    }
    return nullptr;
  }

 private:
  std::map<std::string, const json*> by_ref_;
};

// Tail of a reference string: "ServiceRequest/abc" -> "abc".
std::string ReferenceTail(const std::string& ref) {
  size_t slash = ref.rfind('/');
  return slash == std::string::npos ? ref : ref.substr(slash + 1);
}

class Mapper {
 public:
  Mapper(const MappingConfig& config, const ResourceIndex& index, std::string bundle_timestamp)
      : config_(config), index_(index), bundle_timestamp_(std::move(bundle_timestamp)) {}

  // ODS code of an Organization reference: inline identifier, or the resolved Organization /
  // PractitionerRole.organization.
  std::string OdsOf(const json& reference, const json& container, int depth = 0) const {
    const json& identifier = Object(reference, "identifier");
    if (Str(identifier, "system") == kOdsSystem) {
      return Str(identifier, "value");
    }
    const json* target = index_.Resolve(reference, container);
    if (target == nullptr || depth > 2) {
      return {};
    }
    std::string type = Str(*target, "resourceType");
    if (type == "Organization") {
      return IdentifierValue(Array(*target, "identifier"), kOdsSystem);
    }
    if (type == "PractitionerRole") {
      return OdsOf(Object(*target, "organization"), *target, depth + 1);
    }
    return {};
  }

  // Fills the envelope's patient from subject; false (with an issue) when there is none.
  bool MapPatient(const json& resource, const std::string& path, v1::Patient* patient,
                  std::vector<Issue>* issues) const {
    const json* subject = Member(resource, "subject");
    if (subject == nullptr || !subject->is_object()) {
      issues->push_back({"required", "subject (the Patient) is required", path + ".subject"});
      return false;
    }
    const json* target = index_.Resolve(*subject, resource);
    if (target != nullptr && Str(*target, "resourceType") == "Patient") {
      FillPatient(*target, patient);
      return true;
    }
    const json& identifier = Object(*subject, "identifier");
    const json& assigner = Object(Object(identifier, "assigner"), "identifier");
    if (Str(identifier, "system") != kNhsNumberSystem && !Str(identifier, "value").empty() &&
        Str(assigner, "system") == kOdsSystem) {
      // An unidentified patient known only by the provider's local number (issue 21).
      patient->set_local_mrn(Str(identifier, "value"));
      patient->set_mrn_assigning_ods(Str(assigner, "value"));
      return true;
    }
    if (Str(identifier, "system") == kNhsNumberSystem) {
      patient->set_nhs_number(RemoveChars(Str(identifier, "value"), " -"));
      patient->set_nhs_number_status(ExtensionCode({&identifier}, "NHSNumberVerificationStatus"));
      return true;
    }
    if (!Str(*subject, "reference").empty()) {
      issues->push_back({"not-found",
                         "subject reference does not resolve to a Patient in the request "
                         "(contain it, include it in the Bundle, or give subject.identifier)",
                         path + ".subject"});
    } else {
      issues->push_back({"required",
                         "subject needs a reference or an identifier (NHS number, or a local "
                         "number with its assigner's ODS code)",
                         path + ".subject"});
    }
    return false;
  }

  void FillPatient(const json& patient_json, v1::Patient* patient) const {
    for (const json& identifier : Array(patient_json, "identifier")) {
      std::string system = Str(identifier, "system");
      std::string value = Str(identifier, "value");
      if (value.empty()) {
        if (system == kNhsNumberSystem) {
          // UK Core sends an untraced patient's NHS number identifier with no value and only
          // its verification status (03 trace required, 04 no match ...).
          patient->set_nhs_number_status(
              ExtensionCode({&identifier}, "NHSNumberVerificationStatus"));
        }
        continue;
      }
      if (system == kNhsNumberSystem) {
        patient->set_nhs_number(RemoveChars(value, " -"));
        // UK Core: Extension-UKCore-NHSNumberVerificationStatus on the identifier, codes 01-08.
        patient->set_nhs_number_status(ExtensionCode({&identifier}, "NHSNumberVerificationStatus"));
      } else if (patient->local_mrn().empty()) {
        patient->set_local_mrn(value);
        const json& assigner_id = Object(Object(identifier, "assigner"), "identifier");
        if (Str(assigner_id, "system") == kOdsSystem) {
          patient->set_mrn_assigning_ods(Str(assigner_id, "value"));
        }
      }
    }
    patient->set_birth_date(Str(patient_json, "birthDate"));
    std::string gender = Str(patient_json, "gender");
    if (gender == "male") {
      patient->set_sex(v1::SEX_MALE);
    } else if (gender == "female") {
      patient->set_sex(v1::SEX_FEMALE);
    } else if (gender == "other") {
      patient->set_sex(v1::SEX_OTHER);
    } else if (gender == "unknown") {
      patient->set_sex(v1::SEX_UNKNOWN);
    }
    const json& addresses = Array(patient_json, "address");
    if (!addresses.empty()) {
      patient->set_postcode(Str(addresses[0], "postalCode"));
    }
    for (const json& gp : Array(patient_json, "generalPractitioner")) {
      std::string ods = OdsOf(gp, patient_json);
      if (!ods.empty()) {
        patient->set_registered_gp_ods(ods);
        break;
      }
    }
    const json& names = Array(patient_json, "name");
    if (!names.empty()) {
      patient->set_family_name(Str(names[0], "family"));
      std::string given;
      for (const json& part : Array(names[0], "given")) {
        if (part.is_string()) {
          given += (given.empty() ? "" : " ") + part.get<std::string>();
        }
      }
      patient->set_given_name(given);
    }
  }

  // Picks envelope.site_ods from candidate ODS codes; publisher_ods when none is given.
  bool PickSite(const std::vector<std::pair<std::string, std::string>>& candidates,
                v1::Envelope* envelope, std::vector<Issue>* issues) const {
    bool any = false;
    for (const auto& [ods, expression] : candidates) {
      if (ods.empty()) {
        continue;
      }
      any = true;
      if (config_.allowed_ods.count(ods) > 0) {
        envelope->set_site_ods(ods);
        return true;
      }
    }
    if (!any) {
      envelope->set_site_ods(config_.publisher_ods);
      return true;
    }
    issues->push_back(
        {"forbidden", "this publisher may not publish for organisation " + candidates.front().first,
         candidates.front().second});
    return false;
  }

  // The resource's stable key: logical id, else its first identifier value, else the fullUrl.
  static std::string ResourceKey(const json& resource, const std::string& full_url) {
    std::string id = Str(resource, "id");
    if (!id.empty()) {
      return id;
    }
    for (const json& identifier : Array(resource, "identifier")) {
      std::string value = Str(identifier, "value");
      if (!value.empty()) {
        return value;
      }
    }
    if (full_url.rfind("urn:uuid:", 0) == 0) {
      return full_url.substr(9);
    }
    return ReferenceTail(full_url);
  }

  // meta.versionId when the publisher versions the resource, else "h" + content fingerprint.
  static std::string VersionPart(const json& resource, const v1::Event& content) {
    std::string version_id = Str(Object(resource, "meta"), "versionId");
    if (!version_id.empty()) {
      return version_id;
    }
    std::string bytes;
    content.SerializeToString(&bytes);
    return "h" + Fingerprint(bytes);
  }

  // The dateTime at `key`, if present; an issue when present but malformed.
  static std::optional<google::protobuf::Timestamp> Time(const json& object, const char* key,
                                                         const std::string& path,
                                                         std::vector<Issue>* issues) {
    std::string text = Str(object, key);
    if (text.empty()) {
      return std::nullopt;
    }
    google::protobuf::Timestamp time;
    if (!ParseFhirDateTime(text, &time)) {
      issues->push_back({"value", std::string(key) + " is not a FHIR dateTime", path + "." + key});
      return std::nullopt;
    }
    return time;
  }

  EntryResult MapEncounter(const json& resource, const std::string& full_url,
                           const std::string& path) const {
    EntryResult result;
    MappedEvent mapped;
    mapped.path = path;
    v1::Envelope* envelope = mapped.event.mutable_envelope();
    v1::ActivityEvent* activity = mapped.event.mutable_activity();
    std::vector<Issue>& issues = result.issues;

    MapPatient(resource, path, envelope->mutable_patient(), &issues);
    PickSite({{OdsOf(Object(resource, "serviceProvider"), resource), path + ".serviceProvider"}},
             envelope, &issues);

    std::string status = Str(resource, "status");
    if (status.empty()) {
      issues.push_back({"required", "status is required", path + ".status"});
    }
    activity->set_status(status);
    mapped.cancels = status == "cancelled" || status == "entered-in-error";

    const json& class_json = Object(resource, "class");
    std::string class_code = Str(class_json, "code");
    activity->set_encounter_class(class_code);

    const json& period = Object(resource, "period");
    if (auto start = Time(period, "start", path + ".period", &issues)) {
      *activity->mutable_period_start() = *start;
    }
    if (auto end = Time(period, "end", path + ".period", &issues)) {
      *activity->mutable_period_end() = *end;
    }

    // Treatment function and an explicit activity kind from type / serviceType codings.
    v1::ActivityKind kind = v1::ACTIVITY_KIND_UNSPECIFIED;
    std::vector<const json*> concepts;
    for (const json& type : Array(resource, "type")) {
      concepts.push_back(&type);
    }
    const json& service_type = Object(resource, "serviceType");
    concepts.push_back(&service_type);
    for (const json* concept_json : concepts) {
      for (const json& coding : Array(*concept_json, "coding")) {
        std::string system = Str(coding, "system");
        std::string code = Str(coding, "code");
        v1::ActivityKind parsed;
        if (kind == v1::ACTIVITY_KIND_UNSPECIFIED && ParseActivityKind(code, &parsed) &&
            parsed != v1::ACTIVITY_KIND_UNSPECIFIED &&
            (system == kActivityKindSystem || system.empty())) {
          kind = parsed;
        }
        if (activity->treatment_function().empty() &&
            (system.find("treatment-function") != std::string::npos ||
             (concept_json == &service_type && code.size() == 3 &&
              std::all_of(code.begin(), code.end(), ::isdigit)))) {
          activity->set_treatment_function(code);
        }
      }
    }

    const json& hospitalization = Object(resource, "hospitalization");
    const json& admit_codings = Array(Object(hospitalization, "admitSource"), "coding");
    if (!admit_codings.empty()) {
      activity->set_admission_source(Str(admit_codings[0], "code"));
    }
    const json& disposition_codings =
        Array(Object(hospitalization, "dischargeDisposition"), "coding");
    if (!disposition_codings.empty()) {
      activity->set_discharge_destination(Str(disposition_codings[0], "code"));
    }
    // UK Core puts admission and discharge method on Encounter.hospitalization; older profiles
    // (and carehub's first FHIR feeds) on Encounter itself: read both, hospitalization first.
    activity->set_admission_method(ExtensionCode({&hospitalization, &resource}, "AdmissionMethod"));
    activity->set_discharge_method(ExtensionCode({&hospitalization, &resource}, "DischargeMethod"));
    activity->set_referral_source(ExtensionCode({&hospitalization, &resource}, "SourceOfReferral"));

    if (kind == v1::ACTIVITY_KIND_UNSPECIFIED) {
      kind = KindFromClass(resource, class_code, envelope->site_ods(), *activity);
    }
    if (kind == v1::ACTIVITY_KIND_UNSPECIFIED) {
      issues.push_back({class_code.empty() ? "required" : "not-supported",
                        class_code.empty() ? "class is required to tell the kind of activity"
                                           : "class " + class_code +
                                                 " has no activity kind; "
                                                 "give a type coding from " +
                                                 kActivityKindSystem,
                        path + ".class"});
    }
    activity->set_kind(kind);

    // occurred_at: the discharge time for a discharge, else the start.
    if (kind == v1::ACTIVITY_KIND_DISCHARGE && activity->has_period_end()) {
      *envelope->mutable_occurred_at() = activity->period_end();
    } else if (activity->has_period_start()) {
      *envelope->mutable_occurred_at() = activity->period_start();
    } else {
      issues.push_back({"required", "period.start is required", path + ".period.start"});
    }

    // Location: the first location's identifier, display, or resolved name.
    const json& locations = Array(resource, "location");
    if (!locations.empty()) {
      const json& location_ref = Object(locations[0], "location");
      std::string location = Str(Object(location_ref, "identifier"), "value");
      // A contained or Bundle Location with its ods-site-code wins over a display name.
      if (location.empty()) {
        location = Str(location_ref, "display");
      }
      if (location.empty()) {
        const json* target = index_.Resolve(location_ref, resource);
        if (target != nullptr) {
          location = IdentifierValue(Array(*target, "identifier"), kOdsSiteSystem);
          if (location.empty()) {
            location = IdentifierValue(Array(*target, "identifier"), kOdsSystem);
          }
          if (location.empty()) {
            location = Str(*target, "name");
          }
        }
      }
      activity->set_location(location);
    }

    // Diagnoses: Condition resources, contained or in the Bundle.
    const json& diagnoses = Array(resource, "diagnosis");
    for (size_t i = 0; i < diagnoses.size(); ++i) {
      const json& condition_ref = Object(diagnoses[i], "condition");
      const json* condition = index_.Resolve(condition_ref, resource);
      if (condition == nullptr || Str(*condition, "resourceType") != "Condition") {
        issues.push_back({"not-found",
                          "diagnosis condition does not resolve to a Condition in the request",
                          path + ".diagnosis[" + std::to_string(i) + "].condition"});
        continue;
      }
      AddCodings(Object(*condition, "code"), activity->mutable_diagnoses());
    }

    // Linked referral: the ServiceRequest this encounter is based on.
    const json& based_on = Array(resource, "basedOn");
    if (!based_on.empty()) {
      const json* request = index_.Resolve(based_on[0], resource);
      if (request != nullptr && Str(*request, "resourceType") == "ServiceRequest") {
        activity->set_referral_id(ReferralId(*request, ""));
      } else {
        std::string value = Str(Object(based_on[0], "identifier"), "value");
        activity->set_referral_id(value.empty() ? ReferenceTail(Str(based_on[0], "reference"))
                                                : value);
      }
    }

    std::string encounter_id;
    for (const json& identifier : Array(resource, "identifier")) {
      encounter_id = Str(identifier, "value");
      if (!encounter_id.empty()) {
        break;
      }
    }
    activity->set_encounter_id(encounter_id.empty() ? Str(resource, "id") : encounter_id);

    FinishEnvelope(resource, "Encounter", full_url, path, &mapped, &issues);
    if (issues.empty()) {
      result.event = std::move(mapped);
    }
    return result;
  }

  // Kind from Encounter.class (docs/adapters_fhir_csv.md, "Encounter -> activity kind").
  static v1::ActivityKind KindFromClass(const json& resource, const std::string& class_code,
                                        const std::string& site_ods,
                                        const v1::ActivityEvent& activity) {
    if (class_code == "EMER") {
      return v1::ACTIVITY_KIND_AE_ATTENDANCE;
    }
    if (class_code == "PRENC") {
      return v1::ACTIVITY_KIND_PRE_ADMISSION;
    }
    if (class_code == "IMP" || class_code == "ACUTE" || class_code == "NONAC" ||
        class_code == "SS") {
      if (activity.status() == "finished" && activity.has_period_end() &&
          !activity.discharge_destination().empty()) {
        return v1::ACTIVITY_KIND_DISCHARGE;
      }
      const json& priority_codings = Array(Object(resource, "priority"), "coding");
      std::string priority = priority_codings.empty() ? "" : Str(priority_codings[0], "code");
      // NHS admission methods 21-2D and 28 are emergency admissions.
      bool emergency_method =
          !activity.admission_method().empty() && activity.admission_method()[0] == '2';
      if (priority == "EM" || emergency_method) {
        return v1::ACTIVITY_KIND_EMERGENCY_ADMISSION;
      }
      return v1::ACTIVITY_KIND_ELECTIVE_ADMISSION;
    }
    if (class_code == "HH") {
      return v1::ACTIVITY_KIND_COMMUNITY_CONTACT;
    }
    if (class_code == "AMB" || class_code == "VR") {
      // GP practice ODS codes are a letter and five digits (M85001).
      if (site_ods.size() == 6 && std::isupper(static_cast<unsigned char>(site_ods[0])) &&
          std::all_of(site_ods.begin() + 1, site_ods.end(), ::isdigit)) {
        return v1::ACTIVITY_KIND_GP_CONSULTATION;
      }
      return v1::ACTIVITY_KIND_OUTPATIENT_ATTENDANCE;
    }
    return v1::ACTIVITY_KIND_UNSPECIFIED;
  }

  // UBRN where there is one, else the first identifier, else the logical id.
  static std::string ReferralId(const json& request, const std::string& fallback) {
    const json& identifiers = Array(request, "identifier");
    std::string ubrn = IdentifierValue(identifiers, kUbrnSystem);
    if (!ubrn.empty()) {
      return ubrn;
    }
    for (const json& identifier : identifiers) {
      std::string value = Str(identifier, "value");
      if (!value.empty()) {
        return value;
      }
    }
    std::string id = Str(request, "id");
    return id.empty() ? fallback : id;
  }

  EntryResult MapServiceRequest(const json& resource, const std::string& full_url,
                                const std::string& path, const json* task,
                                const std::string& task_full_url) const {
    EntryResult result;
    MappedEvent mapped;
    mapped.path = path;
    v1::Envelope* envelope = mapped.event.mutable_envelope();
    v1::ReferralEvent* referral = mapped.event.mutable_referral();
    std::vector<Issue>& issues = result.issues;

    MapPatient(resource, path, envelope->mutable_patient(), &issues);

    const json& requester = Object(resource, "requester");
    referral->set_requester_ods(OdsOf(requester, resource));
    const json& performers = Array(resource, "performer");
    for (const json& performer : performers) {
      std::string ods = OdsOf(performer, resource);
      if (!ods.empty()) {
        referral->set_performer_ods(ods);
        break;
      }
    }
    PickSite({{referral->requester_ods(), path + ".requester"},
              {referral->performer_ods(), path + ".performer"}},
             envelope, &issues);

    referral->set_ubrn(IdentifierValue(Array(resource, "identifier"), kUbrnSystem));
    referral->set_referral_id(ReferralId(resource, ReferenceTail(full_url)));

    std::string status = Str(resource, "status");
    std::string intent = Str(resource, "intent");
    v1::ReferralStatus referral_status = v1::REFERRAL_STATUS_UNSPECIFIED;
    if (status == "draft") {
      referral_status = v1::REFERRAL_STATUS_CREATED;
    } else if (status == "active") {
      if (intent == "proposal" || intent == "plan") {
        referral_status = v1::REFERRAL_STATUS_CREATED;
      } else if (intent == "filler-order") {
        referral_status = v1::REFERRAL_STATUS_RECEIVED;
      } else {
        referral_status = v1::REFERRAL_STATUS_SENT;
      }
    } else if (status == "on-hold") {
      referral_status = v1::REFERRAL_STATUS_RECEIVED;
    } else if (status == "completed") {
      referral_status = v1::REFERRAL_STATUS_COMPLETED;
    } else if (status == "revoked" || status == "entered-in-error") {
      referral_status = v1::REFERRAL_STATUS_CANCELLED;
      mapped.cancels = status == "entered-in-error";
    } else {
      issues.push_back({status.empty() ? "required" : "value",
                        "status must be draft, active, on-hold, revoked, completed or "
                        "entered-in-error",
                        path + ".status"});
    }

    std::string priority = Str(resource, "priority");
    if (priority.empty() || priority == "routine") {
      referral->set_priority(v1::REFERRAL_PRIORITY_ROUTINE);
    } else if (priority == "urgent" || priority == "stat") {
      referral->set_priority(v1::REFERRAL_PRIORITY_URGENT);
    } else if (priority == "asap") {
      // NHS e-RS carries the two-week-wait (suspected cancer) pathway as "asap".
      referral->set_priority(v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT);
    } else {
      issues.push_back(
          {"value", "priority must be routine, urgent, asap or stat", path + ".priority"});
    }

    const json& performer_type = Array(Object(resource, "performerType"), "coding");
    if (!performer_type.empty()) {
      referral->set_specialty(Str(performer_type[0], "code"));
    }
    for (const json& reason : Array(resource, "reasonCode")) {
      AddCodings(reason, referral->mutable_reasons());
    }
    referral->set_source_of_referral(ExtensionCode({&resource}, "SourceOfServiceRequest").empty()
                                         ? ExtensionCode({&resource}, "SourceOfReferral")
                                         : ExtensionCode({&resource}, "SourceOfServiceRequest"));
    if (auto authored = Time(resource, "authoredOn", path, &issues)) {
      *referral->mutable_authored_at() = *authored;
    } else if (Str(resource, "authoredOn").empty()) {
      // BaRS requests often omit authoredOn: the resource's meta.lastUpdated, else the Bundle's
      // timestamp, is when it was written (issue 21).
      google::protobuf::Timestamp fallback;
      const std::string last_updated = Str(Object(resource, "meta"), "lastUpdated");
      if (!last_updated.empty() && ParseFhirDateTime(last_updated, &fallback)) {
        *referral->mutable_authored_at() = fallback;
      } else if (!bundle_timestamp_.empty() && ParseFhirDateTime(bundle_timestamp_, &fallback)) {
        *referral->mutable_authored_at() = fallback;
      }
    }

    google::protobuf::Timestamp occurred;
    bool have_occurred = referral->has_authored_at();
    if (have_occurred) {
      occurred = referral->authored_at();
    }

    // A Task about this request refines the status (accepted, rejected, booked ...).
    if (task != nullptr && referral_status != v1::REFERRAL_STATUS_CANCELLED) {
      std::string task_path = path + "(Task)";
      std::string task_status = Str(*task, "status");
      const json& business = Array(Object(*task, "businessStatus"), "coding");
      std::string business_code = business.empty() ? "" : Str(business[0], "code");
      v1::ReferralStatus from_task = v1::REFERRAL_STATUS_UNSPECIFIED;
      if (business_code == "booked" || business_code == "seen") {
        ParseReferralStatus(business_code, &from_task);
      } else if (task_status == "requested" || task_status == "draft") {
        from_task = v1::REFERRAL_STATUS_SENT;
      } else if (task_status == "received" || task_status == "ready" || task_status == "on-hold") {
        from_task = v1::REFERRAL_STATUS_RECEIVED;
      } else if (task_status == "accepted" || task_status == "in-progress") {
        from_task = v1::REFERRAL_STATUS_ACCEPTED;
      } else if (task_status == "rejected" || task_status == "failed") {
        from_task = v1::REFERRAL_STATUS_REJECTED;
      } else if (task_status == "cancelled") {
        from_task = v1::REFERRAL_STATUS_CANCELLED;
      } else if (task_status == "completed") {
        from_task = v1::REFERRAL_STATUS_COMPLETED;
      } else {
        issues.push_back({"value", "Task.status " + task_status + " is not a referral status",
                          task_path + ".status"});
      }
      if (from_task != v1::REFERRAL_STATUS_UNSPECIFIED) {
        referral_status = from_task;
      }
      google::protobuf::Timestamp task_time;
      std::string modified = Str(*task, "lastModified");
      if (modified.empty()) {
        modified = Str(*task, "authoredOn");
      }
      if (!modified.empty()) {
        if (ParseFhirDateTime(modified, &task_time)) {
          occurred = task_time;
          have_occurred = true;
        } else {
          issues.push_back(
              {"value", "lastModified is not a FHIR dateTime", task_path + ".lastModified"});
        }
      }
      if (referral_status == v1::REFERRAL_STATUS_BOOKED ||
          referral_status == v1::REFERRAL_STATUS_SEEN) {
        std::string start = Str(Object(*task, "executionPeriod"), "start");
        if (!start.empty() && !ParseFhirDateTime(start, referral->mutable_appointment_at())) {
          issues.push_back({"value", "executionPeriod.start is not a FHIR dateTime",
                            task_path + ".executionPeriod.start"});
        }
      }
    }
    referral->set_status(referral_status);
    if (have_occurred) {
      *envelope->mutable_occurred_at() = occurred;
    } else {
      issues.push_back({"required", "authoredOn is required", path + ".authoredOn"});
    }

    for (const json& replaced : Array(resource, "replaces")) {
      const json* target = index_.Resolve(replaced, resource);
      std::string key =
          target != nullptr ? ResourceKey(*target, "") : ReferenceTail(Str(replaced, "reference"));
      if (!key.empty()) {
        mapped.replaces_key = "ServiceRequest/" + key;
        break;
      }
    }

    FinishEnvelope(resource, "ServiceRequest", full_url, path, &mapped, &issues);
    if (task != nullptr) {
      // The Task's own version goes into the event id: each Task step is its own event.
      std::string task_key = ResourceKey(*task, task_full_url);
      std::string task_version = Str(Object(*task, "meta"), "versionId");
      if (task_version.empty()) {
        task_version = "h" + Fingerprint(task->dump());
      }
      envelope->set_event_id(envelope->event_id() + "/Task/" +
                             Fingerprint(task_key + "/_history/" + task_version));
    }
    if (issues.empty()) {
      result.event = std::move(mapped);
    }
    return result;
  }

  // Publisher, source, recorded_at and the event id (docs: "Event ids").
  void FinishEnvelope(const json& resource, const std::string& type, const std::string& full_url,
                      const std::string& path, MappedEvent* mapped,
                      std::vector<Issue>* issues) const {
    v1::Envelope* envelope = mapped->event.mutable_envelope();
    envelope->set_publisher_ods(config_.publisher_ods);
    envelope->set_source_system(config_.source_system);
    // recorded_at comes from the resource, never the adapter's clock, so that a resend is
    // byte-identical and the hub answers DUPLICATE rather than CONFLICT.
    std::string last_updated = Str(Object(resource, "meta"), "lastUpdated");
    if (!last_updated.empty()) {
      if (!ParseFhirDateTime(last_updated, envelope->mutable_recorded_at())) {
        issues->push_back(
            {"value", "meta.lastUpdated is not a FHIR instant", path + ".meta.lastUpdated"});
      }
    } else if (envelope->has_occurred_at()) {
      *envelope->mutable_recorded_at() = envelope->occurred_at();
    }
    std::string key = ResourceKey(resource, full_url);
    if (key.empty()) {
      issues->push_back({"required",
                         "the resource needs an id, an identifier or a Bundle fullUrl so that "
                         "resends are recognised",
                         path + ".id"});
      return;
    }
    mapped->resource_key = type + "/" + key;
    if (mapped->event.has_activity() && mapped->event.activity().encounter_id().empty()) {
      mapped->event.mutable_activity()->set_encounter_id(key);
    }
    envelope->set_event_id(type + "/" + IdPart(key) + "/_history/" +
                           IdPart(VersionPart(resource, mapped->event)));
  }

 private:
  const MappingConfig& config_;
  const ResourceIndex& index_;
  const std::string bundle_timestamp_;  // Bundle.timestamp, "" for a single resource
};

bool IsSupportingType(const std::string& type) {
  static const std::set<std::string> kTypes = {
      "Patient",   "Organization",  "Practitioner", "PractitionerRole", "Location",
      "Condition", "MessageHeader", "Task",         "Appointment",      "Provenance"};
  return kTypes.count(type) > 0;
}

}  // namespace

bool ParseFhirDateTime(const std::string& text, google::protobuf::Timestamp* out) {
  static const std::regex kPattern(
      R"(([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2}))?)");
  std::smatch match;
  // The length check keeps std::regex (recursive) away from hostile megabyte strings.
  if (text.size() > 40 || !std::regex_match(text, match, kPattern)) {
    return false;
  }
  using namespace std::chrono;
  year_month_day date{year(std::stoi(match[1])), month(std::stoi(match[2])),
                      day(std::stoi(match[3]))};
  if (!date.ok()) {
    return false;
  }
  int64_t seconds = duration_cast<std::chrono::seconds>(sys_days(date).time_since_epoch()).count();
  int32_t nanos = 0;
  if (match[4].matched) {
    int hour = std::stoi(match[4]);
    int minute = std::stoi(match[5]);
    int second = std::stoi(match[6]);
    if (hour > 23 || minute > 59 || second > 60) {
      return false;
    }
    seconds += hour * 3600 + minute * 60 + second;
    if (match[7].matched) {
      std::string fraction = match[7].str();
      fraction.resize(9, '0');
      nanos = std::stoi(fraction);
    }
    std::string zone = match[8].str();
    if (zone != "Z") {
      int offset = std::stoi(zone.substr(1, 2)) * 3600 + std::stoi(zone.substr(4, 2)) * 60;
      seconds -= zone[0] == '+' ? offset : -offset;
    }
  }
  out->set_seconds(seconds);
  out->set_nanos(nanos);
  return true;
}

MappedRequest MapRequest(const json& root, const MappingConfig& config,
                         const std::string& expected_type) {
  MappedRequest request;
  std::string type = Str(root, "resourceType");
  if (!expected_type.empty() && type != expected_type) {
    request.request_issues.push_back(
        {"invalid", "the URL names " + expected_type + " but the body is " + type, "resourceType"});
    return request;
  }

  // (resource, fullUrl, path) of every resource in the request.
  struct Item {
    const json* resource;
    std::string full_url;
    std::string path;
  };
  std::vector<Item> items;
  ResourceIndex index;
  if (type == "Bundle") {
    std::string bundle_type = Str(root, "type");
    if (bundle_type == "transaction") {
      request.kind = RequestKind::kTransaction;
    } else if (bundle_type == "batch") {
      request.kind = RequestKind::kBatch;
    } else if (bundle_type == "message") {
      request.kind = RequestKind::kMessage;
    } else {
      request.request_issues.push_back(
          {"not-supported", "Bundle.type must be transaction, batch or message", "Bundle.type"});
      return request;
    }
    const json& entries = Array(root, "entry");
    for (size_t i = 0; i < entries.size(); ++i) {
      std::string path = "Bundle.entry[" + std::to_string(i) + "]";
      const json& resource = Object(entries[i], "resource");
      items.push_back({&resource, Str(entries[i], "fullUrl"), path + ".resource"});
      index.Add(Str(entries[i], "fullUrl"), resource);
    }
    if (entries.empty()) {
      request.request_issues.push_back({"required", "the Bundle has no entries", "Bundle.entry"});
      return request;
    }
    if (request.kind == RequestKind::kMessage &&
        Str(Object(entries[0], "resource"), "resourceType") != "MessageHeader") {
      request.request_issues.push_back(
          {"invalid", "a message Bundle starts with a MessageHeader", "Bundle.entry[0].resource"});
      return request;
    }
  } else {
    items.push_back({&root, "", type});
    index.Add("", root);
  }

  // Tasks refine the ServiceRequest their focus points at.
  std::map<const json*, std::pair<const json*, std::string>> task_for_request;
  std::vector<bool> task_used(items.size(), false);
  for (size_t i = 0; i < items.size(); ++i) {
    if (Str(*items[i].resource, "resourceType") != "Task") {
      continue;
    }
    const json* focus = index.Resolve(Object(*items[i].resource, "focus"), *items[i].resource);
    if (focus != nullptr && Str(*focus, "resourceType") == "ServiceRequest") {
      task_for_request[focus] = {items[i].resource, items[i].full_url};
      task_used[i] = true;
    }
  }

  // In a message Bundle (BaRS), the Encounter a ServiceRequest names in `encounter` is the
  // referring service's own contact (the 111 call), context for the referral rather than activity
  // the publisher reports: it is noted and not mapped.
  std::set<const json*> referral_context;
  if (request.kind == RequestKind::kMessage) {
    for (const Item& item : items) {
      if (Str(*item.resource, "resourceType") == "ServiceRequest") {
        const json* context = index.Resolve(Object(*item.resource, "encounter"), *item.resource);
        if (context != nullptr) {
          referral_context.insert(context);
        }
      }
    }
  }

  Mapper mapper(config, index, type == "Bundle" ? Str(root, "timestamp") : std::string());
  int event_count = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    std::string resource_type = Str(*item.resource, "resourceType");
    EntryResult entry;
    if (resource_type == "Encounter" && referral_context.count(item.resource) > 0) {
      request.notes.push_back(
          {"informational",
           "Encounter is the referral's context (ServiceRequest.encounter) and was not mapped",
           item.path});
    } else if (resource_type == "Encounter") {
      entry = mapper.MapEncounter(*item.resource, item.full_url, item.path);
      ++event_count;
    } else if (resource_type == "ServiceRequest") {
      auto task = task_for_request.find(item.resource);
      entry = task == task_for_request.end()
                  ? mapper.MapServiceRequest(*item.resource, item.full_url, item.path, nullptr, "")
                  : mapper.MapServiceRequest(*item.resource, item.full_url, item.path,
                                             task->second.first, task->second.second);
      ++event_count;
    } else if (resource_type == "Task" && !task_used[i]) {
      entry.issues.push_back({"not-found",
                              "Task.focus must reference a ServiceRequest in the same Bundle",
                              item.path + ".focus"});
    } else if (resource_type.empty()) {
      entry.issues.push_back({"required", "resourceType is required", item.path});
    } else if (type != "Bundle") {
      entry.issues.push_back({"not-supported",
                              resource_type + " is not accepted here (Encounter, ServiceRequest "
                                              "or a Bundle of them)",
                              item.path});
    } else if (!IsSupportingType(resource_type)) {
      // BaRS and other real message Bundles carry HealthcareService, CarePlan, Observation,
      // Flag, Consent, Slot ... that carehub does not model: accept the Bundle, map what carehub
      // models, and say what was ignored (issue 21).
      request.notes.push_back({"informational",
                               resource_type + " is not mapped by carehub and was ignored",
                               item.path});
    }
    request.entries.push_back(std::move(entry));
  }
  if (event_count == 0 && request.kind != RequestKind::kBatch && request.request_issues.empty() &&
      type == "Bundle") {
    request.request_issues.push_back(
        {"required", "the Bundle holds no Encounter or ServiceRequest", "Bundle.entry"});
  }
  return request;
}

}  // namespace carehub::adapters::fhir::internal
