#include "carehub/core/status.h"

#include <gtest/gtest.h>

#include <string>

namespace carehub {
namespace {

Status FailIfNegative(int x, int* calls) {
  ++*calls;
  return x < 0 ? Status::Error("negative", std::to_string(x)) : Status::Ok();
}

Status Both(int a, int b, int* calls) {
  CAREHUB_RETURN_IF_ERROR(FailIfNegative(a, calls));
  CAREHUB_RETURN_IF_ERROR(FailIfNegative(b, calls));
  return Status::Ok();
}

Result<int> Sum(int a, int b, int* calls) {
  CAREHUB_RETURN_IF_ERROR(FailIfNegative(a, calls));
  CAREHUB_RETURN_IF_ERROR(FailIfNegative(b, calls));
  return a + b;
}

TEST(ReturnIfErrorTest, ReturnsTheFirstErrorAndStops) {
  int calls = 0;
  Status s = Both(-1, -2, &calls);
  EXPECT_EQ(s.code(), "negative");
  EXPECT_EQ(s.message(), "-1");
  EXPECT_EQ(calls, 1);
}

TEST(ReturnIfErrorTest, GoesOnWhenOkAndEvaluatesOnce) {
  int calls = 0;
  EXPECT_TRUE(Both(1, 2, &calls).ok());
  EXPECT_EQ(calls, 2);
}

TEST(ReturnIfErrorTest, WorksInFunctionsReturningResult) {
  int calls = 0;
  auto bad = Sum(1, -5, &calls);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "-5");
  auto good = Sum(1, 5, &calls);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value(), 6);
}

TEST(ResultTest, ValueAndErrorAreWhatTheySay) {
  Result<std::string> value(std::string("x"));
  EXPECT_TRUE(value.ok());
  EXPECT_TRUE(value.status().ok());
  Result<std::string> error(Status::Error("bad", "why"));
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.status().ToString(), "bad: why");
}

// A Result built from an OK status used to report ok() == false with an empty code.
#ifdef NDEBUG
TEST(ResultTest, FromOkStatusIsANamedInternalError) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), kInternalErrorCode);
  EXPECT_EQ(r.status().ToString(), "internal: Result built from an OK status");
}
#else
TEST(ResultDeathTest, FromOkStatusAsserts) {
  EXPECT_DEATH({ Result<int> r(Status::Ok()); }, "Result built from an OK status");
}
#endif

}  // namespace
}  // namespace carehub
