#include "harness/etcd_cluster.h"

#include <csignal>
#include <thread>

#include "harness/ports.h"

namespace carehub::itest {

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(const std::string& tag, int members) {
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster("etcd-" + tag));
  std::vector<int> offsets;
  for (int i = 0; i < members; ++i) {
    offsets.push_back(2 * i);
    offsets.push_back(2 * i + 1);
  }
  auto base = FindFreePortBase(offsets, std::hash<std::string>()(tag) ^ 0xe7cd);
  if (!base) {
    return Status::Error("no_ports", "no free loopback ports for etcd");
  }
  cluster->token_ = "carehub-test-" + tag + "-" + std::to_string(::getpid());
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.client_port = *base + 2 * i;
    m.peer_port = *base + 2 * i + 1;
    cluster->initial_cluster_ +=
        (i ? "," : "") + m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
    cluster->members_.push_back(std::move(m));
  }
  for (int i = 0; i < members; ++i) {
    CAREHUB_RETURN_IF_ERROR(cluster->Launch(i));
  }
  for (int i = 0; i < members; ++i) {
    CAREHUB_RETURN_IF_ERROR(cluster->WaitHealthy(i, std::chrono::seconds(30)));
  }
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) {
    Kill(i);
  }
}

std::string EtcdCluster::client_url(int i) const {
  return "http://127.0.0.1:" + std::to_string(members_[i].client_port);
}

std::string EtcdCluster::client_urls() const {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    out += (i ? "," : "") + client_url(i);
  }
  return out;
}

Status EtcdCluster::Launch(int i) {
  auto& m = members_[i];
  const auto data = dir_.path() / m.name;
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  // A restarted member rejoins from its data dir; "new" only matters at the first start.
  std::vector<std::string> argv = {
      "/usr/bin/etcd", "--name=" + m.name, "--data-dir=" + data.string(),
      "--listen-client-urls=" + client_url(i), "--advertise-client-urls=" + client_url(i),
      "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=" + initial_cluster_, "--initial-cluster-token=" + token_,
      "--initial-cluster-state=new",
      // Test timings: quick elections, a loopback network.
      "--heartbeat-interval=100", "--election-timeout=1000", "--log-level=warn"};
  const auto log = dir_.path() / (m.name + ".log");
  auto child = ChildProcess::Spawn(argv, log, log);
  if (!child.ok()) {
    return child.status();
  }
  m.process.emplace(std::move(child).value());
  return Status::Ok();
}

void EtcdCluster::Kill(int i) {
  auto& m = members_[i];
  if (m.process && m.process->running()) {
    m.process->Signal(SIGKILL);
    (void)m.process->Wait(std::chrono::seconds(10));
  }
  m.process.reset();
}

Status EtcdCluster::Restart(int i) {
  Kill(i);
  CAREHUB_RETURN_IF_ERROR(Launch(i));
  return WaitHealthy(i, std::chrono::seconds(30));
}

bool EtcdCluster::running(int i) {
  auto& m = members_[i];
  return m.process && !m.process->Poll() && m.process->running();
}

Result<CommandResult> EtcdCluster::Ctl(const std::vector<std::string>& args,
                                       const std::string& endpoints) const {
  std::vector<std::string> argv = {"/usr/bin/etcdctl",
                                   "--endpoints=" + (endpoints.empty() ? client_urls() : endpoints),
                                   "--dial-timeout=1s", "--command-timeout=2s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, dir_.path(), std::chrono::seconds(20));
}

Status EtcdCluster::WaitHealthy(int i, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + Scaled(timeout);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running(i)) {
      return Status::Error(
          "etcd_exited",
          members_[i].name + " exited: " + ReadFileText(dir_.path() / (members_[i].name + ".log")));
    }
    auto health = Ctl({"endpoint", "health"}, client_url(i));
    if (health.ok() && health.value().status.Exited(0)) {
      return Status::Ok();
    }
    last = health.ok() ? health.value().err : health.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Error("etcd_unhealthy", members_[i].name + " not healthy in time: " + last);
}

}  // namespace carehub::itest
