#include "carehub/core/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <nlohmann/json.hpp>
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

// The daemons' JSON log: every line one JSON object, whatever the message holds. Found by an
// operator: a reload's change list carried raw newlines, so one record came out as two lines and
// neither parsed.
TEST(JsonLogTest, EveryMessageIsOneParsableLine) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(MakeLogFormatter("json"));
  auto logger = std::make_shared<spdlog::logger>("log_test.\"json\"", sink);
  const std::vector<std::string> messages = {
      "identities reloaded from /etc/carehub/identities.yaml: + rxk-pas\n- old-pas\n",
      "yaml error: \"bad\" at line 3, col 4 \\ tab\there\r",
      std::string("nul \0 and bell \a and del \x7f", 26),  // 26: the NUL is part of it
      "binary \xff\xfe\x80 and a cut sequence \xe2\x82",
      "UTF-8 stays: caf\xc3\xa9 \xe2\x82\xac",
  };
  for (const auto& m : messages) {
    logger->warn("{}", m);
  }
  std::istringstream lines(out.str());
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(parsed.is_discarded()) << "line " << n << " is not JSON: " << line;
    ASSERT_LT(n, messages.size());
    EXPECT_EQ(parsed.value("logger", ""), "log_test.\"json\"");
    EXPECT_EQ(parsed.value("level", ""), "warning");
    const std::string msg = parsed.value("msg", "");
    if (n < 3) {  // valid UTF-8 in, the same text out
      EXPECT_EQ(msg, messages[n]);
    } else if (n == 3) {
      EXPECT_EQ(msg,
                "binary \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd and a cut sequence "
                "\xef\xbf\xbd\xef\xbf\xbd");
    } else {
      EXPECT_EQ(msg, messages[n]);
    }
    ++n;
  }
  EXPECT_EQ(n, messages.size());
}

TEST(JsonLogTest, TextFormatKeepsTheMessageAsWritten) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(MakeLogFormatter("text"));
  spdlog::logger logger("log_test.text", sink);
  logger.info("a \"quoted\" word");
  EXPECT_NE(out.str().find("[log_test.text] a \"quoted\" word\n"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace carehub
