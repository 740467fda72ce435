// The durable event-number file: numbers are positions, survive reopening, a torn tail (a crash in
// the middle of an append) is cut, and damage a crash cannot explain is refused.

#include "carehub/notify/event_numbers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace carehub::notify {
namespace {

class EventNumbersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/carehub-event-numbers-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "sub.events";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<EventNumbers> Open() {
    auto n = EventNumbers::Open(path_);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? std::move(n).value() : nullptr;
  }

  std::filesystem::path dir_;
  std::filesystem::path path_;
};

TEST_F(EventNumbersTest, NumbersArePositionsAndSurviveReopening) {
  {
    auto n = Open();
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->Count(), 0u);
    auto first = n->Append({10, 12, 15});
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.value(), 1u);
    auto next = n->Append({40});
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next.value(), 4u);
  }
  auto n = Open();
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->Count(), 4u);
  EXPECT_EQ(n->LastHubSeq(), 40u);
  EXPECT_EQ(n->HubSeqOf(1).value(), 10u);
  EXPECT_EQ(n->HubSeqOf(4).value(), 40u);
  EXPECT_FALSE(n->HubSeqOf(0).ok());
  EXPECT_FALSE(n->HubSeqOf(5).ok());
  EXPECT_EQ(n->NumberOf(15).value(), std::optional<uint64_t>(3));
  EXPECT_EQ(n->NumberOf(14).value(), std::nullopt);
  EXPECT_EQ(n->NumberOf(99).value(), std::nullopt);
  EXPECT_EQ(n->FirstNumberAfter(0).value(), 1u);
  EXPECT_EQ(n->FirstNumberAfter(12).value(), 3u);
  EXPECT_EQ(n->FirstNumberAfter(13).value(), 3u);
  EXPECT_EQ(n->FirstNumberAfter(40).value(), 5u);
}

TEST_F(EventNumbersTest, RefusesHubSeqsThatDoNotIncrease) {
  auto n = Open();
  ASSERT_TRUE(n->Append({5, 6}).ok());
  EXPECT_FALSE(n->Append({6}).ok());
  EXPECT_FALSE(n->Append({9, 8}).ok());
  EXPECT_EQ(n->Count(), 2u);
}

TEST_F(EventNumbersTest, TornTailIsCutAndNumberingContinuesAfterIt) {
  {
    auto n = Open();
    ASSERT_TRUE(n->Append({1, 2, 3}).ok());
  }
  // A crash mid-append: part of a fourth record reached the file.
  {
    std::ofstream out(path_, std::ios::binary | std::ios::app);
    out.write("\x07\x00\x00\x00\x00\x00\x00", 7);
  }
  EXPECT_EQ(std::filesystem::file_size(path_), 3 * 16 + 7u);
  auto n = Open();
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->Count(), 3u);
  EXPECT_EQ(std::filesystem::file_size(path_), 3 * 16u);
  EXPECT_EQ(n->Append({7}).value(), 4u);
  EXPECT_EQ(n->HubSeqOf(4).value(), 7u);
}

TEST_F(EventNumbersTest, AWholeLastRecordThatDoesNotCheckIsCut) {
  {
    auto n = Open();
    ASSERT_TRUE(n->Append({1, 2}).ok());
  }
  {
    std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(16 + 9);
    f.put('\x55');
  }
  auto n = Open();
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->Count(), 1u);
}

TEST_F(EventNumbersTest, DamageBeforeTheLastRecordIsRefused) {
  {
    auto n = Open();
    ASSERT_TRUE(n->Append({1, 2, 3}).ok());
  }
  {
    std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(3);
    f.put('\x55');
  }
  auto n = EventNumbers::Open(path_);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), "corrupt");
}

}  // namespace
}  // namespace carehub::notify
