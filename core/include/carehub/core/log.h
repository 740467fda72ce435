#pragma once
// One named spdlog logger per component ("hl7", "adapter.csv", "publisher", ...), found the same
// way everywhere. Daemons register their loggers at start-up with their own sink, pattern and level
// (hub/src/logging.cc, adapters/main.cc); libraries, tests and fuzzers used to call
// spdlog::get(name)-> and crash on the null pointer whenever nobody had registered `name` first.
// Logger() never returns null: it returns the registered logger, or registers one that writes to
// the sinks of spdlog's default logger (stderr unless a program changed the default), at the
// registry's global level.
//
// Thread-safe. Safe to race with another thread that registers the same name (the other logger
// wins and is returned). Do not cache the result across a daemon's SetUpLogging: that replaces
// the registered loggers, and a cached pointer would keep writing to the old sink. The lookup is
// a mutex and a hash lookup inside spdlog, cheap but not free: hot paths log at debug at most.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace carehub {

std::shared_ptr<spdlog::logger> Logger(const std::string& name);

}  // namespace carehub
