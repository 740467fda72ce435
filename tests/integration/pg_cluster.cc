#include "pg_cluster.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "harness/ports.h"

namespace carehub::itest {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The uid/gid a server must run as when we are root: Debian's `postgres`, else `nobody`.
std::optional<std::pair<unsigned, unsigned>> ServerIds() {
  if (geteuid() != 0) {
    return std::nullopt;
  }
  for (const char* name : {"postgres", "nobody"}) {
    if (const passwd* pw = getpwnam(name)) {
      return std::make_pair(static_cast<unsigned>(pw->pw_uid), static_cast<unsigned>(pw->pw_gid));
    }
  }
  return std::make_pair(65534u, 65534u);
}

Status ChownTree(const fs::path& path, unsigned uid, unsigned gid) {
  if (chown(path.c_str(), uid, gid) != 0) {
    return Status::Error("io", "cannot chown " + path.string());
  }
  return Status::Ok();
}

}  // namespace

fs::path PgBinDir() {
  const char* env = std::getenv("CAREHUB_PG_BIN");
  return env && *env ? fs::path(env) : fs::path("/usr/lib/postgresql/15/bin");
}

std::vector<std::string> PgCluster::AsServerUser(std::vector<std::string> argv,
                                                 bool pdeathsig) const {
  if (!server_ids_) {
    return argv;
  }
  std::vector<std::string> out = {
      "/usr/bin/setpriv", "--reuid=" + std::to_string(server_ids_->first),
      "--regid=" + std::to_string(server_ids_->second), "--clear-groups"};
  if (pdeathsig) {
    // Set after the uid change (which clears it) and kept across exec: postgres dies with us.
    out.push_back("--pdeathsig=KILL");
  }
  out.push_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Result<std::unique_ptr<PgCluster>> PgCluster::Start(const std::string& tag) {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->dir_.emplace(tag);
  const fs::path root = c->dir_->path();
  if (!fs::is_directory(root)) {
    return Status::Error("io", "cannot make a temp dir " + root.string());
  }
  c->server_ids_ = ServerIds();
  c->work_dir_ = root / "cmd";
  c->socket_dir_ = root / "pg";
  c->data_dir_ = c->socket_dir_ / "data";
  c->log_path_ = root / "postgres.log";
  fs::create_directories(c->work_dir_);
  fs::create_directories(c->socket_dir_);
  if (c->server_ids_) {
    // The server user must reach its dir through ours.
    chmod(root.c_str(), 0755);
    CAREHUB_RETURN_IF_ERROR(
        ChownTree(c->socket_dir_, c->server_ids_->first, c->server_ids_->second));
  }
  auto initdb = RunCommand(
      c->AsServerUser({(PgBinDir() / "initdb").string(), "-D", c->data_dir_.string(), "-U",
                       "carehub", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"},
                      false),
      c->work_dir_, Scaled(seconds(120)));
  if (!initdb.ok()) {
    return initdb.status();
  }
  if (!initdb->status.Exited(0)) {
    return Status::Error("initdb_failed", initdb->status.ToString() + ": " + initdb->err);
  }
  const std::optional<int> base = FindFreePortBase({0}, /*salt=*/5432);
  c->port_ = base.value_or(25432);
  CAREHUB_RETURN_IF_ERROR(c->Launch());
  auto created = c->Psql("CREATE DATABASE carehub", "postgres");
  if (!created.ok()) {
    return created.status();
  }
  return c;
}

Result<std::unique_ptr<PgCluster>> PgCluster::Adopt(const fs::path& data_dir,
                                                    const fs::path& socket_dir) {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->dir_.emplace("pg-adopt");
  c->server_ids_ = ServerIds();
  if (c->server_ids_) {
    struct stat st {};
    if (stat(data_dir.c_str(), &st) == 0) {
      c->server_ids_ =
          std::make_pair(static_cast<unsigned>(st.st_uid), static_cast<unsigned>(st.st_gid));
    }
  }
  c->work_dir_ = c->dir_->path();
  c->data_dir_ = data_dir;
  c->socket_dir_ = socket_dir;
  c->log_path_ = c->dir_->path() / "postgres.log";
  c->port_ = FindFreePortBase({0}, /*salt=*/5433).value_or(25433);
  CAREHUB_RETURN_IF_ERROR(c->Launch());
  return c;
}

Status PgCluster::Launch() {
  // Sized for tests: no checkpoint in the middle of a load; everything else is the default.
  auto child = ChildProcess::Spawn(
      AsServerUser({(PgBinDir() / "postgres").string(), "-D", data_dir_.string(), "-k",
                    socket_dir_.string(), "-p", std::to_string(port_), "-c", "listen_addresses=",
                    "-c", "max_wal_size=2GB", "-c", "log_min_messages=warning"},
                   true),
      log_path_, log_path_);
  if (!child.ok()) {
    return child.status();
  }
  postmaster_.emplace(std::move(child).value());
  const auto deadline = std::chrono::steady_clock::now() + Scaled(seconds(60));
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto ended = postmaster_->Poll()) {
      return Status::Error("postgres_failed",
                           "postgres exited (" + ended->ToString() + "): " + ReadLog());
    }
    auto ready = RunCommand({(PgBinDir() / "pg_isready").string(), "-q", "-h", socket_dir_.string(),
                             "-p", std::to_string(port_), "-d", "postgres", "-U", "carehub"},
                            work_dir_, Scaled(seconds(10)));
    if (ready.ok() && ready->status.Exited(0)) {
      return Status::Ok();
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return Status::Error("postgres_failed", "postgres did not accept connections: " + ReadLog());
}

PgCluster::~PgCluster() {
  if (running()) {
    postmaster_->Signal(SIGQUIT);  // immediate shutdown
    (void)postmaster_->Wait(Scaled(seconds(20)));
  }
  postmaster_.reset();  // SIGKILLs and reaps one that did not end
}

Status PgCluster::Stop(milliseconds timeout) {
  if (!running()) {
    return Status::Ok();
  }
  postmaster_->Signal(SIGINT);
  auto ended = postmaster_->Wait(timeout);
  if (!ended) {
    return Status::Error("timeout",
                         "postgres did not stop within " + std::to_string(timeout.count()) + " ms");
  }
  return Status::Ok();
}

Status PgCluster::Restart() {
  if (running()) {
    return Status::Error("running", "postgres is still running");
  }
  return Launch();
}

std::string PgCluster::Dsn(const std::string& db) const {
  return "host=" + socket_dir_.string() + " port=" + std::to_string(port_) + " dbname=" + db +
         " user=carehub";
}

std::string PgCluster::Uri(const std::string& db) const {
  return "postgresql://carehub@/" + db + "?host=" + socket_dir_.string() +
         "&port=" + std::to_string(port_);
}

Result<std::string> PgCluster::Psql(const std::string& sql, const std::string& db) const {
  auto run = RunCommand({(PgBinDir() / "psql").string(), "-X", "-A", "-t", "-q", "-v",
                         "ON_ERROR_STOP=1", "-d", Dsn(db), "-c", sql},
                        work_dir_, Scaled(seconds(300)));
  if (!run.ok()) {
    return run.status();
  }
  if (!run->status.Exited(0)) {
    return Status::Error("psql_failed", run->status.ToString() + ": " + run->err + " in: " + sql);
  }
  return run->out;
}

Result<std::string> PgCluster::Dump(const std::string& db) const {
  auto run = RunCommand({(PgBinDir() / "pg_dump").string(), "-d", Dsn(db)}, work_dir_,
                        Scaled(seconds(300)));
  if (!run.ok()) {
    return run.status();
  }
  if (!run->status.Exited(0)) {
    return Status::Error("pg_dump_failed", run->status.ToString() + ": " + run->err);
  }
  return run->out;
}

}  // namespace carehub::itest
