#pragma once
// Disclosure: decide -> redact -> audit -> send, for one delivery batch (private to hub/src). The
// rule "no audit, no disclosure" lives in one function, Disclose(): the audit record of a batch is
// written before its frame may leave, and a frame whose audit record could not be written is not
// sent.
//
// A DeliveryBatch collects, for one session and round, each event the log reader passes it:
// delivered (the agreement allows it: redacted to what the agreement permits), withheld (covered
// but refused: opt-out, purpose, field rules...) or not covered (silently skipped).
//
// Thread-safety: one batch per session round, on the delivery thread. Not thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "carehub/core/clock.h"
#include "carehub/core/status.h"
#include "carehub/hub/store/audit_log.h"
#include "carehub/policy/policy_set.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::hub {

class DeliveryBatch {
 public:
  // At most `max_events` delivered events. `policy` and `subscription` must outlive the batch.
  DeliveryBatch(const policy::PolicySet& policy, const policy::SubscriptionRef& subscription,
                Clock::TimePoint now, uint64_t max_events);

  // Decides one stored event and, if it may be delivered, adds it redacted. Returns false once the
  // batch is full (the reader stops there).
  bool Consider(uint64_t seq, std::string_view stored_bytes);

  uint64_t delivered() const { return delivered_; }
  uint64_t withheld_total() const;
  const std::map<std::string, uint32_t>& withheld() const { return withheld_; }
  // Something to audit: events delivered or withheld.
  bool discloses() const { return delivered_ > 0 || withheld_total() > 0; }

  // The audit record of this batch covering [from, to], of `kind` ("delivery" or
  // "delivery_not_sent").
  v1::AuditRecord AuditRecord(const std::string& kind, Clock::TimePoint at,
                              const std::string& subscriber, const std::string& subscription,
                              uint64_t from, uint64_t to) const;
  // The Delivery frame, reporting the log read up to `scanned_to` of `head`.
  std::string FrameBytes(uint64_t scanned_to, uint64_t head);

 private:
  const policy::PolicySet& policy_;
  const policy::SubscriptionRef& subscription_;
  Clock::TimePoint now_;
  uint64_t max_events_;
  v1::Frame frame_;
  std::map<std::string, uint32_t> withheld_;  // by reason
  std::set<std::string> agreements_used_;
  uint64_t delivered_ = 0;
};

enum class SendOutcome {
  kSent,
  kPeerFull,     // the subscriber's queue is full (it does not read): nothing left
  kPeerGone,     // the peer has disconnected
  kAuditFailed,  // the audit record could not be written: nothing left
};

// Who a batch goes to and which range it covers, for its audit record.
struct DisclosureTarget {
  std::string subscriber;
  std::string subscription;
  uint64_t from = 0;
  uint64_t scanned_to = 0;
  uint64_t head = 0;
};

// No audit, no disclosure: writes the batch's audit record (when it discloses anything), then hands
// the frame to `send`. A batch that was audited but not sent gets a second record saying so, so the
// trail never shows a disclosure that did not happen without also showing it did not.
SendOutcome Disclose(DeliveryBatch& batch, const DisclosureTarget& target, AuditLog& audit,
                     const Clock& clock,
                     const std::function<SendOutcome(const std::string&)>& send);

}  // namespace carehub::hub
