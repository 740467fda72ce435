#pragma once
// Realistic ADT sample messages (NHS PAS style) shared by the HL7 adapter tests. Segments are built
// from (field number, value) pairs so every HL7 position in a test is explicit.

#include <initializer_list>
#include <map>
#include <string>
#include <utility>

namespace carehub::adapters::hl7::testing {

inline constexpr const char* kNhsNumber = "9434765919";
inline constexpr const char* kOtherNhsNumber = "9999999484";  // check digit valid
inline constexpr const char* kBadNhsNumber = "9434765918";    // check digit wrong

// A segment from field-number/value pairs; unlisted fields are empty.
inline std::string Seg(const std::string& name,
                       std::initializer_list<std::pair<int, std::string>> fields) {
  std::map<int, std::string> by_number(fields.begin(), fields.end());
  std::string out = name;
  const int last = by_number.empty() ? 0 : by_number.rbegin()->first;
  for (int i = 1; i <= last; ++i) {
    out += "|";
    auto it = by_number.find(i);
    if (it != by_number.end()) {
      out += it->second;
    }
  }
  return out + "\r";
}

inline std::string Msh(const std::string& trigger, const std::string& control_id,
                       const std::string& version = "2.5.1",
                       const std::string& facility = "RXK01") {
  std::string type = "ADT^" + trigger;
  if (version != "2.3") {
    type += trigger == "A40" ? "^ADT_A39" : "^ADT_A01";
  }
  return "MSH|^~\\&|PAS|" + facility + "|CAREHUB|RXK|20240315103000||" + type + "|" + control_id +
         "|P|" + version + "\r";
}

inline std::string Evn(const std::string& trigger) {
  return Seg("EVN", {{1, trigger}, {2, "20240315103000"}, {6, "20240315102500"}});
}

inline std::string Pid(const std::string& nhs = kNhsNumber) {
  return Seg("PID", {{1, "1"},
                     {3, nhs + "^^^NHS^NH~RXK1234567^^^RXK^MR"},
                     {5, "SMITH^JOHN^ALAN^^MR^^L"},
                     {7, "19800101"},
                     {8, "M"},
                     {11, "1 HIGH STREET^FLAT 2^LEEDS^WEST YORKSHIRE^LS14AP^GBR^H"}});
}

inline std::string Pd1() { return Seg("PD1", {{3, "LEEDS GP^^^^^^^^^B86001"}}); }

// PV1 with class, admission type and optional discharge fields.
inline std::string Pv1(const std::string& patient_class, const std::string& admission_type,
                       const std::string& visit = "V000123", bool discharged = false) {
  if (discharged) {
    return Seg("PV1", {{1, "1"},
                       {2, patient_class},
                       {3, "WARD12^B3^4^RXK01"},
                       {4, admission_type},
                       {10, "300"},
                       {14, "19"},
                       {19, visit},
                       {36, "1"},
                       {37, "19"},
                       {44, "20240315090000"},
                       {45, "20240318140000"}});
  }
  return Seg("PV1", {{1, "1"},
                     {2, patient_class},
                     {3, "WARD12^B3^4^RXK01"},
                     {4, admission_type},
                     {10, "300"},
                     {14, "19"},
                     {19, visit},
                     {44, "20240315090000"}});
}

inline std::string Dg1() {
  return Seg("DG1", {{1, "1"}, {3, "I21.9^Acute myocardial infarction^I10"}}) +
         Seg("DG1", {{1, "2"}, {3, "22298006^Myocardial infarction^SCT"}});
}

inline std::string Pr1() { return Seg("PR1", {{1, "1"}, {3, "K40.1^Saphenous vein graft^OPCS4"}}); }

inline std::string Rf1() { return Seg("RF1", {{1, "A"}, {6, "REF-778899"}}); }

}  // namespace carehub::adapters::hl7::testing
