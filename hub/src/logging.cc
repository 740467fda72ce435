#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "hub.h"

namespace carehub::hub {

void SetUpLogging(const std::string& level, const std::string& format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  if (format == "json") {
    // One JSON object per line; messages are written by us and never contain quotes from input
    // unescaped, because input values are not logged above debug.
    sink->set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","thread":%t,"msg":"%v"})");
  } else {
    sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%n] %v");
  }
  for (const char* name : {"hub", "ingest", "store", "subscribe", "policy", "admin", "security",
                           "replication", "cluster"}) {
    if (spdlog::get(name)) {
      spdlog::drop(name);
    }
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::warn);
    spdlog::register_logger(logger);
  }
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace carehub::hub
