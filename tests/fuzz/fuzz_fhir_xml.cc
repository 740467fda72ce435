// FHIR R4 XML bodies (application/fhir+xml, adapters/fhir): libxml2 parse and conversion to the
// JSON form (FhirXmlToJson), then MapRequest as the listener does for an XML body, then validation
// of the mapped events as a NEW lifecycle.
//
// Invariants: conversion never throws or crashes (libxml2 with no network, no entity expansion);
// a refusal says why; a converted body is an object whose resourceType is a string; mapping
// issues have codes; a valid mapped event re-encodes.

#include <nlohmann/json.hpp>

#include "carehub/core/validation.h"
#include "fhir_mapping.h"
#include "fhir_xml.h"
#include "fuzz_support.h"

namespace {

namespace fhir = carehub::adapters::fhir::internal;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  carehub::Result<nlohmann::json> converted = fhir::FhirXmlToJson(body);
  if (!converted.ok()) {
    CAREHUB_FUZZ_CHECK(!converted.status().message().empty(), "refusal without a reason");
    return 0;
  }
  const nlohmann::json& root = converted.value();
  CAREHUB_FUZZ_CHECK(root.is_object() && root.contains("resourceType") &&
                         root["resourceType"].is_string(),
                     "converted body without a resourceType");
  static const fhir::MappingConfig config = [] {
    fhir::MappingConfig c;
    c.publisher_ods = "RXK";
    c.allowed_ods = {"RXK", "RXK01"};
    c.source_system = "fuzz";
    return c;
  }();
  static carehub::fuzz::FixedClock clock;
  fhir::MappedRequest mapped = fhir::MapRequest(root, config, "");
  for (const auto& issue : mapped.request_issues) {
    CAREHUB_FUZZ_CHECK(!issue.code.empty(), "issue without a code");
  }
  carehub::ValidationLimits limits;
  for (auto& entry : mapped.entries) {
    for (const auto& issue : entry.issues) {
      CAREHUB_FUZZ_CHECK(!issue.code.empty(), "issue without a code");
    }
    if (!entry.event) {
      continue;
    }
    carehub::v1::Event& event = entry.event->event;
    event.mutable_envelope()->set_lifecycle(carehub::v1::LIFECYCLE_NEW);
    carehub::Status valid = carehub::ValidateEvent(event, event.ByteSizeLong(), limits, clock.Now());
    if (valid.ok()) {
      carehub::fuzz::CheckReencodes(event);
    }
  }
  return 0;
}
