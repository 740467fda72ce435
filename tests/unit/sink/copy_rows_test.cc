#include "carehub/sink/copy_rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace carehub::sink {
namespace {

std::string Text(std::string_view value) {
  std::string out;
  size_t repaired = 0;
  AppendText(value, &out, &repaired);
  return out;
}

TEST(CopyRowsTest, EscapesWhatCopyTextFormatGivesMeaningTo) {
  EXPECT_EQ(Text("plain"), "plain");
  EXPECT_EQ(Text("a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
  // proto3 cannot tell empty from absent: both are NULL.
  EXPECT_EQ(Text(""), "\\N");
  // A literal "\N" is text, not NULL.
  EXPECT_EQ(Text("\\N"), "\\\\N");
}

TEST(CopyRowsTest, RepairsNulBytesAndInvalidUtf8AndCountsThem) {
  std::string out;
  size_t repaired = 0;
  AppendText(std::string("a\0b", 3), &out, &repaired);
  EXPECT_EQ(out, "ab");
  EXPECT_EQ(repaired, 1u);
  out.clear();
  AppendText("caf\xC3\xA9", &out, &repaired);  // valid UTF-8 passes unchanged
  EXPECT_EQ(out, "caf\xC3\xA9");
  EXPECT_EQ(repaired, 1u);
  out.clear();
  AppendText("bad\xC3(", &out, &repaired);  // truncated sequence
  EXPECT_EQ(out, "bad\xEF\xBF\xBD(");
  EXPECT_EQ(repaired, 2u);
  std::string fixed;
  EXPECT_TRUE(RepairUtf8("\xED\xA0\x80", &fixed));  // a UTF-16 surrogate is not UTF-8
  EXPECT_EQ(fixed, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(RepairUtf8("\xC0\xAF", &fixed));  // overlong encoding of '/'
  EXPECT_EQ(fixed.find('/'), std::string::npos);
}

TEST(CopyRowsTest, ArraysAreQuotedThenCopyEscaped) {
  std::string out;
  size_t repaired = 0;
  AppendTextArray({}, &out, &repaired);
  EXPECT_EQ(out, "\\N");
  out.clear();
  AppendTextArray({"http://snomed.info/sct|123", "a\"b", "c\\d", "x,y"}, &out, &repaired);
  // Array literal {"...","a\"b","c\\d","x,y"}, then every backslash doubled for COPY.
  EXPECT_EQ(out, "{\"http://snomed.info/sct|123\",\"a\\\\\"b\",\"c\\\\\\\\d\",\"x,y\"}");
}

TEST(CopyRowsTest, TimestampsAreUtcWithMicrosecondsAndUnsetIsNull) {
  std::string out;
  AppendTimestamp(0, 0, &out);
  EXPECT_EQ(out, "\\N");
  out.clear();
  AppendTimestamp(1'767'225'600, 123'456'789, &out);
  EXPECT_EQ(out, "2026-01-01 00:00:00.123456+00");
}

TEST(CopyRowsTest, OneEventRowAndOneBodyRowWithTheColumnCountsTheCopyNames) {
  v1::DeliveredEvent d;
  d.set_agreement_id("DSA-1");
  auto* env = d.mutable_event()->mutable_envelope();
  env->set_hub_seq(42);
  env->set_event_id("e-1");
  env->set_publisher_ods("RXK");
  env->set_lifecycle(v1::LIFECYCLE_UPDATE);
  env->set_supersedes_event_id("e-0");
  env->mutable_occurred_at()->set_seconds(1'767'225'600);
  env->mutable_patient()->set_pseudonym("abc");
  env->mutable_patient()->set_sex(v1::SEX_FEMALE);
  auto* a = d.mutable_event()->mutable_activity();
  a->set_kind(v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  a->set_encounter_id("enc\t1");
  CopyBuffers b;
  AppendRows(d, &b);
  EXPECT_EQ(b.event_rows, 1u);
  EXPECT_EQ(b.activity_rows, 1u);
  EXPECT_EQ(b.referral_rows, 0u);
  auto columns = [](const char* list) {
    return static_cast<size_t>(std::count(list, list + std::strlen(list), ',')) + 1;
  };
  auto fields = [](const std::string& row) {
    return static_cast<size_t>(std::count(row.begin(), row.end(), '\t')) + 1;
  };
  ASSERT_EQ(b.events.back(), '\n');
  EXPECT_EQ(fields(b.events.substr(0, b.events.size() - 1)), columns(kEventColumns));
  EXPECT_EQ(fields(b.activities.substr(0, b.activities.size() - 1)), columns(kActivityColumns));
  EXPECT_EQ(
      b.events.rfind("42\te-1\tRXK\t\\N\t\\N\tactivity.emergency_admission\tUPDATE\te-0\t", 0), 0u)
      << b.events;
  EXPECT_NE(b.events.find("\tabc\t"), std::string::npos);
  EXPECT_NE(b.events.find("\tfemale\t"), std::string::npos);
  EXPECT_EQ(b.activities.rfind("42\temergency_admission\tenc\\t1\t", 0), 0u) << b.activities;
}

}  // namespace
}  // namespace carehub::sink
