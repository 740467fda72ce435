// The adapter config's transport rules as decided by the shared address helper
// (carehub/core/address.h): without CURVE keys the hub endpoint must be ipc:// or a numeric
// loopback address, and an admin listener off loopback needs a token.

#include "carehub/adapters/adapter_config.h"

#include <gtest/gtest.h>

#include <string>

namespace carehub::adapters {
namespace {

std::string Config(const std::string& endpoint, const std::string& admin = "127.0.0.1:0") {
  return "identity:\n  publisher_ods: RXK\nhub:\n  endpoint: \"" + endpoint +
         "\"\noutbox:\n  dir: outbox\nadmin:\n  listen: \"" + admin + "\"\n";
}

TEST(AdapterConfigTest, PlainHubEndpointOnLoopbackOrIpc) {
  for (const char* ep : {"tcp://127.0.0.1:7400", "tcp://127.3.2.1:7400", "tcp://[::1]:7400",
                         "ipc:///tmp/carehub-ingest"}) {
    auto config = ParseAdapterConfig(Config(ep), "/tmp", AdapterKind::kHl7);
    EXPECT_TRUE(config.ok()) << ep << ": " << config.status().ToString();
  }
}

TEST(AdapterConfigTest, PlainHubEndpointElsewhereIsRefused) {
  for (const char* ep : {"tcp://127.example.net:7400", "tcp://127.0.0.1.nip.io:7400",
                         "tcp://localhost:7400", "tcp://0x7f.1:7400", "tcp://hub.nhs.uk:7400"}) {
    auto config = ParseAdapterConfig(Config(ep), "/tmp", AdapterKind::kHl7);
    ASSERT_FALSE(config.ok()) << ep;
    EXPECT_NE(config.status().message().find("is not loopback"), std::string::npos)
        << config.status().message();
  }
}

// A replicated pair (docs/replication.md): "primary,standby", each endpoint checked.
TEST(AdapterConfigTest, APairOfHubEndpointsIsCheckedEndpointByEndpoint) {
  auto config = ParseAdapterConfig(Config("tcp://127.0.0.1:7400, tcp://127.0.0.1:7500"), "/tmp",
                                   AdapterKind::kHl7);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config.value().hub_endpoint, "tcp://127.0.0.1:7400, tcp://127.0.0.1:7500");
  for (const char* ep :
       {"tcp://127.0.0.1:7400,tcp://10.0.0.2:7400", "tcp://127.0.0.1:7400,udp://x"}) {
    auto bad = ParseAdapterConfig(Config(ep), "/tmp", AdapterKind::kHl7);
    ASSERT_FALSE(bad.ok()) << ep;
    EXPECT_NE(bad.status().message().find("hub.endpoint"), std::string::npos)
        << bad.status().message();
  }
}

TEST(AdapterConfigTest, MalformedHubEndpointIsRefused) {
  for (const char* ep : {"tcp://127.0.0.1", "tcp://127.0.0.1:0", "tcp://127.0.0.1:*",
                         "udp://127.0.0.1:7400", "127.0.0.1:7400"}) {
    auto config = ParseAdapterConfig(Config(ep), "/tmp", AdapterKind::kHl7);
    ASSERT_FALSE(config.ok()) << ep;
    EXPECT_NE(config.status().message().find("hub.endpoint"), std::string::npos)
        << config.status().message();
  }
}

TEST(AdapterConfigTest, AdminOffLoopbackNeedsAToken) {
  for (const char* admin : {"0.0.0.0:9470", "127.example.net:9470", "localhost:9470"}) {
    auto config =
        ParseAdapterConfig(Config("tcp://127.0.0.1:7400", admin), "/tmp", AdapterKind::kHl7);
    ASSERT_FALSE(config.ok()) << admin;
    EXPECT_NE(config.status().message().find("admin.listen"), std::string::npos);
  }
}

}  // namespace
}  // namespace carehub::adapters
