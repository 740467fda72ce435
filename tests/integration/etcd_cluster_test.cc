// The real etcd cluster the failover tests (issue 14) will run on: three Debian etcd-server
// processes on loopback, started and stopped by the test. Shows what the hub's leader lease will
// rely on: one member of three down changes nothing; two down (quorum lost) refuses writes; a
// member back restores them, with the data written before.
#include "harness/etcd_cluster.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace carehub::itest {
namespace {

bool Put(const EtcdCluster& etcd, const std::string& key, const std::string& value,
         const std::string& endpoints = "") {
  auto r = etcd.Ctl({"put", key, value}, endpoints);
  if (!(r.ok() && r.value().status.Exited(0))) {
    std::fprintf(stderr, "put %s: %s\n", key.c_str(),
                 r.ok() ? r.value().err.c_str() : r.status().ToString().c_str());
    return false;
  }
  return true;
}

// The members' election timeout (harness: 1 s): losing the leader costs an election, during which
// a write fails ("leader changed") and a client tries again. Allowed: a few elections.
constexpr std::chrono::milliseconds kElections{15000};

// Put, tried again until `kElections` has passed: what a client does across an election.
bool PutWithinElections(const EtcdCluster& etcd, const std::string& key, const std::string& value,
                        const std::string& endpoints) {
  const auto deadline = std::chrono::steady_clock::now() + Scaled(kElections);
  do {
    if (Put(etcd, key, value, endpoints)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string Get(const EtcdCluster& etcd, const std::string& key, const std::string& endpoints) {
  auto r = etcd.Ctl({"get", key, "--print-value-only"}, endpoints);
  return r.ok() && r.value().status.Exited(0) ? r.value().out : "<error>";
}

TEST(EtcdCluster, OneMemberDownChangesNothingQuorumLostRefusesWrites) {
  auto etcd = EtcdCluster::Start("quorum");
  ASSERT_TRUE(etcd.ok()) << etcd.status().ToString();
  auto& c = *etcd.value();
  ASSERT_EQ(c.size(), 3);
  ASSERT_TRUE(Put(c, "/carehub/test/a", "1"));
  EXPECT_EQ(Get(c, "/carehub/test/a", c.client_url(2)), "1\n");

  c.Kill(0);
  const std::string survivors = c.client_url(1) + "," + c.client_url(2);
  EXPECT_TRUE(PutWithinElections(c, "/carehub/test/b", "2", survivors))
      << "two of three keep quorum";
  EXPECT_EQ(Get(c, "/carehub/test/a", survivors), "1\n");

  c.Kill(1);
  EXPECT_FALSE(PutWithinElections(c, "/carehub/test/c", "3", c.client_url(2)))
      << "one of three has no quorum";

  ASSERT_TRUE(c.Restart(1).ok());
  EXPECT_TRUE(PutWithinElections(c, "/carehub/test/c", "3", survivors));
  EXPECT_EQ(Get(c, "/carehub/test/b", c.client_url(1)), "2\n");
  ASSERT_TRUE(c.Restart(0).ok());
  EXPECT_EQ(Get(c, "/carehub/test/c", c.client_url(0)), "3\n");
}

}  // namespace
}  // namespace carehub::itest
