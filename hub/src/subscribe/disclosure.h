#pragma once
// Disclosure: decide -> redact -> audit -> send, for one delivery batch (private to hub/src). The
// rule "no audit, no disclosure" is in the types: SendDisclosure() only accepts an AuditedBatch,
// and only AuditDisclosure() makes one, after the batch's audit record is written. Between the two
// the caller waits until that record is durable (durability: fsync; SubscribeServer does it for
// every session of a round at once, riding the group commit's sync), so no power cut can leave a
// delivered batch without its record.
//
// A DeliveryBatch collects, for one session and round, each event the reader passes it (decoded
// once for every session that reads it: decode_cache.h): delivered (the agreement allows it:
// redacted to what the agreement permits), withheld (covered but refused: opt-out, purpose, field
// rules...) or not covered (silently skipped). For each event delivered it keeps the keys of the
// patients it concerns (from the identifiers as stored, before redaction), so the audit step files
// the delivery in the disclosure index (store/disclosure_index.h) in the same write as its audit
// record.
//
// Sessions whose subscriptions share a view (policy::PolicySet::ViewOf: the same agreements) and
// read the same range in one round would decide, redact and encode the same batch: one of them
// does, and the others take its outcome by reference (ShareFrom). Each keeps its own audit record
// and disclosure filings; the encoded frame is built once and sent to each by reference.
//
// Thread-safety: one batch per session round, on the delivery thread. Not thread-safe.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/clock.h"
#include "carehub/core/status.h"
#include "carehub/hub/store.h"
#include "carehub/policy/policy_set.h"
#include "carehub/v1/wire.pb.h"
#include "decoded_event.h"
#include "delivery_frame.h"

namespace carehub::hub {

class DeliveryBatch {
 public:
  // At most `max_events` delivered events. `policy` and `subscription` must outlive the batch.
  DeliveryBatch(const policy::PolicySet& policy, const policy::SubscriptionRef& subscription,
                const PatientHasher& patients, Clock::TimePoint now, uint64_t max_events);

  // Decides one stored event and, if it may be delivered, adds it redacted. Returns false once the
  // batch is full (the reader stops there). Not after ShareFrom.
  bool Consider(const DecodedEvent& event);

  // Takes `decided`'s outcome (its events, withheld counts and filings) as this batch's, by
  // reference: what this batch would have decided itself had it been offered the same events.
  // The caller guarantees that: the same PolicySet, a subscription of the same view, the same
  // `now` and `max_events`, and the same range read. Neither batch may Consider any more.
  void ShareFrom(const DeliveryBatch& decided);

  uint64_t delivered() const { return decided_->delivered; }
  uint64_t withheld_total() const;
  const std::map<std::string, uint32_t>& withheld() const { return decided_->withheld; }
  // Something to audit: events delivered or withheld.
  bool discloses() const { return delivered() > 0 || withheld_total() > 0; }

  // The audit record of this batch covering [from, to], of `kind` ("delivery" or
  // "delivery_not_sent").
  v1::AuditRecord AuditRecord(const std::string& kind, Clock::TimePoint at,
                              const std::string& subscriber, const std::string& subscription,
                              uint64_t from, uint64_t to) const;
  // The Delivery frame, reporting the log read up to `scanned_to` of `head`. Encoded once for every
  // batch sharing this one's outcome (the same arguments give the same bytes); immutable, so it is
  // sent by reference.
  std::shared_ptr<const std::string> Frame(uint64_t scanned_to, uint64_t head,
                                           uint64_t epoch) const;

  // What the disclosure index files for this batch: each delivered event, in seq order, once
  // under each patient key it concerns.
  const DisclosureFilings& filings() const { return decided_->filings; }

  DeliveryBatch(DeliveryBatch&&) = default;

 private:
  // What the batch decided; shared, read-only, by the batches that ShareFrom it.
  struct Decided {
    DeliveryFrameWriter frame;
    std::map<std::string, uint32_t> withheld;  // by reason
    std::set<std::string> agreements_used;
    // Filed into one buffer for the batch: a message and a vector of keys per delivered event were
    // ~8 heap allocations each, and a fifth of the delivery thread (callgrind).
    DisclosureFilings filings;
    uint64_t delivered = 0;
    // The last frame encoded, and what it reports (scanned_to, head, epoch).
    mutable std::shared_ptr<const std::string> encoded;
    mutable std::array<uint64_t, 3> encoded_for{};
  };

  const policy::PolicySet& policy_;
  const policy::SubscriptionRef& subscription_;
  PatientHasher patients_;
  Clock::TimePoint now_;
  uint64_t max_events_;
  std::shared_ptr<Decided> decided_ = std::make_shared<Decided>();
  bool shared_ = false;  // decided_ is another batch's too: no more Consider
  std::string entry_;    // the entry being filed, reused
};

enum class SendOutcome {
  kSent,
  kPeerFull,     // the subscriber's queue is full (it does not read): nothing left
  kPeerGone,     // the peer has disconnected
  kAuditFailed,  // the audit record could not be written, or not made durable: nothing left
};

// Who a batch goes to and which range it covers, for its audit record.
struct DisclosureTarget {
  std::string subscriber;
  std::string subscription;
  uint64_t from = 0;
  uint64_t scanned_to = 0;
  uint64_t head = 0;
  uint64_t epoch = 0;  // stamped on the frame (fencing)
};

// A batch that went through AuditDisclosure: its audit record is written, or it discloses nothing
// (progress only) and needs none. Move-only.
class AuditedBatch {
 public:
  AuditedBatch(AuditedBatch&&) = default;
  AuditedBatch(const AuditedBatch&) = delete;
  AuditedBatch& operator=(const AuditedBatch&) = delete;

  // An audit record was written for this batch.
  bool audited() const { return audited_; }
  // The key of its audit record (empty when not audited).
  const std::string& audit_key() const { return audit_key_; }
  const DeliveryBatch& batch() const { return batch_; }
  const DisclosureTarget& target() const { return target_; }

 private:
  friend Result<AuditedBatch> AuditDisclosure(DeliveryBatch batch, DisclosureTarget target,
                                              Store& store, const Clock& clock,
                                              WriteBatch* scratch);
  friend SendOutcome SendDisclosure(
      AuditedBatch& audited, Store& store, const Clock& clock,
      const std::function<SendOutcome(const std::shared_ptr<const std::string>&)>& send);
  AuditedBatch(DeliveryBatch batch, DisclosureTarget target, std::string audit_key)
      : batch_(std::move(batch)),
        target_(std::move(target)),
        audit_key_(std::move(audit_key)),
        audited_(!audit_key_.empty()) {}

  DeliveryBatch batch_;
  DisclosureTarget target_;
  std::string audit_key_;
  bool audited_;
};

// audit: writes the batch's "delivery" record when it discloses anything, with its disclosure
// index entries in the same write (without a sync of its own: see the header comment). An error
// (the store's) means nothing of the batch may be sent. `scratch` is cleared and reused for the
// write: a batch of a thousand entries is ~100 KB, and a fresh buffer per round cost the delivery
// thread page faults and copies (perf).
Result<AuditedBatch> AuditDisclosure(DeliveryBatch batch, DisclosureTarget target, Store& store,
                                     const Clock& clock, WriteBatch* scratch);

// deliver: hands the frame to `send`. A batch that was audited but not sent gets a second record
// saying so, so the trail never shows a disclosure that did not happen without also showing it did
// not.
SendOutcome SendDisclosure(
    AuditedBatch& audited, Store& store, const Clock& clock,
    const std::function<SendOutcome(const std::shared_ptr<const std::string>&)>& send);

// For a batch that will not be sent after all (its audit record could not be made durable):
// records "delivery_not_sent" when it was audited and takes its entries out of the disclosure
// index, in one write.
void RecordNotSent(const AuditedBatch& audited, Store& store, const Clock& clock);

}  // namespace carehub::hub
