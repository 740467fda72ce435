#pragma once
// Internal: FHIR R4 JSON -> carehub events, without lifecycle decisions (those need the listener's
// memory of earlier events) and without validation. Pure functions over the parsed request; no I/O.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "carehub/v1/event.pb.h"

namespace carehub::adapters::fhir::internal {

inline constexpr char kNhsNumberSystem[] = "https://fhir.nhs.uk/Id/nhs-number";
inline constexpr char kOdsSystem[] = "https://fhir.nhs.uk/Id/ods-organization-code";
inline constexpr char kOdsSiteSystem[] = "https://fhir.nhs.uk/Id/ods-site-code";
inline constexpr char kUbrnSystem[] = "https://fhir.nhs.uk/Id/UBRN";
inline constexpr char kActivityKindSystem[] = "https://carehub.nhs.uk/CodeSystem/activity-kind";

// One OperationOutcome issue.
struct Issue {
  std::string code;  // FHIR IssueType: invalid, required, value, not-supported, forbidden ...
  std::string diagnostics;  // for a human; never logged above debug
  std::string expression;   // FHIRPath of the offending element
};

// An event mapped from one Encounter or ServiceRequest, before lifecycle is decided.
struct MappedEvent {
  v1::Event event;  // envelope.event_id set; lifecycle and supersedes_event_id not yet
  // "Encounter/<key>": identifies the resource across versions, for UPDATE / CANCEL decisions.
  std::string resource_key;
  // The resource says it withdraws itself (cancelled, entered-in-error, revoked).
  bool cancels = false;
  // ServiceRequest.replaces: the resource_key of the request this one replaces.
  std::string replaces_key;
  // FHIRPath prefix for issues about this event ("Encounter" or "Bundle.entry[2].resource").
  std::string path;
};

// What became of one resource: an event, supporting data (Patient, Task ...) or problems.
struct EntryResult {
  std::optional<MappedEvent> event;
  std::vector<Issue> issues;
};

struct MappingConfig {
  std::string publisher_ods;
  std::set<std::string> allowed_ods;  // includes publisher_ods
  std::string source_system;
};

// How a request is to be answered.
enum class RequestKind { kSingle, kTransaction, kBatch, kMessage };

struct MappedRequest {
  RequestKind kind = RequestKind::kSingle;
  // One per Bundle entry (or one for a single resource), in order.
  std::vector<EntryResult> entries;
  // Problems with the request as a whole (e.g. an unsupported Bundle.type).
  std::vector<Issue> request_issues;
  // Not problems: what was accepted but ignored (resources carehub does not model). Answered as
  // an information-severity OperationOutcome beside the event ids.
  std::vector<Issue> notes;
};

// Maps a parsed request whose top level is a JSON object with a resourceType.
// `expected_type`, when not empty, is the type the URL names (POST /fhir/Encounter).
MappedRequest MapRequest(const nlohmann::json& root, const MappingConfig& config,
                         const std::string& expected_type);

// Parses a FHIR date, dateTime or instant to a Timestamp. A date alone means 00:00 UTC.
bool ParseFhirDateTime(const std::string& text, google::protobuf::Timestamp* out);

}  // namespace carehub::adapters::fhir::internal
