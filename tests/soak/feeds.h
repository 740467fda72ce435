#pragma once
// The soak's subscribers: each reads one subscription through the client library while churning
// (graceful disconnects, "kills" that drop the subscriber without acknowledging what it read,
// resumes, and for some feeds replays from earliest), and checks every delivery as it arrives
// against the publishers' ledger: inside its agreement, redacted as its purpose requires, never an
// opted-out patient for secondary use. What it examined (hub_seq ranges, with the time) is kept
// so that, once the hub has stopped, FinalCheck can tell from the store whether every event the
// agreement allowed at the time reached it at least once.
//
// One FeedWorker per thread; the accessors after the thread has ended.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"
#include "carehub/v1/wire.pb.h"
#include "ledger.h"

namespace carehub::soak {

// One subscription and the agreement it reads under, as plain rules (docs/agreements.md).
struct FeedRule {
  std::string subscription;
  std::string subscriber;
  std::string agreement;
  bool secondary_use = false;
  std::vector<std::string> sources;         // ODS codes; empty: every source
  std::vector<std::string> narrow_sources;  // when `reloaded`: the sources while narrowed
  std::vector<std::string> types;           // patterns ("activity.*"); empty: every type
  bool reloaded = false;                    // agreement reloads narrow and widen this feed
  bool replays = false;                     // some sessions replay from earliest
};

// The soak's four feeds: a direct-care feed whose sources reloads narrow and widen, a constant
// direct-care feed, and two secondary-use feeds (one of everything, one narrow that replays).
std::vector<FeedRule> SoakFeeds();
// The agreements file for the feeds, with the reloaded feed narrowed or not; `invalid` misspells a
// key so the hub must refuse the file.
std::string AgreementsYaml(const std::vector<FeedRule>& feeds, bool narrow, bool invalid = false);

// Whether `rule` covers an event from (publisher, site) of `type`, with the narrow sources or not.
bool Covers(const FeedRule& rule, const std::string& publisher, const std::string& site,
            const std::string& type, bool narrow);

// The agreement state of the reloaded feed over time. Thread-safe.
enum class PolicyState { kWide, kNarrow, kChanging };
class PolicyTimeline {
 public:
  // The margin after a confirmed change during which deliveries sent before it may still arrive.
  static constexpr int64_t kMarginMs = 1500;
  // The agreements file now says narrow/wide (written at t_ms); the hub may switch any time now.
  void BeginChange(bool narrow, int64_t t_ms);
  // The hub confirmed the change (admin reload answered, or its audit record appeared).
  void Confirm(int64_t t_ms);
  PolicyState At(int64_t t_ms) const;

 private:
  struct Change {
    bool narrow = false;
    int64_t written_ms = 0;
    int64_t confirmed_ms = INT64_MAX;
  };
  mutable std::mutex mu_;
  std::vector<Change> changes_;
};

// Milliseconds on the steady clock since the soak began (one epoch for every thread).
int64_t SoakNowMs();

// A problem the soak found: counted, the first few kept with their story.
class Findings {
 public:
  void Add(const std::string& what);
  uint64_t count() const;
  std::vector<std::string> first() const;

 private:
  mutable std::mutex mu_;
  uint64_t count_ = 0;
  std::vector<std::string> first_;
};

struct FeedCounters {
  uint64_t sessions = 0;
  uint64_t graceful_disconnects = 0;
  uint64_t kills_without_ack = 0;
  uint64_t replays_from_earliest = 0;
  uint64_t open_failures = 0;   // the hub was down or restarting
  uint64_t session_errors = 0;  // Next() failed mid-session
  uint64_t stalls = 0;          // a session heard nothing past the stall limit and was reopened
  uint64_t batches = 0;
  uint64_t deliveries = 0;  // events received, duplicates included
  uint64_t duplicates = 0;  // received again (at-least-once: counted, not failures)
  uint64_t distinct = 0;    // distinct hub_seqs received (after FinalCheck)
  uint64_t expected = 0;    // hub_seqs the agreement required (after FinalCheck)
  uint64_t missing = 0;     // required but never received (after FinalCheck)
  uint64_t forbidden = 0;   // received though the agreement forbade it
};

// Per hub_seq facts from the stopped hub's store, for FinalCheck: bit f of `wide` / `narrow` says
// feed f's agreement (wide or narrowed) covers the event's source and type.
struct SeqFacts {
  uint8_t wide = 0;
  uint8_t narrow = 0;
  bool opted_out = false;
  bool present = false;
  uint16_t route = 0;  // index into the route names given to FinalCheck
};

class FeedWorker {
 public:
  // `drop_every` > 0 makes the worker ignore every event whose hub_seq is a multiple of it, as
  // if those deliveries were lost: the soak's own check that FinalCheck notices (0: none).
  FeedWorker(size_t index, FeedRule rule, uint64_t seed, std::string endpoint, const Ledger* ledger,
             const PolicyTimeline* timeline, const std::set<uint64_t>* opted_out,
             Findings* findings, uint64_t drop_every = 0);

  // Churns until `stop` is set. A session that hears nothing for a while before
  // `traffic_stopped` is set is a finding.
  void Churn(const std::atomic<bool>& stop, const std::atomic<bool>& traffic_stopped);
  // Reads (resuming) until the hub has examined every event up to its head, acknowledging.
  Status CatchUp(std::chrono::milliseconds timeout);
  // Checks coverage and completeness against the store; `facts` is indexed by hub_seq.
  // `routes` names each SeqFacts::route ("publisher site type"), for the findings.
  void FinalCheck(const std::vector<SeqFacts>& facts, const std::vector<std::string>& routes);

  const FeedRule& rule() const { return rule_; }
  FeedCounters counters() const;
  // hub_seq examined so far (the highest scanned_to_seq seen).
  uint64_t scanned() const { return scanned_max_.load(); }
  uint64_t deliveries() const { return deliveries_.load(); }
  // Secondary use: the pseudonym each patient got (NHS number -> pseudonym).
  const std::map<uint64_t, std::string>& pseudonyms() const { return pseudonyms_; }

 private:
  struct Batch {
    uint64_t from = 0;  // first hub_seq examined (> to: the batch examined nothing new)
    uint64_t to = 0;
    int64_t at_ms = 0;
    uint32_t narrow_excluded = 0;  // events delivered that the narrowed agreement excludes
    uint32_t session = 0;
  };
  // The batches that examined `seq`, for a finding.
  std::string DescribeCoverage(uint64_t seq) const;
  void RunSession(const std::atomic<bool>& stop, const std::atomic<bool>& traffic_stopped);
  // Records and checks one batch; `prev_scanned` is what the session had examined before it.
  void Take(const std::vector<v1::DeliveredEvent>& events, uint64_t prev_scanned,
            uint64_t scanned_to);
  void CheckDelivered(const v1::DeliveredEvent& d, uint32_t* narrow_excluded);
  void Finding(const std::string& what);

  const size_t index_;
  const FeedRule rule_;
  std::mt19937_64 rng_;
  const std::string endpoint_;
  const Ledger* ledger_;
  const PolicyTimeline* timeline_;
  const std::set<uint64_t>* opted_out_;
  Findings* findings_;
  const uint64_t drop_every_;

  FeedCounters counters_;
  std::atomic<uint64_t> scanned_max_{0};
  std::atomic<uint64_t> deliveries_{0};
  std::vector<uint8_t> received_;  // by hub_seq: times received (saturating)
  std::vector<Batch> batches_;
  std::map<uint64_t, std::string> pseudonyms_;
  std::map<std::string, uint64_t> pseudonym_owner_;
};

// The soak's restarts tell the feeds when the hub goes down and is up again, so a session's
// silence while the hub restarts is not taken for a client that failed to resume.
void NoteHubDown();
void NoteHubUp();

}  // namespace carehub::soak
