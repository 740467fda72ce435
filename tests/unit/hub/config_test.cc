// The hub config's transport rules (DESIGN §7) as decided by the shared address helper
// (carehub/core/address.h): plain mode binds only to numeric loopback addresses.

#include "carehub/hub/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace carehub::hub {
namespace {

std::string Plain(const std::string& ingest, const std::string& admin = "127.0.0.1:0") {
  return "ingest:\n  endpoint: \"" + ingest + "\"\nadmin:\n  listen: \"" + admin + "\"\n";
}

TEST(HubConfigTest, PlainModeAcceptsNumericLoopback) {
  for (const char* ep : {"tcp://127.0.0.1:7400", "tcp://127.0.0.2:0", "tcp://[::1]:7400",
                         "tcp://127.0.0.1:*", "ipc:///tmp/carehub-ingest"}) {
    auto config = ParseHubConfig(Plain(ep), "/tmp");
    EXPECT_TRUE(config.ok()) << ep << ": " << config.status().ToString();
  }
}

TEST(HubConfigTest, PlainModeRefusesEverythingElse) {
  for (const char* ep : {"tcp://127.example.net:7400", "tcp://127.0.0.1.nip.io:7400",
                         "tcp://localhost:7400", "tcp://lo:7400", "tcp://*:7400",
                         "tcp://0.0.0.0:7400", "tcp://0x7f.1:7400", "tcp://10.1.2.3:7400"}) {
    auto config = ParseHubConfig(Plain(ep), "/tmp");
    ASSERT_FALSE(config.ok()) << ep;
    EXPECT_NE(config.status().message().find("ingest.endpoint"), std::string::npos)
        << config.status().message();
    EXPECT_NE(config.status().message().find("non-loopback"), std::string::npos)
        << config.status().message();
  }
}

TEST(HubConfigTest, MalformedEndpointsAreRefusedInEveryMode) {
  for (const char* ep : {"tcp://127.0.0.1", "tcp://127.0.0.1:99999", "tcp://:7400"}) {
    auto config = ParseHubConfig(Plain(ep), "/tmp");
    ASSERT_FALSE(config.ok()) << ep;
    EXPECT_NE(config.status().message().find("ingest.endpoint"), std::string::npos)
        << config.status().message();
  }
  auto config = ParseHubConfig(
      "subscribe:\n  endpoint: \"tcp://127.0.0.1\"\nsecurity:\n  mode: curve\n"
      "  server_key_file: k\n  identities: i\n",
      "/tmp");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("subscribe.endpoint"), std::string::npos)
      << config.status().message();
}

TEST(HubConfigTest, AdminOffLoopbackNeedsAToken) {
  auto config = ParseHubConfig(Plain("tcp://127.0.0.1:7400", "127.0.0.1.nip.io:7480"), "/tmp");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("admin.listen"), std::string::npos);
  config = ParseHubConfig(Plain("tcp://127.0.0.1:7400", "localhost:7480"), "/tmp");
  EXPECT_FALSE(config.ok());
  config = ParseHubConfig(Plain("tcp://127.0.0.1:7400", "[::1]:7480"), "/tmp");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  config = ParseHubConfig(Plain("tcp://127.0.0.1:7400", "127.0.0.1"), "/tmp");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("admin.listen"), std::string::npos);
}

// Replication (docs/replication.md): the section's rules, and the shipped pair configs load.
TEST(HubConfigTest, ReplicationSectionRules) {
  const std::string ok =
      "replication:\n  role: standby\n  name: hub-b\n  listen: tcp://127.0.0.1:7402\n"
      "  peer: {replication: tcp://127.0.0.1:7502, ingest: tcp://127.0.0.1:7500}\n";
  auto config = ParseHubConfig(ok, "/tmp");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config.value().replication.enabled);
  EXPECT_EQ(config.value().replication.role, ReplicationConfig::Role::kStandby);
  EXPECT_TRUE(config.value().replication.synchronous);    // default: sync
  EXPECT_TRUE(config.value().replication.block_on_loss);  // default: block
  for (const auto& [yaml, where] : std::vector<std::pair<std::string, std::string>>{
           {"replication:\n  role: leader\n  name: a\n  listen: tcp://127.0.0.1:1\n"
            "  peer: {replication: tcp://127.0.0.1:2}\n",
            "replication.role"},
           {"replication:\n  listen: tcp://127.0.0.1:1\n  peer: {replication: tcp://127.0.0.1:2}\n",
            "replication.name"},
           {"replication:\n  name: a\n  listen: tcp://127.0.0.1:1\n", "replication.peer"},
           {"replication:\n  name: a\n  listen: tcp://10.0.0.1:1\n"
            "  peer: {replication: tcp://127.0.0.1:2}\n",
            "replication.listen"},
           {"replication:\n  name: a\n  listen: tcp://127.0.0.1:1\n"
            "  peer: {replication: tcp://127.0.0.1:2}\n  on_standby_loss: maybe\n",
            "replication.on_standby_loss"},
           {"replication:\n  name: a\n  listen: tcp://127.0.0.1:1\n"
            "  peer: {replication: tcp://127.0.0.1:2}\n  sync_timeout_ms: 5\n",
            "replication.sync_timeout_ms"},
       }) {
    auto bad = ParseHubConfig(yaml, "/tmp");
    ASSERT_FALSE(bad.ok()) << yaml;
    EXPECT_NE(bad.status().message().find(where), std::string::npos) << bad.status().message();
  }
}

TEST(HubConfigTest, ShippedPairConfigsLoad) {
  const std::filesystem::path root(CAREHUB_SOURCE_DIR);
  for (const char* file : {"deploy/config/hub-a.yaml", "deploy/config/hub-b.yaml",
                           "deploy/k8s/pair/hub-a.yaml", "deploy/k8s/pair/hub-b.yaml",
                           "deploy/config/hub-a-ha.yaml", "deploy/config/hub-b-ha.yaml",
                           "deploy/k8s/ha/hub-a.yaml", "deploy/k8s/ha/hub-b.yaml"}) {
    auto config = LoadHubConfig(root / file);
    ASSERT_TRUE(config.ok()) << file << ": " << config.status().ToString();
    EXPECT_TRUE(config.value().replication.enabled) << file;
    EXPECT_TRUE(config.value().curve) << file;
    if (std::string(file).find("ha") != std::string::npos) {
      EXPECT_TRUE(config.value().cluster.enabled) << file;
      EXPECT_EQ(config.value().cluster.etcd.size(), 3u) << file;
    }
  }
}

}  // namespace
}  // namespace carehub::hub
