// The delivery path's own encoders (hub/src/subscribe): the Delivery frame written as wire bytes
// must be what protobuf itself would build, the decode cache may only answer with the event
// whose bytes it was given, and a batch shared between sessions of one view is the decided one.

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "carehub/core/synthetic.h"
#include "carehub/hub/store.h"
#include "carehub/hub/store/event_codec.h"
#include "carehub/policy/load.h"
#include "carehub/v1/wire.pb.h"
#include "subscribe/decode_cache.h"
#include "subscribe/delivery_frame.h"
#include "subscribe/disclosure.h"
#include "subscribe/log_reader.h"
#include "subscribe/shared_scan.h"

namespace carehub::hub {
namespace {

using google::protobuf::util::MessageDifferencer;

// An event as the store holds it: canonical bytes + the hub's fields.
std::string StoredBytes(const v1::Event& event, uint64_t seq) {
  std::string bytes = CanonicalBytes(event);
  AppendHubFields(&bytes, seq,
                  std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)));
  return bytes;
}

TEST(DeliveryFrameTest, ParsesAsTheFrameProtobufWouldBuild) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event first = events.Next();
  const v1::Event second = events.Next();
  const std::string first_stored = StoredBytes(first, 300);

  DeliveryFrameWriter writer;
  writer.AddEvent(first_stored, "DSA-001");
  writer.AddEvent(second.SerializeAsString(), "DSA-002");
  EXPECT_EQ(writer.events(), 2u);

  v1::Frame expected;
  expected.set_version(v1::PROTOCOL_VERSION_1);
  auto* delivery = expected.mutable_delivery();
  auto* d1 = delivery->add_events();
  ASSERT_TRUE(d1->mutable_event()->ParseFromString(first_stored));
  EXPECT_EQ(d1->event().envelope().hub_seq(), 300u);
  d1->set_agreement_id("DSA-001");
  auto* d2 = delivery->add_events();
  *d2->mutable_event() = second;
  d2->set_agreement_id("DSA-002");
  delivery->set_scanned_to_seq(301);
  delivery->set_head_seq(70'000);
  delivery->set_epoch(12);

  v1::Frame parsed;
  ASSERT_TRUE(parsed.ParseFromString(writer.Finish(301, 70'000, 12)));
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, expected)) << parsed.DebugString();

  // Events given as protobuf's serialization, zero fields left out as proto3 does: the bytes are
  // protobuf's own. (A stored record is not byte-identical to a re-serialization, only equal once
  // parsed: its hub fields come after the canonical bytes.)
  DeliveryFrameWriter plain;
  plain.AddEvent(second.SerializeAsString(), "DSA-002");
  v1::Frame plain_expected;
  plain_expected.set_version(v1::PROTOCOL_VERSION_1);
  auto* only = plain_expected.mutable_delivery()->add_events();
  *only->mutable_event() = second;
  only->set_agreement_id("DSA-002");
  plain_expected.mutable_delivery()->set_head_seq(9);
  EXPECT_EQ(plain.Finish(0, 9, 0), plain_expected.SerializeAsString());
}

TEST(DeliveryFrameTest, AnEmptyBatchIsADeliveryWithProgressOnly) {
  DeliveryFrameWriter writer;
  v1::Frame parsed;
  ASSERT_TRUE(parsed.ParseFromString(writer.Finish(5, 9, 0)));
  ASSERT_TRUE(parsed.has_delivery());
  EXPECT_EQ(parsed.delivery().events_size(), 0);
  EXPECT_EQ(parsed.delivery().scanned_to_seq(), 5u);
  EXPECT_EQ(parsed.delivery().head_seq(), 9u);
}

TEST(DecodeCacheTest, AnswersOnlyForTheSameSeqAndBytes) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event a = events.Next();
  const v1::Event b = events.Next();
  const std::string a_stored = StoredBytes(a, 7);
  const std::string b_stored = StoredBytes(b, 7);  // same seq, other bytes (e.g. another store)

  DecodeCache cache(4);
  const DecodedEvent* first = cache.Decode(7, a_stored);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->event().envelope().event_id(), a.envelope().event_id());
  EXPECT_EQ(first->stored(), a_stored);
  EXPECT_EQ(cache.parses(), 1u);

  EXPECT_EQ(cache.Decode(7, a_stored), first);
  EXPECT_EQ(cache.hits(), 1u);

  const DecodedEvent* other = cache.Decode(7, b_stored);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->event().envelope().event_id(), b.envelope().event_id());
  EXPECT_EQ(cache.hits(), 1u);

  // 11 shares 7's slot (4 slots): it replaces it, and 7 is parsed again.
  ASSERT_NE(cache.Decode(11, a_stored), nullptr);
  const DecodedEvent* again = cache.Decode(7, b_stored);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->seq(), 7u);
  EXPECT_EQ(cache.parses(), 4u);
}

TEST(DecodeCacheTest, BytesThatAreNotAnEventAreRefusedEveryTime) {
  DecodeCache cache(4);
  const std::string junk("\xff\xff\xff\xff", 4);
  EXPECT_EQ(cache.Decode(3, junk), nullptr);
  EXPECT_EQ(cache.Decode(3, junk), nullptr);
  EXPECT_EQ(cache.hits(), 0u);
}

// The parsed event lives on an arena reset before each parse, whose first block is reused: each
// Decode must hold exactly its own event, whether it fits that block or not, and a failed parse
// must not leave the next one anything of it.
TEST(DecodedEventTest, EachDecodeHoldsExactlyItsOwnEventWhateverItsSize) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event small = events.Next();
  v1::Event large = events.Next();
  for (int i = 0; i < 400; ++i) {  // ~100 bytes each parsed: well past the arena's first block
    auto* d = large.mutable_activity()->add_diagnoses();
    d->set_system("http://snomed.info/sct");
    d->set_code(std::to_string(100000 + i));
    d->set_display("a diagnosis long enough to need its own buffer " + std::to_string(i));
  }
  const std::string small_stored = StoredBytes(small, 1);
  const std::string large_stored = StoredBytes(large, 2);
  ASSERT_GT(large_stored.size(), 16u << 10);
  const auto parsed = [](const std::string& bytes) {
    v1::Event e;
    EXPECT_TRUE(e.ParseFromString(bytes));
    return e;
  };

  DecodedEvent decoded;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(decoded.Decode(2, large_stored));
    EXPECT_TRUE(MessageDifferencer::Equals(decoded.event(), parsed(large_stored)));
    EXPECT_EQ(decoded.event().activity().diagnoses_size(), 400);
    ASSERT_TRUE(decoded.Decode(1, small_stored));
    EXPECT_TRUE(MessageDifferencer::Equals(decoded.event(), parsed(small_stored)));
    EXPECT_EQ(decoded.event().activity().diagnoses_size(), small.activity().diagnoses_size());
    EXPECT_FALSE(decoded.Decode(3, large_stored.substr(0, large_stored.size() / 2)));
    EXPECT_EQ(decoded.seq(), 0u);
  }
  ASSERT_TRUE(decoded.Decode(1, small_stored));
  EXPECT_TRUE(MessageDifferencer::Equals(decoded.event(), parsed(small_stored)));
  EXPECT_EQ(decoded.stored(), small_stored);
}

TEST(DecodedEventTest, PatientKeysAreTheHashersAndComputedOnce) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event event = events.Next();
  ASSERT_FALSE(event.envelope().patient().nhs_number().empty());
  std::array<unsigned char, 32> secret{};
  secret[0] = 1;
  const PatientHasher hasher(secret);
  std::vector<std::string> expected;
  hasher.KeysOf(event, &expected);
  ASSERT_FALSE(expected.empty());

  DecodedEvent decoded;
  ASSERT_TRUE(decoded.Decode(1, StoredBytes(event, 1)));
  EXPECT_EQ(decoded.PatientKeys(hasher), expected);
  // Computed once: a second call does not hash again (another hasher would give other keys).
  std::array<unsigned char, 32> other_secret{};
  other_secret[0] = 2;
  const PatientHasher other(other_secret);
  ASSERT_NE(other.ForNhsNumber(event.envelope().patient().nhs_number()), expected[0]);
  EXPECT_EQ(decoded.PatientKeys(other), expected);
  EXPECT_EQ(decoded.PatientKeys(hasher)[0],
            hasher.ForNhsNumber(event.envelope().patient().nhs_number()));
}

// Each session decides the event under one PolicySet; its sources are looked up once per PolicySet
// (by id, so a reloaded policy never sees another's), and a new event starts afresh.
TEST(DecodedEventTest, SourcesAreResolvedOncePerPolicySetAndPerEvent) {
  const std::string yaml = R"(subscribers:
  - id: lth
    subscriptions:
      - {id: lth-care, purpose: direct_care}
agreements:
  - id: DSA-1
    subscriber: lth
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["RXK", "RR8"]
    event_types: ["*"]
    patient_fields: identifiable
)";
  auto first = policy::LoadPolicyFromString(yaml, std::filesystem::temp_directory_path());
  auto reloaded = policy::LoadPolicyFromString(yaml, std::filesystem::temp_directory_path());
  ASSERT_TRUE(first.ok() && reloaded.ok());
  ASSERT_NE(first.value()->id(), reloaded.value()->id());
  v1::Event rxk;
  rxk.mutable_envelope()->set_event_id("e1");
  rxk.mutable_envelope()->set_publisher_ods("RXK");
  rxk.mutable_activity()->set_kind(v1::ACTIVITY_KIND_DISCHARGE);
  v1::Event rr8 = rxk;
  rr8.mutable_envelope()->set_publisher_ods("RR8");
  rr8.mutable_envelope()->set_site_ods("RXK");
  const auto same = [](const policy::EventSources& a, const policy::EventSources& b) {
    return a.policy_id == b.policy_id && a.publisher == b.publisher && a.site == b.site &&
           a.type_bit == b.type_bit;
  };

  DecodedEvent decoded;
  ASSERT_TRUE(decoded.Decode(1, StoredBytes(rxk, 1)));
  EXPECT_TRUE(same(decoded.SourcesFor(*first.value()), first.value()->SourcesOf(rxk)));
  EXPECT_TRUE(same(decoded.SourcesFor(*reloaded.value()), reloaded.value()->SourcesOf(rxk)));
  ASSERT_TRUE(decoded.Decode(2, StoredBytes(rr8, 2)));
  const policy::EventSources& after = decoded.SourcesFor(*reloaded.value());
  EXPECT_TRUE(same(after, reloaded.value()->SourcesOf(rr8)));
  EXPECT_NE(after.publisher, reloaded.value()->SourcesOf(rxk).publisher);
}

// A fresh store in a temp dir named after the running test, removed after it.
class FreshStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("carehub-delivery-test-" + std::to_string(::getpid()) + "-" + test->test_suite_name() +
            "-" + test->name());
    std::filesystem::remove_all(dir_);
    auto store = Store::Open(StoreOptions{dir_});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

// Sessions reading the log together (shared_scan.h): a real store holding seqs 1..100 with a gap at
// 50 and a record that is not an event at 60.
class SharedScanTest : public FreshStoreTest {
 protected:
  void SetUp() override {
    FreshStoreTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    SyntheticGenerator events(SyntheticOptions{});
    WriteBatch batch;
    for (uint64_t seq = 1; seq <= 100; ++seq) {
      if (seq == 50) {
        continue;
      }
      const v1::Event event = events.Next();
      ids_[seq] = event.envelope().event_id();
      store_->events().Add(
          &batch, seq, seq == 60 ? std::string("\xff\xff\xff\xff", 4) : StoredBytes(event, seq));
    }
    ids_.erase(60);
    ASSERT_TRUE(store_->Commit(&batch, false).ok());
  }

  // A member that records the seqs it takes and stops after `limit` of them.
  ScanMember Member(uint64_t from, std::vector<uint64_t>* taken, size_t limit, bool full_ends) {
    return {from,
            [this, taken, limit](const DecodedEvent& e) {
              EXPECT_EQ(e.event().envelope().event_id(), ids_[e.seq()]) << "seq " << e.seq();
              taken->push_back(e.seq());
              return taken->size() < limit;
            },
            full_ends, 0};
  }
  // The event seqs in [from, to], as reading alone would pass them.
  std::vector<uint64_t> Events(uint64_t from, uint64_t to) const {
    std::vector<uint64_t> out;
    for (const auto& [seq, id] : ids_) {
      if (seq >= from && seq <= to) {
        out.push_back(seq);
      }
    }
    return out;
  }

  std::map<uint64_t, std::string> ids_;  // seq -> event id, events only
};

TEST_F(SharedScanTest, EachMemberGetsWhatItWouldReadAloneAndEachEventIsParsedOnce) {
  std::vector<uint64_t> a, b, c;
  std::vector<ScanMember> members = {Member(1, &a, 1000, true), Member(30, &b, 1000, true),
                                     Member(101, &c, 1000, true)};
  DecodeCache cache(8);  // far fewer slots than events: sharing must not depend on the cache
  ASSERT_TRUE(ScanTogether(*store_, cache, members, 100, 20'000).ok());
  EXPECT_EQ(a, Events(1, 100));
  EXPECT_EQ(b, Events(30, 100));
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(members[0].scanned_to, 100u);
  EXPECT_EQ(members[1].scanned_to, 100u);
  EXPECT_EQ(members[2].scanned_to, 100u);  // from - 1: nothing of it was read
  // 99 records (98 events and the one that is not), each parsed once for both readers.
  EXPECT_EQ(cache.parses(), 99u);
}

TEST_F(SharedScanTest, AMemberFullAtTheCapEndsTheScanForAllAtTheSameSeq) {
  std::vector<uint64_t> broad, other;
  std::vector<ScanMember> members = {Member(5, &other, 1000, true), Member(10, &broad, 20, true)};
  DecodeCache cache(128);
  ASSERT_TRUE(ScanTogether(*store_, cache, members, 100, 20'000).ok());
  ASSERT_EQ(broad.size(), 20u);
  const uint64_t full_at = broad.back();
  EXPECT_EQ(broad, Events(10, full_at));
  EXPECT_EQ(members[1].scanned_to, full_at);
  // The other member read up to the same seq, not past it: both resume together.
  EXPECT_EQ(other, Events(5, full_at));
  EXPECT_EQ(members[0].scanned_to, full_at);
}

TEST_F(SharedScanTest, AMemberOutOfCreditDropsOutAndTheOthersReadOn) {
  std::vector<uint64_t> short_of_credit, other;
  std::vector<ScanMember> members = {Member(1, &short_of_credit, 3, false),
                                     Member(1, &other, 1000, true)};
  DecodeCache cache(128);
  ASSERT_TRUE(ScanTogether(*store_, cache, members, 70, 20'000).ok());
  EXPECT_EQ(short_of_credit, Events(1, 3));
  EXPECT_EQ(members[0].scanned_to, 3u);
  EXPECT_EQ(other, Events(1, 70));
  EXPECT_EQ(members[1].scanned_to, 70u);
}

// A narrow plan reads through the route index: the seqs of its routes merged in order, only as far
// as the reader takes them. Seqs 1..300 are filed under three routes by seq % 3 (seq 150 is not
// stored: retention removed it after it was filed); the plan covers two of them.
class RouteReadTest : public FreshStoreTest {
 protected:
  void SetUp() override {
    FreshStoreTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    SyntheticGenerator events(SyntheticOptions{});
    WriteBatch batch;
    for (uint64_t seq = 1; seq <= 300; ++seq) {
      const RouteKey& route = routes_[seq % 3];
      store_->routes().Add(&batch, RoutePrefix(route), seq);
      if (seq != 150) {
        store_->events().Add(&batch, seq, StoredBytes(events.Next(), seq));
      }
    }
    ASSERT_TRUE(store_->Commit(&batch, false).ok());
    plan_.use_route_index = true;
    plan_.routes = {routes_[2], routes_[0]};  // not in seq order: the read merges them
  }

  // What the plan covers in [from, to]: seq % 3 is 0 or 2, seq 150 excepted.
  static std::vector<uint64_t> Covered(uint64_t from, uint64_t to) {
    std::vector<uint64_t> out;
    for (uint64_t seq = from; seq <= to; ++seq) {
      if (seq % 3 != 1 && seq != 150) {
        out.push_back(seq);
      }
    }
    return out;
  }

  // Reads from `from` taking at most `take` events; appends them to `taken`.
  Result<uint64_t> Read(uint64_t from, uint64_t head, uint32_t max_examined, size_t take,
                        std::vector<uint64_t>* taken) {
    size_t n = 0;
    return ReadLog(plan_, *store_, from, head, max_examined,
                   [&](uint64_t seq, std::string_view bytes) {
                     EXPECT_FALSE(bytes.empty());
                     taken->push_back(seq);
                     return ++n < take;
                   });
  }

  const RouteKey routes_[3] = {{"RXA", "RXA", "activity.admission"},
                               {"RXB", "RXB", "activity.admission"},
                               {"RXC", "RXC01", "referral.created"}};
  ReadPlan plan_;
};

TEST_F(RouteReadTest, PassesEveryCoveredEventInSeqOrderAndReportsTheHead) {
  std::vector<uint64_t> taken;
  auto read_to = Read(1, 300, 20'000, 100'000, &taken);
  ASSERT_TRUE(read_to.ok()) << read_to.status().ToString();
  EXPECT_EQ(taken, Covered(1, 300));
  EXPECT_EQ(*read_to, 300u);
  // Below the head too: the routes are read to `head`, not to their end.
  taken.clear();
  read_to = Read(40, 200, 20'000, 100'000, &taken);
  ASSERT_TRUE(read_to.ok());
  EXPECT_EQ(taken, Covered(40, 200));
  EXPECT_EQ(*read_to, 200u);
}

TEST_F(RouteReadTest, AReaderThatStopsResumesAfterTheLastEventItTook) {
  std::vector<uint64_t> taken;
  uint64_t from = 1;
  int rounds = 0;
  while (from <= 300 && rounds < 100) {
    ++rounds;
    std::vector<uint64_t> round;
    auto read_to = Read(from, 300, 20'000, 7, &round);
    ASSERT_TRUE(read_to.ok());
    if (*read_to < 300) {
      ASSERT_EQ(round.size(), 7u);
      EXPECT_EQ(*read_to, round.back());  // the event that filled it: nothing past it was taken
    }
    taken.insert(taken.end(), round.begin(), round.end());
    from = *read_to + 1;
  }
  EXPECT_EQ(taken, Covered(1, 300));
  EXPECT_EQ(rounds, static_cast<int>((Covered(1, 300).size() + 6) / 7));
}

TEST_F(RouteReadTest, ExaminesAtMostTheLimitAndSaysHowFarItRead) {
  std::vector<uint64_t> taken;
  auto read_to = Read(1, 300, 10, 100'000, &taken);
  ASSERT_TRUE(read_to.ok());
  const auto covered = Covered(1, 300);
  EXPECT_EQ(taken, std::vector<uint64_t>(covered.begin(), covered.begin() + 10));
  EXPECT_EQ(*read_to, covered[9]);
  // The missing seq 150 is filed but not stored: examined, not passed.
  taken.clear();
  read_to = Read(149, 300, 2, 100'000, &taken);
  ASSERT_TRUE(read_to.ok());
  EXPECT_EQ(taken, std::vector<uint64_t>{149});
  EXPECT_EQ(*read_to, 150u);
}

// Two sessions of one view (subscription view, policy::PolicySet::ViewOf) reading the same range:
// the second takes the first's decided batch (disclosure.h, ShareFrom) and both send one frame.
class SharedBatchTest : public FreshStoreTest {
 protected:
  void SetUp() override {
    FreshStoreTest::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    std::ofstream(dir_ / "pseudonym.key") << std::string(64, 'c') << "\n";
    std::ofstream opt_out(dir_ / "opt-out.txt");
    for (uint32_t n = 0; n < 10; ++n) {
      opt_out << SyntheticNhsNumber(n) << "\n";
    }
    opt_out.close();
    auto policy = policy::LoadPolicyFromString(R"(subscribers:
  - id: ics
    subscriptions:
      - {id: ics-feed, purpose: secondary_use}
      - {id: ics-feed-standby, purpose: secondary_use}
agreements:
  - id: DSA-SU
    subscriber: ics
    purpose: secondary_use
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: pseudonymised
pseudonymisation:
  secret_file: pseudonym.key
opt_out:
  file: opt-out.txt
)",
                                               dir_);
    ASSERT_TRUE(policy.ok()) << policy.status().ToString();
    policy_ = policy.value();
    ASSERT_TRUE(store_->disclosures().EnsureKey().ok());
    auto hasher = store_->disclosures().Hasher();
    ASSERT_TRUE(hasher.ok()) << hasher.status().ToString();
    hasher_.emplace(hasher.value());
  }

  std::shared_ptr<const policy::PolicySet> policy_;
  std::optional<PatientHasher> hasher_;
};

TEST_F(SharedBatchTest, ASharedBatchIsTheDecidedOneAndItsFrameIsEncodedOnce) {
  const auto* feed = policy_->FindSubscription("ics-feed");
  const auto* standby = policy_->FindSubscription("ics-feed-standby");
  ASSERT_TRUE(feed && standby);
  ASSERT_EQ(policy_->ViewOf(*feed), policy_->ViewOf(*standby));
  const auto now = std::chrono::system_clock::now();
  DeliveryBatch decided(*policy_, *feed, *hasher_, now, 1000);
  DeliveryBatch taken(*policy_, *standby, *hasher_, now, 1000);
  SyntheticOptions so;
  so.population = 40;  // a quarter of the patients opted out
  SyntheticGenerator events(so);
  DecodeCache cache(8);
  for (uint64_t seq = 1; seq <= 200; ++seq) {
    const DecodedEvent* e = cache.Decode(seq, StoredBytes(events.Next(), seq));
    ASSERT_NE(e, nullptr);
    decided.Consider(*e);
  }
  ASSERT_GT(decided.delivered(), 0u);
  ASSERT_GT(decided.withheld_total(), 0u);
  taken.ShareFrom(decided);

  EXPECT_EQ(taken.delivered(), decided.delivered());
  EXPECT_EQ(taken.withheld(), decided.withheld());
  EXPECT_EQ(&taken.filings(), &decided.filings());  // the same filings, not a copy
  // One encoding for both, per progress reported; another progress is another frame.
  const auto frame = decided.Frame(200, 200, 1);
  EXPECT_EQ(taken.Frame(200, 200, 1).get(), frame.get());
  const auto later = taken.Frame(200, 250, 1);
  EXPECT_NE(later.get(), frame.get());
  v1::Frame parsed;
  ASSERT_TRUE(parsed.ParseFromString(*later));
  EXPECT_EQ(parsed.delivery().head_seq(), 250u);
  ASSERT_EQ(static_cast<uint64_t>(parsed.delivery().events_size()), decided.delivered());
  for (const auto& d : parsed.delivery().events()) {
    EXPECT_EQ(d.agreement_id(), "DSA-SU");
    EXPECT_TRUE(d.event().envelope().patient().nhs_number().empty());
  }
  // Each is its own disclosure in the audit trail: its own subscription, the same counts.
  const auto record = taken.AuditRecord("delivery", now, "ics", "ics-feed-standby", 1, 200);
  EXPECT_EQ(record.subscription(), "ics-feed-standby");
  EXPECT_EQ(record.delivered(), decided.delivered());
  EXPECT_EQ(record.agreement(), "DSA-SU");
  EXPECT_EQ(record.withheld_by_reason().at("national_data_opt_out"), decided.withheld_total());
}

}  // namespace
}  // namespace carehub::hub
