#include "disclosure.h"

#include "carehub/core/crash_points.h"

namespace carehub::hub {

DeliveryBatch::DeliveryBatch(const policy::PolicySet& policy,
                             const policy::SubscriptionRef& subscription, Clock::TimePoint now,
                             uint64_t max_events)
    : policy_(policy), subscription_(subscription), now_(now), max_events_(max_events) {
  frame_.set_version(v1::PROTOCOL_VERSION_1);
  frame_.mutable_delivery();
}

bool DeliveryBatch::Consider(uint64_t seq, std::string_view stored_bytes) {
  (void)seq;
  v1::Event event;
  if (!event.ParseFromArray(stored_bytes.data(), static_cast<int>(stored_bytes.size()))) {
    return true;  // the offline check reports such a record; nothing of it can be disclosed
  }
  auto decision = policy_.Decide(subscription_, event, now_);
  if (decision.verdict == policy::Verdict::kDeliver) {
    policy_.Redact(*decision.agreement, &event);
    auto* d = frame_.mutable_delivery()->add_events();
    *d->mutable_event() = std::move(event);
    d->set_agreement_id(decision.agreement->id);
    agreements_used_.insert(decision.agreement->id);
    ++delivered_;
  } else if (decision.verdict == policy::Verdict::kWithheld) {
    ++withheld_[std::string(decision.withheld_reason)];
  }
  return delivered_ < max_events_;
}

uint64_t DeliveryBatch::withheld_total() const {
  uint64_t total = 0;
  for (const auto& [reason, n] : withheld_) {
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
  std::string agreements;
  for (const auto& a : agreements_used_) {
    agreements += (agreements.empty() ? "" : ",") + a;
  }
  audit.set_agreement(agreements);
  audit.set_from_seq(from);
  audit.set_to_seq(to);
  audit.set_delivered(static_cast<uint32_t>(delivered_));
  for (const auto& [reason, n] : withheld_) {
    (*audit.mutable_withheld_by_reason())[reason] = n;
  }
  return audit;
}

std::string DeliveryBatch::FrameBytes(uint64_t scanned_to, uint64_t head, uint64_t epoch) {
  frame_.mutable_delivery()->set_scanned_to_seq(scanned_to);
  frame_.mutable_delivery()->set_head_seq(head);
  frame_.mutable_delivery()->set_epoch(epoch);
  return frame_.SerializeAsString();
}

Result<AuditedBatch> AuditDisclosure(DeliveryBatch batch, DisclosureTarget target, AuditLog& audit,
                                     const Clock& clock) {
  const bool audited = batch.discloses();
  if (audited) {
    // Written before the delivery leaves: a crash in between can only over-report a disclosure,
    // never hide one.
    CAREHUB_RETURN_IF_ERROR(
        audit.Append(batch.AuditRecord("delivery", clock.Now(), target.subscriber,
                                       target.subscription, target.from, target.scanned_to)));
    CAREHUB_CRASH_POINT("deliver.after_audit");
  }
  return AuditedBatch(std::move(batch), std::move(target), audited);
}

SendOutcome SendDisclosure(AuditedBatch& audited, AuditLog& audit, const Clock& clock,
                           const std::function<SendOutcome(const std::string&)>& send) {
  const DisclosureTarget& target = audited.target_;
  const SendOutcome outcome =
      send(audited.batch_.FrameBytes(target.scanned_to, target.head, target.epoch));
  if (outcome != SendOutcome::kSent) {
    RecordNotSent(audited, audit, clock);
  }
  return outcome;
}

void RecordNotSent(const AuditedBatch& audited, AuditLog& audit, const Clock& clock) {
  if (!audited.audited()) {
    return;
  }
  // Best effort: if this record is lost too, the trail over-reports, which is the safe side.
  const DisclosureTarget& target = audited.target();
  (void)audit.Append(audited.batch().AuditRecord("delivery_not_sent", clock.Now(),
                                                 target.subscriber, target.subscription,
                                                 target.from, target.scanned_to));
}

}  // namespace carehub::hub
