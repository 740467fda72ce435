#include "harness/child_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace carehub::itest {
namespace {

uintmax_t FileSize(const std::filesystem::path& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus e;
  if (WIFEXITED(status)) {
    e.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.term_signal = WTERMSIG(status);
  }
  return e;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (exit_code) {
    return "exit code " + std::to_string(*exit_code);
  }
  if (term_signal) {
    return std::string("signal ") + strsignal(*term_signal);
  }
  return "unknown";
}

Result<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                         const std::filesystem::path& stdout_file,
                                         const std::filesystem::path& stderr_file) {
  if (argv.empty()) {
    return Status::Error("bad_argument", "empty argv");
  }
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);

  // fork + exec rather than posix_spawn, for PR_SET_PDEATHSIG: if the test process dies (a crash,
  // a ctest timeout), the kernel kills the daemon too, so no hub is left holding ports and files.
  // Between fork and exec only async-signal-safe calls; everything is prepared before the fork.
  const pid_t parent = getpid();
  const std::string out_path = stdout_file.string();
  const std::string err_path = stderr_file.string();
  const uintmax_t stderr_start = FileSize(stderr_file);
  sigset_t empty;
  sigemptyset(&empty);
  // The child reports a failed exec through this close-on-exec pipe; EOF means exec succeeded.
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    return Status::Error("spawn_failed", std::string("pipe: ") + std::strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(exec_error[0]);
    close(exec_error[1]);
    return Status::Error("spawn_failed", "cannot fork for " + argv[0] + ": " + std::strerror(err));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);  // the test process died before prctl took effect
    }
    // Default dispositions and an empty mask, whatever gtest or the test's threads set up.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      sigaction(sig, &dfl, nullptr);
    }
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    int in_fd = open("/dev/null", O_RDONLY);
    int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
      _exit(127);
    }
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execv(args[0], args.data());
    int err = errno;
    (void)!write(exec_error[1], &err, sizeof(err));
    _exit(127);
  }
  close(exec_error[1]);
  int child_errno = 0;
  ssize_t got = -1;
  do {
    got = read(exec_error[0], &child_errno, sizeof(child_errno));
  } while (got < 0 && errno == EINTR);
  close(exec_error[0]);
  if (got > 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    return Status::Error("spawn_failed",
                         "cannot start " + argv[0] + ": " + std::strerror(child_errno));
  }
  return ChildProcess(pid, stderr_file, stderr_start);
}

std::string SystemTool(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return name;  // a path already, as execvp takes it
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    auto candidate = std::filesystem::path(dirs.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
    start = end + 1;
  }
  return name;
}

std::string FindSanitizerReport(const std::string& text) {
  // Every sanitizer report starts with one of these (ASan, LSan, UBSan, TSan, and their fatal
  // start-up errors); a report's first line begins after the previous newline.
  static const char* const kMarkers[] = {"ERROR: AddressSanitizer",
                                         "ERROR: LeakSanitizer",
                                         "WARNING: ThreadSanitizer",
                                         "FATAL: ThreadSanitizer",
                                         "ThreadSanitizer: CHECK",
                                         "AddressSanitizer: CHECK",
                                         "SUMMARY: UndefinedBehaviorSanitizer",
                                         ": runtime error: "};
  size_t first = std::string::npos;
  for (const char* marker : kMarkers) {
    first = std::min(first, text.find(marker));
  }
  if (first == std::string::npos) {
    return "";
  }
  size_t line_start = text.rfind('\n', first);
  return text.substr(line_start == std::string::npos ? 0 : line_start + 1);
}

void ChildProcess::CheckSanitizerReport() const {
  if (!kSanitizerBuild || stderr_file_.empty()) {
    return;
  }
  std::string text = ReadFileText(stderr_file_);
  std::string report =
      FindSanitizerReport(text.size() > stderr_start_ ? text.substr(stderr_start_) : std::string());
  if (!report.empty()) {
    constexpr size_t kMaxShown = 20'000;
    ADD_FAILURE() << "sanitizer report from child pid " << pid_ << " (" << stderr_file_.string()
                  << "):\n"
                  << report.substr(0, kMaxShown);
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_),
      exit_(std::move(other.exit_)),
      stderr_file_(std::move(other.stderr_file_)),
      stderr_start_(other.stderr_start_) {
  other.pid_ = -1;
  other.exit_.reset();
  other.stderr_file_.clear();
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = other.pid_;
    exit_ = std::move(other.exit_);
    stderr_file_ = std::move(other.stderr_file_);
    stderr_start_ = other.stderr_start_;
    other.pid_ = -1;
    other.exit_.reset();
    other.stderr_file_.clear();
  }
  return *this;
}

ChildProcess::~ChildProcess() { KillAndReap(); }

void ChildProcess::KillAndReap() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    CheckSanitizerReport();
  }
  pid_ = -1;
  exit_.reset();
  stderr_file_.clear();
}

void ChildProcess::Signal(int sig) const {
  if (pid_ > 0) {
    ::kill(pid_, sig);
  }
}

std::optional<ExitStatus> ChildProcess::Poll() {
  if (exit_ || pid_ <= 0) {
    return exit_;
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_ = FromWaitStatus(status);
    CheckSanitizerReport();
  }
  return exit_;
}

std::chrono::milliseconds Scaled(std::chrono::milliseconds timeout) {
  static const double scale = [] {
    const char* text = std::getenv("CAREHUB_TIME_SCALE");
    double value = text ? std::strtod(text, nullptr) : 1.0;
    return value >= 1.0 ? value : 1.0;
  }();
  return std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(timeout.count()) * scale));
}

std::optional<ExitStatus> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + Scaled(timeout);
  while (true) {
    if (auto e = Poll()) {
      return e;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::filesystem::path& work_dir,
                                 std::chrono::milliseconds timeout) {
  static int counter = 0;
  std::string stem = "cmd-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  auto out_path = work_dir / (stem + ".out");
  auto err_path = work_dir / (stem + ".err");
  auto child = ChildProcess::Spawn(argv, out_path, err_path);
  if (!child.ok()) {
    return child.status();
  }
  auto status = child->Wait(timeout);
  if (!status) {
    return Status::Error("timeout", argv[0] + " did not finish within " +
                                        std::to_string(timeout.count()) +
                                        " ms; stderr: " + ReadFileText(err_path));
  }
  return CommandResult{*status, ReadFileText(out_path), ReadFileText(err_path)};
}

std::string ReadFileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return "";
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TempDir::TempDir(const std::string& tag) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base && *base ? base : "/tmp") + "/carehub-itest-" + tag + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    // Tests check path() exists; an unusable TMPDIR shows up there with the path in the message.
    path_ = pattern;
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("CAREHUB_ITEST_KEEP") != nullptr) {
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace carehub::itest
