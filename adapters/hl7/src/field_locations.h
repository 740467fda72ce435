#pragma once
// Where in an HL7 message an event field came from, so an AR for a failed carehub::ValidateEvent
// can fill ERR-2 (segment^sequence^field^repetition^component) instead of leaving the sender to
// guess (internal to carehub_adapter_hl7). Pure, thread-safe.

#include <string_view>

#include "carehub/adapters/hl7/adt_mapper.h"
#include "carehub/adapters/hl7/message.h"

namespace carehub::adapters::hl7 {

// `validator_message` starts with the event field it is about ("patient.nhs_number is empty",
// "activity.period_end is before ..."), as every core validation message does. Returns the
// HL7 position the mappers read that field from; an empty segment when there is none.
ErrorLocation LocateEventField(std::string_view validator_message, const Message& message);

}  // namespace carehub::adapters::hl7
