#pragma once
// Helpers the hub's store tests share.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub::hub::testing {

// The value of a read that must succeed (a failed read fails the test, visibly).
template <typename T>
T Ok(Result<T> result) {
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(result).value() : T{};
}

// A fresh, empty directory named for this process and the running test.
inline std::filesystem::path FreshTestDir(const std::string& prefix) {
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + "-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  return dir;
}

// `event` encoded with its envelope last: valid protobuf that parses to `event`, but not in the
// canonical field order — what an encoder that orders fields otherwise sends.
inline std::string EnvelopeLast(const v1::Event& event) {
  v1::Event envelope_only;
  *envelope_only.mutable_envelope() = event.envelope();
  v1::Event rest = event;
  rest.clear_envelope();
  return rest.SerializeAsString() + envelope_only.SerializeAsString();
}

}  // namespace carehub::hub::testing
