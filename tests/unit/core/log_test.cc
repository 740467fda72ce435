#include "carehub/core/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>
#include <thread>
#include <vector>

namespace carehub {
namespace {

TEST(LoggerTest, UnregisteredNameIsCreatedAndRegistered) {
  spdlog::drop("log_test.fresh");
  auto logger = Logger("log_test.fresh");
  ASSERT_NE(logger, nullptr);
  EXPECT_EQ(logger->name(), "log_test.fresh");
  EXPECT_EQ(spdlog::get("log_test.fresh"), logger);
  EXPECT_EQ(Logger("log_test.fresh"), logger);
}

TEST(LoggerTest, RegisteredLoggerIsReturnedAsIs) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_pattern("%n %v");
  spdlog::drop("log_test.daemon");
  auto registered = std::make_shared<spdlog::logger>("log_test.daemon", sink);
  spdlog::register_logger(registered);
  EXPECT_EQ(Logger("log_test.daemon"), registered);
  Logger("log_test.daemon")->warn("hello");
  EXPECT_EQ(out.str(), "log_test.daemon hello\n");
  spdlog::drop("log_test.daemon");
}

// A new logger writes where the default logger writes, with the default logger's pattern intact.
TEST(LoggerTest, NewLoggerSharesTheDefaultSinks) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_pattern("[%n] %v");
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("log_test.default", sink));
  spdlog::drop("log_test.component");
  Logger("log_test.component")->warn("one");
  spdlog::set_default_logger(previous);
  spdlog::drop("log_test.component");
  spdlog::drop("log_test.default");
  EXPECT_EQ(out.str(), "[log_test.component] one\n");
}

TEST(LoggerTest, NoDefaultLoggerStillGivesALogger) {
  auto previous = spdlog::default_logger();
  spdlog::drop("log_test.orphan");
  spdlog::drop_all();  // also clears the default logger
  auto logger = Logger("log_test.orphan");
  EXPECT_NE(logger, nullptr);
  spdlog::drop("log_test.orphan");
  spdlog::set_default_logger(previous);
}

TEST(LoggerTest, ConcurrentFirstUsesAgreeOnOneLogger) {
  spdlog::drop("log_test.race");
  std::vector<std::shared_ptr<spdlog::logger>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&got, i] { got[i] = Logger("log_test.race"); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& logger : got) {
    ASSERT_NE(logger, nullptr);
    EXPECT_EQ(logger, got[0]);
  }
  spdlog::drop("log_test.race");
}

}  // namespace
}  // namespace carehub
