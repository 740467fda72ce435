// PendingKeys: the dedup keys of batches in flight. A claim holds a view of bytes its batch owns,
// so the tests check that a claimed key is found for as long as its batch keeps it — through many
// later claims, with short keys (kept inside std::string itself) as well as long ones.

#include "carehub/hub/pending_keys.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>

namespace carehub::hub {
namespace {

PendingKeys::Entry EntryFor(uint64_t seq) {
  PendingKeys::Entry e{seq, {}};
  e.hash[0] = static_cast<uint8_t>(seq);
  e.hash[15] = static_cast<uint8_t>(seq >> 8);
  return e;
}

TEST(PendingKeys, AClaimIsFoundUntilItsBatchReleasesIt) {
  PendingKeys pending;
  std::deque<std::string> batch;
  std::string key = "RXX|evt-1";
  EXPECT_FALSE(pending.Find(key).has_value());
  EXPECT_FALSE(pending.Claim(&key, EntryFor(7), &batch).has_value());
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.back(), "RXX|evt-1");
  auto found = pending.Find("RXX|evt-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->hub_seq, 7u);
  EXPECT_EQ(found->hash, EntryFor(7).hash);
  pending.Release(batch);
  EXPECT_FALSE(pending.Find("RXX|evt-1").has_value());
  EXPECT_EQ(pending.size(), 0u);
}

TEST(PendingKeys, ASecondClaimGetsTheFirstAndChangesNothing) {
  PendingKeys pending;
  std::deque<std::string> first;
  std::deque<std::string> second;
  std::string a = "RXX|same";
  ASSERT_FALSE(pending.Claim(&a, EntryFor(1), &first).has_value());
  std::string b = "RXX|same";
  auto prior = pending.Claim(&b, EntryFor(2), &second);
  ASSERT_TRUE(prior.has_value());
  EXPECT_EQ(prior->hub_seq, 1u);
  EXPECT_EQ(b, "RXX|same");  // not moved: the caller still has it
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(pending.Find("RXX|same")->hub_seq, 1u);
}

// Short keys live inside the std::string object: if the owner moved its strings as it grew, the
// views of the first claims would read other bytes. 20,000 claims grow the deque and rehash the
// table many times over.
TEST(PendingKeys, ClaimsStayFindableWhileTheirOwnersGrow) {
  PendingKeys pending;
  std::deque<std::string> short_keys;
  std::deque<std::string> long_keys;
  constexpr int kKeys = 20'000;
  for (int i = 0; i < kKeys; ++i) {
    std::string s = "k" + std::to_string(i);
    ASSERT_FALSE(pending.Claim(&s, EntryFor(i), &short_keys).has_value());
    std::string l = "RXX|a-rather-long-event-id-that-is-heap-allocated-" + std::to_string(i);
    ASSERT_FALSE(pending.Claim(&l, EntryFor(kKeys + i), &long_keys).has_value());
  }
  EXPECT_EQ(pending.size(), 2u * kKeys);
  for (int i = 0; i < kKeys; ++i) {
    auto s = pending.Find("k" + std::to_string(i));
    ASSERT_TRUE(s.has_value()) << i;
    EXPECT_EQ(s->hub_seq, static_cast<uint64_t>(i));
    auto l = pending.Find("RXX|a-rather-long-event-id-that-is-heap-allocated-" + std::to_string(i));
    ASSERT_TRUE(l.has_value()) << i;
    EXPECT_EQ(l->hub_seq, static_cast<uint64_t>(kKeys + i));
  }
  // One batch released, the other's claims untouched.
  pending.Release(short_keys);
  EXPECT_EQ(pending.size(), static_cast<size_t>(kKeys));
  EXPECT_FALSE(pending.Find("k0").has_value());
  EXPECT_TRUE(pending.Find("RXX|a-rather-long-event-id-that-is-heap-allocated-0").has_value());
  // A released key can be claimed again, by a later batch.
  std::deque<std::string> later;
  std::string again = "k0";
  EXPECT_FALSE(pending.Claim(&again, EntryFor(99), &later).has_value());
  EXPECT_EQ(pending.Find("k0")->hub_seq, 99u);
}

TEST(PendingKeys, ClearForgetsEveryClaim) {
  PendingKeys pending;
  std::deque<std::string> batch;
  for (int i = 0; i < 100; ++i) {
    std::string k = "RXX|" + std::to_string(i);
    ASSERT_FALSE(pending.Claim(&k, EntryFor(i), &batch).has_value());
  }
  pending.Clear();
  EXPECT_EQ(pending.size(), 0u);
  EXPECT_FALSE(pending.Find("RXX|5").has_value());
}

}  // namespace
}  // namespace carehub::hub
