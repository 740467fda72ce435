// FHIR R4 JSON mapping (adapters/fhir): the body parsed as the listener parses it, then
// MapRequest for each URL the listener serves (any type, Bundle, Encounter, ServiceRequest), then
// validation of the mapped events as a NEW lifecycle.
//
// Invariants: mapping never throws; a rejected request says why; each entry result is an event or
// issues; every issue has a code; a valid mapped event re-encodes.

#include <nlohmann/json.hpp>

#include "carehub/core/validation.h"
#include "fhir_mapping.h"
#include "fuzz_support.h"

namespace {

namespace fhir = carehub::adapters::fhir::internal;

void CheckIssues(const std::vector<fhir::Issue>& issues) {
  for (const auto& issue : issues) {
    CAREHUB_FUZZ_CHECK(!issue.code.empty(), "issue without a code");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  carehub::fuzz::Bytes in(data, size);
  static const char* const kTypes[] = {"", "Bundle", "Encounter", "ServiceRequest"};
  const std::string expected_type = kTypes[in.Byte() % 4];
  std::string_view body = in.rest();

  nlohmann::json root = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object() || !root.contains("resourceType") ||
      !root["resourceType"].is_string()) {
    return 0;  // answered 400 by the listener
  }
  static const fhir::MappingConfig config = [] {
    fhir::MappingConfig c;
    c.publisher_ods = "RY6";
    c.allowed_ods = {"RY6", "RY601", "M85001"};
    c.source_system = "fuzz";
    return c;
  }();
  static carehub::fuzz::FixedClock clock;
  fhir::MappedRequest mapped = fhir::MapRequest(root, config, expected_type);
  CheckIssues(mapped.request_issues);
  if (!mapped.request_issues.empty()) {
    return 0;
  }
  carehub::ValidationLimits limits;
  for (auto& entry : mapped.entries) {
    CheckIssues(entry.issues);
    if (!entry.event) {
      continue;
    }
    CAREHUB_FUZZ_CHECK(!entry.event->resource_key.empty(), "event without a resource key");
    carehub::v1::Event& event = entry.event->event;
    event.mutable_envelope()->set_lifecycle(carehub::v1::LIFECYCLE_NEW);
    carehub::Status valid = carehub::ValidateEvent(event, event.ByteSizeLong(), limits, clock.Now());
    if (valid.ok()) {
      carehub::fuzz::CheckReencodes(event);
    }
  }
  return 0;
}
