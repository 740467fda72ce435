#include "carehub/hub/store/power_cut.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "carehub/core/mutex.h"

namespace carehub::hub {
namespace {

bool IsWalFile(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
}

// What the disk holds of each file this process wrote: `written` bytes reached the OS, `synced`
// of them were fsync'd.
struct FileState {
  uint64_t written = 0;
  uint64_t synced = 0;
};

class PowerCutFileSystem : public rocksdb::FileSystemWrapper {
 public:
  PowerCutFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base, uint64_t cut_at)
      : FileSystemWrapper(base), cut_at_(cut_at) {}
  const char* Name() const override { return "PowerCutFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    auto s = target()->NewWritableFile(name, options, &file, dbg);
    if (s.ok()) {
      MutexLock lock(mu_);
      files_[name] = FileState{};  // created or truncated: nothing of it is on the disk yet
      *result = std::make_unique<File>(std::move(file), this, name);
    }
    return s;
  }

  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    auto s = target()->ReopenWritableFile(name, options, &file, dbg);
    if (s.ok()) {
      MutexLock lock(mu_);
      if (files_.find(name) == files_.end()) {
        // Written before this process: all of it is on the disk.
        const uint64_t size = file->GetFileSize(rocksdb::IOOptions(), dbg);
        files_[name] = FileState{size, size};
      }
      *result = std::make_unique<File>(std::move(file), this, name);
    }
    return s;
  }

  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    auto s = target()->RenameFile(from, to, options, dbg);
    if (s.ok()) {
      MutexLock lock(mu_);
      auto it = files_.find(from);
      if (it != files_.end()) {
        files_[to] = it->second;
        files_.erase(it);
      } else {
        files_.erase(to);
      }
    }
    return s;
  }

  rocksdb::IOStatus DeleteFile(const std::string& name, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    auto s = target()->DeleteFile(name, options, dbg);
    if (s.ok()) {
      MutexLock lock(mu_);
      files_.erase(name);
    }
    return s;
  }

 private:
  // Forwards to the real file and keeps the FileState of `name` up to date.
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, PowerCutFileSystem* fs, std::string name)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), name_(std::move(name)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      // Held across the write: once the cut has begun, nothing more reaches the disk.
      MutexLock lock(fs_->mu_);
      fs_->MaybeCut(name_);
      auto s = target()->Append(data, options, dbg);
      if (s.ok()) {
        fs_->files_[name_].written += data.size();
      }
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& /*info*/,
                             rocksdb::IODebugContext* dbg) override {
      return Append(data, options, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& /*data*/, uint64_t /*offset*/,
                                       const rocksdb::IOOptions& /*options*/,
                                       rocksdb::IODebugContext* /*dbg*/) override {
      return rocksdb::IOStatus::NotSupported("PowerCutFileSystem: PositionedAppend");
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& /*data*/, uint64_t /*offset*/,
                                       const rocksdb::IOOptions& /*options*/,
                                       const rocksdb::DataVerificationInfo& /*info*/,
                                       rocksdb::IODebugContext* /*dbg*/) override {
      return rocksdb::IOStatus::NotSupported("PowerCutFileSystem: PositionedAppend");
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
      MutexLock lock(fs_->mu_);
      auto s = target()->Truncate(size, options, dbg);
      if (s.ok()) {
        auto& state = fs_->files_[name_];
        state.written = size;
        state.synced = std::min(state.synced, size);
      }
      return s;
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      return Synced([&] { return target()->Sync(options, dbg); });
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      return Synced([&] { return target()->Fsync(options, dbg); });
    }
    // sync_file_range starts writeback; it promises nothing about what survives a power cut.

   private:
    // Runs the real sync without the lock (appends may go on meanwhile), then records that what
    // was written before it started is on the disk. A cut during the sync keeps the older mark:
    // the caller was never told the sync succeeded.
    template <typename Fn>
    rocksdb::IOStatus Synced(Fn sync) {
      uint64_t covered = 0;
      {
        MutexLock lock(fs_->mu_);
        covered = fs_->files_[name_].written;
      }
      auto s = sync();
      if (s.ok()) {
        MutexLock lock(fs_->mu_);
        auto& state = fs_->files_[name_];
        state.synced = std::max(state.synced, std::min(covered, state.written));
      }
      return s;
    }

    PowerCutFileSystem* fs_;
    std::string name_;
  };

  // At the cut_at-th log append: cut every file back to what was synced, then die.
  void MaybeCut(const std::string& name) CAREHUB_REQUIRES(mu_) {
    if (!IsWalFile(name) || ++wal_appends_ != cut_at_) {
      return;
    }
    for (const auto& [path, state] : files_) {
      if (state.written > state.synced) {
        (void)!::truncate(path.c_str(), static_cast<off_t>(state.synced));
      }
    }
    std::fprintf(stderr, "CAREHUB_POWER_CUT_AT=%llu: power cut (unsynced writes dropped)\n",
                 static_cast<unsigned long long>(cut_at_));
    std::fflush(stderr);
    ::kill(::getpid(), SIGKILL);
    while (true) {
      ::pause();  // SIGKILL cannot be caught; nothing after the cut may run
    }
  }

  const uint64_t cut_at_;
  Mutex mu_;
  std::map<std::string, FileState> files_ CAREHUB_GUARDED_BY(mu_);
  uint64_t wal_appends_ CAREHUB_GUARDED_BY(mu_) = 0;
};

}  // namespace

rocksdb::Env* PowerCutEnvFromEnvironment() {
  static rocksdb::Env* const env = []() -> rocksdb::Env* {
    const char* value = std::getenv("CAREHUB_POWER_CUT_AT");
    if (value == nullptr || *value == '\0') {
      return nullptr;
    }
    char* end = nullptr;
    const unsigned long long n = std::strtoull(value, &end, 10);
    if (end == value || *end != '\0' || n == 0) {
      std::fprintf(stderr, "CAREHUB_POWER_CUT_AT=%s is not a positive count: ignored\n", value);
      return nullptr;
    }
    std::fprintf(stderr,
                 "CAREHUB_POWER_CUT_AT is set: this process simulates a power cut at write-ahead "
                 "log append %llu (testing only)\n",
                 n);
    auto fs = std::make_shared<PowerCutFileSystem>(rocksdb::FileSystem::Default(), n);
    return rocksdb::NewCompositeEnv(fs).release();
  }();
  return env;
}

}  // namespace carehub::hub
