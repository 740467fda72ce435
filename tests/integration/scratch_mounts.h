#pragma once
// Small filesystems of their own for storage-fault tests (the suite runs as root, as CI does):
//
// - TmpfsMount: a size-limited tmpfs on a directory, for a full disk (fill it with a ballast file)
//   or a read-only data dir at start (Remount(true) while nothing has a file open for writing:
//   Linux refuses `remount,ro` with EBUSY while any file on the mount is open for writing, so a
//   running hub's data dir cannot be made read-only this way).
// - Ext4LoopMount: an ext4 image on a loop device mounted with errors=remount-ro. TriggerError()
//   makes the kernel turn the filesystem read-only under a running process, as a failing disk
//   does; every write then fails with EROFS. Coming back needs an unmount, e2fsck and a new mount,
//   so the process holding files on it must have stopped first.
//
// Both unmount lazily (MNT_DETACH) on destruction, which works even while a process still has
// files open there (the mount goes away when they close). Header-only; not thread-safe.

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "carehub/core/status.h"
#include "harness/child_process.h"

namespace carehub::itest {

class TmpfsMount {
 public:
  // Mounts a tmpfs of `size` (mount(8) syntax, e.g. "48m") on the existing directory `where`.
  static Result<std::unique_ptr<TmpfsMount>> Mount(const std::filesystem::path& where,
                                                   const std::string& size) {
    std::string options = "size=" + size + ",mode=0700";
    if (::mount("carehub-itest-tmpfs", where.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      return Status::Error("mount_failed",
                           "mount -t tmpfs on " + where.string() + ": " + std::strerror(errno));
    }
    return std::unique_ptr<TmpfsMount>(new TmpfsMount(where));
  }
  ~TmpfsMount() { ::umount2(path_.c_str(), MNT_DETACH); }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  // `mount -o remount,ro` (or rw). Fails with EBUSY while a file on it is open for writing.
  Status Remount(bool read_only) {
    unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
    if (::mount(nullptr, path_.c_str(), nullptr, flags, nullptr) != 0) {
      return Status::Error("remount_failed", std::string("remount ") + (read_only ? "ro " : "rw ") +
                                                 path_.string() + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

 private:
  explicit TmpfsMount(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

class Ext4LoopMount {
 public:
  // Makes a `size_mb` ext4 image at `image` (outside `where`) and mounts it on `where`.
  static Result<std::unique_ptr<Ext4LoopMount>> Create(const std::filesystem::path& image,
                                                       const std::filesystem::path& where,
                                                       int size_mb) {
    std::filesystem::resize_file(CreateEmpty(image), static_cast<uintmax_t>(size_mb) << 20);
    auto made = Run({"/usr/sbin/mkfs.ext4", "-q", "-F", image.string()}, image.parent_path());
    if (!made.ok()) {
      return made;
    }
    std::unique_ptr<Ext4LoopMount> m(new Ext4LoopMount(image, where));
    Status s = m->Mount();
    if (!s.ok()) {
      return s;
    }
    return m;
  }
  ~Ext4LoopMount() {
    if (mounted_) {
      ::umount2(path_.c_str(), MNT_DETACH);
    }
  }
  Ext4LoopMount(const Ext4LoopMount&) = delete;
  Ext4LoopMount& operator=(const Ext4LoopMount&) = delete;

  // The kernel's own reaction to a filesystem error (ext4 trigger_fs_error): with
  // errors=remount-ro every later write on the filesystem fails with EROFS.
  Status TriggerError() {
    auto source = RunCommand({"/usr/bin/findmnt", "-n", "-o", "SOURCE", path_.string()},
                             image_.parent_path(), std::chrono::seconds(10));
    if (!source.ok()) {
      return source.status();
    }
    std::string dev = std::filesystem::path(source->out.substr(0, source->out.find('\n')))
                          .filename()
                          .string();
    std::ofstream trigger("/sys/fs/ext4/" + dev + "/trigger_fs_error");
    trigger << "carehub reliability test\n";
    trigger.flush();
    if (!trigger) {
      return Status::Error("trigger_failed", "cannot write /sys/fs/ext4/" + dev +
                                                 "/trigger_fs_error (kernel without it?)");
    }
    return Status::Ok();
  }

  // The operator's repair: unmount, e2fsck -fy, mount again. Nothing may hold files on it.
  Status RepairAndRemount() {
    if (::umount2(path_.c_str(), 0) != 0) {
      return Status::Error("umount_failed", path_.string() + ": " + std::strerror(errno));
    }
    mounted_ = false;
    auto fsck = RunCommand({"/usr/sbin/e2fsck", "-f", "-y", image_.string()},
                           image_.parent_path(), std::chrono::seconds(60));
    if (!fsck.ok()) {
      return fsck.status();
    }
    // 0: clean, 1: errors corrected; anything else is a failed repair.
    if (!fsck->status.Exited(0) && !fsck->status.Exited(1)) {
      return Status::Error("fsck_failed", fsck->status.ToString() + ": " + fsck->out + fsck->err);
    }
    return Mount();
  }

 private:
  Ext4LoopMount(std::filesystem::path image, std::filesystem::path where)
      : image_(std::move(image)), path_(std::move(where)) {}

  static const std::filesystem::path& CreateEmpty(const std::filesystem::path& p) {
    std::ofstream(p, std::ios::trunc | std::ios::binary);
    return p;
  }

  static Status Run(const std::vector<std::string>& argv, const std::filesystem::path& work_dir) {
    auto r = RunCommand(argv, work_dir, std::chrono::seconds(60));
    if (!r.ok()) {
      return r.status();
    }
    if (!r->status.Exited(0)) {
      return Status::Error("command_failed",
                           argv[0] + ": " + r->status.ToString() + ": " + r->out + r->err);
    }
    return Status::Ok();
  }

  Status Mount() {
    Status s = Run({"/usr/bin/mount", "-o", "loop,errors=remount-ro", image_.string(),
                    path_.string()},
                   image_.parent_path());
    mounted_ = s.ok();
    return s;
  }

  std::filesystem::path image_;
  std::filesystem::path path_;
  bool mounted_ = false;
};

}  // namespace carehub::itest
