#pragma once
// Maps an HL7 v2 REF (patient referral) message, triggers I12-I15, to one carehub ReferralEvent
// (DESIGN §2, issue 21). Pure: no I/O, thread-safe. Like MapAdt it does not run ValidateEvent.
//
// | trigger | lifecycle | status |
// | I12 patient referral        | NEW    | RF1-1: A accepted, R rejected, E cancelled, else sent |
// | I13 modify patient referral | UPDATE | from RF1-1 as for I12                              |
// | I14 cancel patient referral | CANCEL | cancelled                                          |
// | I15 referral status request | UPDATE | from RF1-1, which must be sent (a status report)   |
// UPDATE and CANCEL supersede "<RF1-6>:I12": the adapter is stateless, so the referral's own id
// names the event that opened it (as ADT visit keys do; docs/adapters.md).
//
// referral_id RF1-6 (required); ubrn RF1-11 when 12 digits (else flagged); priority RF1-2 (S/A/U
// urgent, R routine, 2WW/TWW two-week wait); specialty RF1-3; reasons RF1-10; authored_at RF1-9,
// else RF1-7, else MSH-7; requester_ods the PRD with PRD-1 RP (referring provider), performer_ods
// the PRD with RT (referred-to) or CP (consulting), each PRD-7.1 then PRD-3 (XAD-1) when it is an
// ODS code (else flagged); source_of_referral RF1-5 (category). Patient as for ADT.

#include <vector>

#include "carehub/adapters/hl7/adt_mapper.h"
#include "carehub/adapters/hl7/message.h"
#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub::adapters::hl7 {

// The supported REF triggers: I12, I13, I14, I15.
const std::vector<std::string>& SupportedReferralTriggers();

Result<std::vector<v1::Event>> MapReferral(const Message& message, const MapperOptions& options,
                                           ErrorLocation* where = nullptr);

}  // namespace carehub::adapters::hl7
