#pragma once
// RocksDB's own diagnostics go to the hub's "store" logger instead of a LOG file in the data dir:
// on a read-only or full filesystem a failed LOG write left RocksDB's logger in an error state and
// the next line aborted the process (Debian's 7.8 keeps assertions: "Assertion
// `sync_without_flush_called_' failed"). RocksDB's info lines (option dumps, flushes) are debug.
//
// Thread-safe (RocksDB logs from its background threads).

#include <rocksdb/env.h>
#include <spdlog/logger.h>

#include <memory>

namespace carehub::hub {

class SpdlogRocksLogger : public rocksdb::Logger {
 public:
  explicit SpdlogRocksLogger(std::shared_ptr<spdlog::logger> log);
  void Logv(const char* format, va_list ap) override;
  void Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) override;

 private:
  std::shared_ptr<spdlog::logger> log_;
};

// The "store" logger: the one the daemon registered, or spdlog's default logger when the store is
// opened by a tool or a test that registered none.
std::shared_ptr<spdlog::logger> StoreLog();

}  // namespace carehub::hub
