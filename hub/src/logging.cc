#include <spdlog/spdlog.h>

#include "carehub/core/log.h"
#include "hub.h"

namespace carehub::hub {

void SetUpLogging(const std::string& level, const std::string& format) {
  auto sink = carehub::MakeStderrLogSink(format);
  std::shared_ptr<spdlog::logger> hub_logger;
  for (const char* name : {"hub", "ingest", "store", "subscribe", "policy", "admin", "security",
                           "replication", "cluster"}) {
    if (spdlog::get(name)) {
      spdlog::drop(name);
    }
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::warn);
    spdlog::register_logger(logger);
    if (hub_logger == nullptr) {
      hub_logger = logger;
    }
  }
  // carehub::Logger(name) clones the default logger for a name not registered above (a library's
  // own logger): with the hub's logger as the default, such lines share the sink and its format
  // too, instead of spdlog's own pattern breaking a JSON log.
  spdlog::set_default_logger(hub_logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace carehub::hub
