#include "fhir_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstring>
#include <memory>
#include <set>
#include <string>

namespace carehub::adapters::fhir::internal {
namespace {

using nlohmann::json;

constexpr char kFhirNamespace[] = "http://hl7.org/fhir";
constexpr int kMaxDepth = 64;

// Complex elements that are arrays (max = *) in the FHIR R4 resources and data types carehub
// reads (Bundle, MessageHeader, Patient, Encounter, ServiceRequest, Task, Organization, Location,
// Condition, Identifier, CodeableConcept, HumanName, Address, OperationOutcome).
const std::set<std::string>& RepeatingComplex() {
  static const std::set<std::string> kNames = {"entry",
                                               "identifier",
                                               "extension",
                                               "modifierExtension",
                                               "coding",
                                               "name",
                                               "address",
                                               "telecom",
                                               "generalPractitioner",
                                               "location",
                                               "diagnosis",
                                               "basedOn",
                                               "performer",
                                               "reasonCode",
                                               "reasonReference",
                                               "replaces",
                                               "contained",
                                               "participant",
                                               "category",
                                               "note",
                                               "tag",
                                               "security",
                                               "link",
                                               "issue",
                                               "supportingInfo",
                                               "episodeOfCare",
                                               "account",
                                               "statusHistory",
                                               "classHistory",
                                               "type",
                                               "input",
                                               "output",
                                               "bodySite",
                                               "insurance",
                                               "contact",
                                               "communication",
                                               "endpoint",
                                               "focus",
                                               "slot",
                                               "evidence",
                                               "stage",
                                               "qualification",
                                               "destination",
                                               "response",
                                               "partOf"};
  return kNames;
}

// Primitive elements that are arrays.
const std::set<std::string>& RepeatingPrimitive() {
  static const std::set<std::string> kNames = {
      "given",           "prefix", "suffix", "line", "profile", "instantiatesCanonical",
      "instantiatesUri", "alias"};
  return kNames;
}

std::string Name(const xmlNode* node) { return reinterpret_cast<const char*>(node->name); }

std::string Attribute(const xmlNode* node, const char* name) {
  xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
  if (value == nullptr) {
    return {};
  }
  std::string out = reinterpret_cast<const char*>(value);
  xmlFree(value);
  return out;
}

bool HasAttribute(const xmlNode* node, const char* name) {
  return xmlHasProp(node, reinterpret_cast<const xmlChar*>(name)) != nullptr;
}

bool IsFhirElement(const xmlNode* node) {
  return node->type == XML_ELEMENT_NODE && node->ns != nullptr &&
         std::strcmp(reinterpret_cast<const char*>(node->ns->href), kFhirNamespace) == 0;
}

const xmlNode* FirstFhirChild(const xmlNode* node) {
  for (const xmlNode* child = node->children; child != nullptr; child = child->next) {
    if (IsFhirElement(child)) {
      return child;
    }
  }
  return nullptr;
}

Status Invalid(std::string message) { return Status::Error("invalid_xml", std::move(message)); }

Status Convert(const xmlNode* node, int depth, json* out);

// A resource element (<Patient>...</Patient>) to {"resourceType": "Patient", ...}.
Status ConvertResource(const xmlNode* node, int depth, json* out) {
  *out = json::object();
  (*out)["resourceType"] = Name(node);
  json body;
  if (Status s = Convert(node, depth, &body); !s.ok()) {
    return s;
  }
  if (body.is_object()) {
    for (auto& [key, value] : body.items()) {
      (*out)[key] = std::move(value);
    }
  }
  return Status::Ok();
}

// The children of `node` as members of an object (`value` attribute alone: a string).
Status Convert(const xmlNode* node, int depth, json* out) {
  if (depth > kMaxDepth) {
    return Invalid("the XML nests deeper than " + std::to_string(kMaxDepth) + " elements");
  }
  const bool has_children = FirstFhirChild(node) != nullptr;
  if (!has_children && HasAttribute(node, "value")) {
    *out = Attribute(node, "value");
    return Status::Ok();
  }
  *out = json::object();
  if (HasAttribute(node, "url")) {
    (*out)["url"] = Attribute(node, "url");
  }
  if (HasAttribute(node, "value")) {
    // A primitive with extensions: FHIR JSON puts the value under the name and the extensions
    // under "_name"; carehub reads only the value.
    *out = Attribute(node, "value");
    return Status::Ok();
  }
  const std::string parent = Name(node);
  for (const xmlNode* child = node->children; child != nullptr; child = child->next) {
    if (!IsFhirElement(child)) {
      continue;  // text, comments, xhtml narrative (another namespace)
    }
    const std::string name = Name(child);
    json value;
    if (name == "resource" || name == "contained") {
      const xmlNode* inner = FirstFhirChild(child);
      if (inner == nullptr) {
        return Invalid("<" + name + "> holds no resource");
      }
      if (Status s = ConvertResource(inner, depth + 1, &value); !s.ok()) {
        return s;
      }
    } else if (Status s = Convert(child, depth + 1, &value); !s.ok()) {
      return s;
    }
    const bool primitive = value.is_string();
    // Encounter.location[].location is a single Reference inside the repeating backbone.
    const bool repeats =
        primitive ? RepeatingPrimitive().count(name) > 0
                  : RepeatingComplex().count(name) > 0 && !(name == "location" && parent == name);
    if (repeats && out->contains(name) && !(*out)[name].is_array()) {
      // The same name first as a single value, now as a repeating one (or the reverse below).
      return Invalid("element <" + name + "> inside <" + parent + "> mixes forms");
    }
    if (repeats) {
      (*out)[name].push_back(std::move(value));
    } else if (out->contains(name)) {
      return Invalid("element <" + name + "> repeats inside <" + parent +
                     "> where carehub expects one");
    } else {
      (*out)[name] = std::move(value);
    }
  }
  return Status::Ok();
}

struct DocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};

}  // namespace

Result<json> FhirXmlToJson(std::string_view xml) {
  // XML_PARSE_NONET: never fetch; no XML_PARSE_NOENT/DTDLOAD: entities are not expanded or
  // loaded; XML_PARSE_NOBLANKS drops indentation.
  const int options = XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
                      XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
  std::unique_ptr<xmlDoc, DocFree> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "request.xml", nullptr, options));
  if (doc == nullptr) {
    return Invalid("the body is not well-formed XML");
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || !IsFhirElement(root)) {
    return Invalid("the root element is not in the FHIR namespace (http://hl7.org/fhir)");
  }
  json out;
  if (Status s = ConvertResource(root, 0, &out); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace carehub::adapters::fhir::internal
