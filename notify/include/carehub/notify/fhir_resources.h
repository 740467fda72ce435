#pragma once
// carehub events as FHIR R4 resources: the reverse of the FHIR adapter's intake mapping
// (adapters/fhir/src/fhir_mapping.cc), so that an event that came in as FHIR goes out as resources
// the adapter would map back to the same event (docs/fhir-notify.md, "Resources").
//
//   ActivityEvent -> Encounter (diagnoses as contained Conditions, procedures as contained
//                    Procedures) + Patient (+ the merged Patient of a patient_merge)
//   ReferralEvent -> ServiceRequest + Task (no Task for "created": no Task status means that)
//                    + Patient
// Envelope fields FHIR has no element for (event id, publisher, site, source system, lifecycle,
// supersedes, occurred / recorded / received times, hub_seq, data-quality flags) travel in one
// complex extension on the focus resource, so every field of the event model reaches the receiver.
//
// Resource ids are stable per real-world thing, never an identifier itself: Encounter from
// (publisher, encounter id), ServiceRequest and Task from (publisher, referral id), Patient from
// its NHS number, local number or pseudonym, each hashed (BLAKE2b, 16 hex digits) so that an id in
// a URL or a log line discloses nothing. meta.versionId is the event's hub_seq.
//
// Secondary use: the hub has already redacted the event under the agreement; with
// Purpose::kSecondaryUse this mapping strips NHS number, names, address, local number and free
// text again (defence in depth: a misconfigured agreement must not become a disclosure here).
//
// Pure functions; thread-safe.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "carehub/notify/config.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::notify {

inline constexpr char kExtensionBase[] = "https://carehub.nhs.uk/StructureDefinition/";

// One resource of a notification: "Type/id" and, for full-resource, its JSON.
struct MappedResource {
  std::string type;
  std::string id;
  nlohmann::json resource;  // null unless built with full resources
  std::string Reference() const { return type + "/" + id; }
};

struct MappedEvent {
  // The focus (Encounter or ServiceRequest) first, then Task, Patient(s).
  std::vector<MappedResource> resources;
  bool cancel = false;  // lifecycle CANCEL: the entry answers 200 rather than 201
};

// Maps one delivered event. `full` builds the JSON; otherwise only types and ids. An event with
// no body maps to no resources (the hub never stores one; the caller sends the number alone).
MappedEvent MapEvent(const v1::DeliveredEvent& delivered, Purpose purpose, bool full);

// The stable id of a resource from the text that identifies it (BLAKE2b-64, hex).
std::string HashedId(const std::string& prefix, const std::string& key);

// RFC 3339 instant of a protobuf timestamp ("" when unset).
std::string Instant(const google::protobuf::Timestamp& t);

}  // namespace carehub::notify
