#include "rocksdb_logger.h"

#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>

#include "carehub/core/log.h"

namespace carehub::hub {

SpdlogRocksLogger::SpdlogRocksLogger(std::shared_ptr<spdlog::logger> log)
    : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), log_(std::move(log)) {}

void SpdlogRocksLogger::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void SpdlogRocksLogger::Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  const auto mapped = level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::err
                      : level == rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::warn
                                                                   : spdlog::level::debug;
  if (!log_ || !log_->should_log(mapped)) {
    return;
  }
  char line[1024];
  std::vsnprintf(line, sizeof(line), format, ap);
  // The json log format writes messages unescaped: keep RocksDB's text to plain characters.
  for (char* c = line; *c != '\0'; ++c) {
    if (*c == '"' || *c == '\\' || static_cast<unsigned char>(*c) < 0x20) {
      *c = ' ';
    }
  }
  log_->log(mapped, "rocksdb: {}", line);
}

std::shared_ptr<spdlog::logger> StoreLog() { return carehub::Logger("store"); }

}  // namespace carehub::hub
