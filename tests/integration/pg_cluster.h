#pragma once
// A throwaway PostgreSQL 15 server for integration tests (Debian's `postgresql` package): initdb
// on a temp dir, the postmaster as a child process listening only on a Unix socket in that dir
// (listen_addresses = '', so no TCP port is taken; the port number only names the socket file and
// is still picked free), trust authentication for the role `carehub`, a database `carehub`.
//
// Stopped on every exit path: the destructor shuts it down (immediate mode), and the postmaster
// is a direct child with PR_SET_PDEATHSIG (setpriv --pdeathsig, or the harness's own), so a test
// binary that crashes takes its server with it. pg_ctl is not used because it daemonizes.
//
// initdb and postgres refuse to run as root. As root (CI containers) both run through
// `setpriv --reuid` as the `postgres` user Debian's package creates (or `nobody` without one),
// with the temp dir handed to that user; as any other user they run directly.
//
// Binaries come from $CAREHUB_PG_BIN, default /usr/lib/postgresql/15/bin. Not thread-safe.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "harness/child_process.h"

namespace carehub::itest {

class PgCluster {
 public:
  // initdb + start + CREATE DATABASE carehub. Errors carry the server's log.
  static Result<std::unique_ptr<PgCluster>> Start(const std::string& tag);
  // Starts a server on a data dir another program made (the demo's): `socket_dir` must be
  // writable by the data dir's owner.
  static Result<std::unique_ptr<PgCluster>> Adopt(const std::filesystem::path& data_dir,
                                                  const std::filesystem::path& socket_dir);
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // Fast shutdown (SIGINT: sessions are ended, a checkpoint is written), then waits.
  Status Stop(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Starts the postmaster again on the same data dir and socket after Stop().
  Status Restart();
  bool running() const { return postmaster_ && postmaster_->running(); }

  // libpq keyword DSN for the role carehub: "host=<socket dir> port=<n> dbname=<db> user=carehub".
  std::string Dsn(const std::string& db = "carehub") const;
  // The same as a URI (postgresql://carehub@/db?host=...&port=...).
  std::string Uri(const std::string& db = "carehub") const;

  // psql -X -A -t -v ON_ERROR_STOP=1 -c `sql`: the unaligned, tuples-only output (fields split by
  // '|', rows by '\n'), or an error with psql's stderr.
  Result<std::string> Psql(const std::string& sql, const std::string& db = "carehub") const;
  // pg_dump of `db` (plain SQL with data).
  Result<std::string> Dump(const std::string& db = "carehub") const;

  std::string ReadLog() const { return ReadFileText(log_path_); }
  const std::filesystem::path& socket_dir() const { return socket_dir_; }
  int port() const { return port_; }

 private:
  PgCluster() = default;
  Status Launch();
  std::vector<std::string> AsServerUser(std::vector<std::string> argv, bool pdeathsig) const;

  std::optional<TempDir> dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path socket_dir_;
  std::filesystem::path log_path_;
  std::filesystem::path work_dir_;  // RunCommand's output files
  int port_ = 0;
  // Set when running as root: the user the server runs as.
  std::optional<std::pair<unsigned, unsigned>> server_ids_;
  std::optional<ChildProcess> postmaster_;
};

// Directory of the PostgreSQL binaries ($CAREHUB_PG_BIN or /usr/lib/postgresql/15/bin).
std::filesystem::path PgBinDir();

}  // namespace carehub::itest
