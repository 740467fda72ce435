#include "disclosure.h"

#include <cassert>

#include "carehub/core/crash_points.h"

namespace carehub::hub {

DeliveryBatch::DeliveryBatch(const policy::PolicySet& policy,
                             const policy::SubscriptionRef& subscription,
                             const PatientHasher& patients, Clock::TimePoint now,
                             uint64_t max_events)
    : policy_(policy),
      subscription_(subscription),
      patients_(patients),
      now_(now),
      max_events_(max_events) {}

bool DeliveryBatch::Consider(const DecodedEvent& decoded) {
  assert(!shared_);
  Decided& d = *decided_;
  const v1::Event& event = decoded.event();
  auto decision = policy_.Decide(subscription_, event, decoded.SourcesFor(policy_), now_);
  if (decision.verdict == policy::Verdict::kDeliver) {
    const policy::Agreement& agreement = *decision.agreement;
    // Filed by the identifiers as stored, before redaction takes them out.
    entry_.clear();
    AppendDisclosureEntry(&entry_, agreement.id, policy::FieldLevelName(agreement.patient_fields),
                          decoded.TypeName(), event.envelope().publisher_ods(),
                          event.envelope().event_id());
    for (const std::string& key : decoded.PatientKeys(patients_)) {
      d.filings.Add(key, decoded.seq(), entry_);
    }
    if (policy_.Redacts(agreement)) {
      v1::Event redacted = event;
      policy_.Redact(agreement, &redacted);
      d.frame.AddEvent(redacted.SerializeAsString(), agreement.id);
    } else {
      d.frame.AddEvent(decoded.stored(), agreement.id);
    }
    d.agreements_used.insert(agreement.id);
    ++d.delivered;
  } else if (decision.verdict == policy::Verdict::kWithheld) {
    ++d.withheld[std::string(decision.withheld_reason)];
  }
  return d.delivered < max_events_;
}

void DeliveryBatch::ShareFrom(const DeliveryBatch& decided) {
  decided_ = decided.decided_;
  shared_ = true;
}

uint64_t DeliveryBatch::withheld_total() const {
  uint64_t total = 0;
  for (const auto& [reason, n] : decided_->withheld) {
    total += n;
  }
  return total;
}

v1::AuditRecord DeliveryBatch::AuditRecord(const std::string& kind, Clock::TimePoint at,
                                           const std::string& subscriber,
                                           const std::string& subscription, uint64_t from,
                                           uint64_t to) const {
  // Who, under which agreement, which range, how many, and how many were withheld and why.
  v1::AuditRecord audit;
  audit.set_at_unix_ms(ToUnixMillis(at));
  audit.set_kind(kind);
  audit.set_subscriber(subscriber);
  audit.set_subscription(subscription);
  audit.set_purpose(std::string(policy::PurposeName(subscription_.purpose)));
  std::string agreements;
  for (const auto& a : decided_->agreements_used) {
    agreements += (agreements.empty() ? "" : ",") + a;
  }
  audit.set_agreement(agreements);
  audit.set_from_seq(from);
  audit.set_to_seq(to);
  audit.set_delivered(static_cast<uint32_t>(decided_->delivered));
  for (const auto& [reason, n] : decided_->withheld) {
    (*audit.mutable_withheld_by_reason())[reason] = n;
  }
  return audit;
}

std::shared_ptr<const std::string> DeliveryBatch::Frame(uint64_t scanned_to, uint64_t head,
                                                        uint64_t epoch) const {
  const Decided& d = *decided_;
  const std::array<uint64_t, 3> reports{scanned_to, head, epoch};
  if (d.encoded == nullptr || d.encoded_for != reports) {
    d.encoded = std::make_shared<const std::string>(d.frame.Finish(scanned_to, head, epoch));
    d.encoded_for = reports;
  }
  return d.encoded;
}

Result<AuditedBatch> AuditDisclosure(DeliveryBatch batch, DisclosureTarget target, Store& store,
                                     const Clock& clock, WriteBatch* scratch) {
  if (!batch.discloses()) {
    return AuditedBatch(std::move(batch), std::move(target), "");
  }
  // Written before the delivery leaves: a crash in between can only over-report a disclosure,
  // never hide one. The record and its index entries are one write: both or neither.
  const v1::AuditRecord record =
      batch.AuditRecord("delivery", clock.Now(), target.subscriber, target.subscription,
                        target.from, target.scanned_to);
  std::string key = store.audit().NewKey(record.at_unix_ms());
  scratch->Clear();
  store.audit().AddRecord(scratch, key, record);
  CAREHUB_RETURN_IF_ERROR(store.disclosures().File(scratch, key, batch.filings()));
  CAREHUB_RETURN_IF_ERROR(store.Commit(scratch, /*sync=*/false));
  CAREHUB_CRASH_POINT("deliver.after_audit");
  return AuditedBatch(std::move(batch), std::move(target), std::move(key));
}

SendOutcome SendDisclosure(
    AuditedBatch& audited, Store& store, const Clock& clock,
    const std::function<SendOutcome(const std::shared_ptr<const std::string>&)>& send) {
  const DisclosureTarget& target = audited.target_;
  const SendOutcome outcome =
      send(audited.batch_.Frame(target.scanned_to, target.head, target.epoch));
  if (outcome != SendOutcome::kSent) {
    RecordNotSent(audited, store, clock);
  }
  return outcome;
}

void RecordNotSent(const AuditedBatch& audited, Store& store, const Clock& clock) {
  if (!audited.audited()) {
    return;
  }
  // Best effort: if this write is lost too, the trail and the index over-report, which is the
  // safe side.
  const DisclosureTarget& target = audited.target();
  const v1::AuditRecord record =
      audited.batch().AuditRecord("delivery_not_sent", clock.Now(), target.subscriber,
                                  target.subscription, target.from, target.scanned_to);
  WriteBatch writes;
  store.audit().AddRecord(&writes, store.audit().NewKey(record.at_unix_ms()), record);
  // A retraction that cannot be added (its journal number unreadable) adds nothing: the record is
  // written alone and the index over-reports, like the trail when this write is lost.
  (void)store.disclosures().Retract(&writes, audited.audit_key(), audited.batch().filings());
  (void)store.Commit(&writes, /*sync=*/false);
}

}  // namespace carehub::hub
