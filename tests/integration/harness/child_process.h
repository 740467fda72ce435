#pragma once
// A child process for integration tests: spawns a real binary with stdout and stderr sent to files,
// signals it, and waits for it with a deadline. The destructor SIGKILLs and reaps a child that is
// still running, so a failed assertion never leaves a daemon behind; and the child gets SIGKILL
// from the kernel if the spawning thread dies (PR_SET_PDEATHSIG), so neither does a crashed test.
// Spawn from a thread that outlives the child (the test's main thread).
//
// Not thread-safe: one thread owns a ChildProcess (signalling it from another thread is fine, see
// Signal()).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::itest {

// How a child ended: exit_code when it exited, term_signal when a signal ended it.
struct ExitStatus {
  std::optional<int> exit_code;
  std::optional<int> term_signal;
  bool Exited(int code) const { return exit_code && *exit_code == code; }
  std::string ToString() const;
};

class ChildProcess {
 public:
  // Starts argv[0] (a path) with argv; stdout and stderr are appended to the given files.
  static Result<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                    const std::filesystem::path& stdout_file,
                                    const std::filesystem::path& stderr_file);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exit_; }

  // Sends a signal; safe from any thread while the child is running.
  void Signal(int sig) const;
  // Non-blocking: reaps the child if it has ended.
  std::optional<ExitStatus> Poll();
  // Waits up to `timeout` for the child to end; empty if it is still running.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  void KillAndReap();

  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_;
};

// Output of a command run to completion.
struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs argv to completion within `timeout` (killed and reported as an error if it takes longer).
// Output goes through files in `work_dir`, so large outputs never block the child.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::filesystem::path& work_dir,
                                 std::chrono::milliseconds timeout);

// The whole content of a file ("" when it cannot be read).
std::string ReadFileText(const std::filesystem::path& path);

// A fresh directory under $TMPDIR (or /tmp) named after `tag`; removed by ~TempDir unless the
// environment variable CAREHUB_ITEST_KEEP is set (to inspect a failed run).
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace carehub::itest
