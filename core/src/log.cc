#include "carehub/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "carehub/core/mutex.h"

namespace carehub {

std::shared_ptr<spdlog::logger> Logger(const std::string& name) {
  if (auto found = spdlog::get(name)) {
    return found;
  }
  // Serialises our own first uses, so two threads asking for the same new name do not both try
  // to register it. Registrations made elsewhere (a daemon's SetUpLogging) do not take this
  // mutex: register_logger throws if one got in first, and that logger is then returned.
  static Mutex mu;
  MutexLock lock(mu);
  if (auto found = spdlog::get(name)) {
    return found;
  }
  std::shared_ptr<spdlog::logger> logger;
  if (auto fallback = spdlog::default_logger()) {
    // clone() shares the sinks, keeps their formatter and takes the default logger's level (which
    // spdlog::set_level keeps equal to the global one). Not spdlog::initialize_logger: it would set
    // the registry's default pattern on those shared sinks, i.e. on the daemon's own sink.
    logger = fallback->clone(name);
  } else {
    // spdlog::shutdown() or drop_all() leave no default logger (and spdlog::get_level() would
    // then dereference null, so the level stays spdlog's default).
    logger = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  }
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    if (auto found = spdlog::get(name)) {
      return found;
    }
    // Registered and dropped again in between: ours is still a working logger, unregistered.
  }
  return logger;
}

}  // namespace carehub
