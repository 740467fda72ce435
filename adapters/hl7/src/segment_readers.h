#pragma once
// Segment readers shared by the ADT and REF mappers (internal to carehub_adapter_hl7): the MSH/EVN
// envelope, the PID/PD1 patient, coded values and times. Pure, thread-safe. Every failure is a
// Status with a stable reason and, through `where`, the HL7 position that caused it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/adapters/hl7/adt_mapper.h"
#include "carehub/adapters/hl7/message.h"
#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub::adapters::hl7::internal {

// A component without surrounding spaces and tabs; HL7's explicit null ("") reads as empty.
std::string TrimValue(std::string_view value);
// Segment accessor that trims and treats "" as empty.
std::string Val(const Segment& seg, int field, int rep = 0, int comp = 1, int sub = 1);

// A failure that also fills `where` (when given) with segment and field.
Status Fail(std::string_view code, std::string message, ErrorLocation* where,
            std::string_view segment = {}, int field = 0);

// MSH-12 2.3 up to 2.8 with any sub-release (2.3.1, 2.5.1, 2.8.2).
bool IsSupportedVersion(std::string_view version);

// The first segment named `name` in patient group `group`: from its PID to the next PID.
std::optional<Segment> FindInGroup(const Message& msg, size_t group, std::string_view name);

// NHS number and MRN from a CX list (PID-3, PID-2, MRG-1). An NHS number failing Modulus 11 is
// an invalid_nhs_number failure.
Status ReadIdentifiers(const Segment& seg, int field, const std::string& site_ods,
                       v1::Patient* patient, ErrorLocation* where);
// Legal name (XPN-7 "L") when flagged, else the first.
void ReadName(const Segment& seg, int field, v1::Patient* patient);
// ICD-10 / SNOMED CT / OPCS-4 system names for the HL7 coding-system component.
std::string CodingSystem(std::string raw);
// DG1-3 / PR1-3 style CE/CWE fields (code^text^system) of every `segment`.
void ReadCodes(const Message& msg, std::string_view segment, int field,
               google::protobuf::RepeatedPtrField<v1::CodedValue>* out);
// HL7 DTM to a timestamp; invalid_timestamp (etc.) pointing at segment-field otherwise.
Status SetTime(std::string_view value, std::string_view segment, int field,
               google::protobuf::Timestamp* out, ErrorLocation* where);

// PID (+ PD1) to a patient. Optional demographics are copied as sent (a partial birth date as
// "YYYY" / "YYYY-MM") for ScreenDemographics to check; an unknown sex code is flagged on `flags`
// here because the enum cannot hold the raw value.
Status ReadPatient(const Segment& pid, std::optional<Segment> pd1, const std::string& site_ods,
                   v1::Patient* patient, v1::Envelope* flags, ErrorLocation* where);

// Checks MSH-12 (2.3 to 2.8), MSH-9.1 == `message_type` and the trigger is one of `triggers`;
// returns the upper-case trigger in `trigger`.
Status CheckMessageType(const Message& msg, std::string_view message_type,
                        const std::vector<std::string>& triggers, std::string* trigger,
                        ErrorLocation* where);

// The envelope shared by every event of a message: event_id MSH-10, publisher, site MSH-4 (must
// be an allowed facility), source_system MSH-3, lifecycle NEW, recorded_at MSH-7, occurred_at
// EVN-6, else EVN-2, else MSH-7.
Status ReadEnvelope(const Message& msg, const MapperOptions& options, v1::Envelope* base,
                    ErrorLocation* where);

}  // namespace carehub::adapters::hl7::internal
