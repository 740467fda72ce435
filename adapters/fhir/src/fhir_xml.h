#pragma once
// Internal: FHIR R4 XML (application/fhir+xml) to the JSON form the mapper reads, following the
// FHIR XML <-> JSON rules (https://hl7.org/fhir/R4/xml.html, json.html): the root element names
// the resourceType; a primitive's `value` attribute becomes a JSON string; an extension's `url`
// attribute becomes "url"; a resource inside <resource> or <contained> becomes an object with its
// resourceType; xhtml narrative is skipped.
//
// JSON needs to know which elements repeat, which XML does not say. The reader knows the FHIR R4
// elements that repeat among those carehub reads (identifier, extension, coding, name, given,
// address, entry, location, diagnosis, basedOn, performer, reasonCode, replaces, contained, ...)
// and makes those arrays even when they occur once; any other element is an object or a string.
// Elements carehub does not read may come out in either shape, which is harmless.
//
// libxml2 with network access and entity expansion off (no XXE, no billion laughs). Pure,
// thread-safe.

#include <nlohmann/json.hpp>
#include <string_view>

#include "carehub/core/status.h"

namespace carehub::adapters::fhir::internal {

// The resource as FHIR JSON; an error (reason "invalid_xml") naming the problem otherwise.
Result<nlohmann::json> FhirXmlToJson(std::string_view xml);

}  // namespace carehub::adapters::fhir::internal
