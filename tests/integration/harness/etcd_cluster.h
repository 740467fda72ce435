#pragma once
// A real etcd cluster (Debian's etcd-server, installed by scripts/install-deps.sh) for tests of
// automatic failover (issue 14): `members` etcd processes on free loopback ports, each with a data
// dir in a temp dir, started together as a new cluster. Start() returns once every member answers
// `etcdctl endpoint health`. Members can be killed and restarted (same ports, same data) to test
// what a lost member or a lost quorum does. The destructor kills every member and removes the dir
// (kept when CAREHUB_ITEST_KEEP is set). Nothing is shared with a system etcd.
//
// Not thread-safe: one test thread drives a cluster.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "harness/child_process.h"

namespace carehub::itest {

class EtcdCluster {
 public:
  static Result<std::unique_ptr<EtcdCluster>> Start(const std::string& tag, int members = 3);
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  // "http://127.0.0.1:PORT" of member i, and all of them comma-separated (etcdctl --endpoints).
  std::string client_url(int i) const;
  std::string client_urls() const;
  // kill -9 of member i; Restart(i) brings it back on the same ports and data dir.
  void Kill(int i);
  Status Restart(int i);
  bool running(int i);

  // Runs etcdctl (API v3) against `endpoints` (default: every member) with `args`.
  Result<CommandResult> Ctl(const std::vector<std::string>& args,
                            const std::string& endpoints = "") const;
  // Waits until member i answers `endpoint health`.
  Status WaitHealthy(int i, std::chrono::milliseconds timeout);

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::optional<ChildProcess> process;
  };
  explicit EtcdCluster(const std::string& tag) : dir_(tag) {}
  Status Launch(int i);
  std::string initial_cluster_;
  std::string token_;
  TempDir dir_;
  std::vector<Member> members_;
};

}  // namespace carehub::itest
