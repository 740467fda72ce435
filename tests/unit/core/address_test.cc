#include "carehub/core/address.h"

#include <gtest/gtest.h>

#include <string>

namespace carehub {
namespace {

TEST(IsLoopbackHostTest, NumericLoopbackAddressesAre) {
  for (const char* host :
       {"127.0.0.1", "127.0.0.0", "127.255.255.255", "127.1.2.3", "::1", "[::1]", "0:0:0:0:0:0:0:1",
        "[0000:0000:0000:0000:0000:0000:0000:0001]", "::ffff:127.0.0.1", "[::ffff:127.9.9.9]"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
}

// Each of these was, or could have been, taken for loopback by a prefix test; plain transport to
// any of them could leave the machine.
TEST(IsLoopbackHostTest, HostileLookalikesAreNot) {
  for (const char* host : {"127.example.net",
                           "127.0.0.1.nip.io",
                           "127.",
                           "127.0.0.1.",
                           "127.0.0.1 ",
                           " 127.0.0.1",
                           "127.0.0.256",
                           "127.0.0",
                           "127.1",
                           "0x7f.1",
                           "0x7f000001",
                           "2130706433",
                           "0177.0.0.1",
                           "127.000.000.001",
                           "[127.0.0.1]",
                           "[::1",
                           "::1]",
                           "::1%lo",
                           "[::1%lo]",
                           "::2",
                           "::ffff:128.0.0.1",
                           "::",
                           "0.0.0.0",
                           "128.0.0.1",
                           "126.255.255.255",
                           "10.0.0.1",
                           "",
                           "[]",
                           "*",
                           "lo"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << "'" << host << "'";
  }
}

// Names are refused, localhost included: see address.h for why they are not resolved.
TEST(IsLoopbackHostTest, NamesAreNotEvenLocalhost) {
  for (const char* host : {"localhost", "LOCALHOST", "localhost.", "ip6-localhost"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(IsLoopbackHostTest, EmbeddedNulIsNot) {
  EXPECT_FALSE(IsLoopbackHost(std::string("127.0.0.1\0.evil.net", 19)));
}

TEST(ParseHostPortTest, HostAndPort) {
  auto hp = ParseHostPort("127.0.0.1:7480");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7480);
  hp = ParseHostPort("[::1]:0");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 0);
  hp = ParseHostPort("hub.example.net:65535");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "hub.example.net");
  EXPECT_EQ(hp->port, 65535);
}

TEST(ParseHostPortTest, RefusesMalformed) {
  for (const char* text : {"", "127.0.0.1", "127.0.0.1:", ":80", "[::1]", "[::1]80", "[]:80",
                           "::1:80", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+1",
                           "127.0.0.1:http", "127.0.0.1:80 ", "127.0.0.1:*", "[::1:80"}) {
    auto hp = ParseHostPort(text);
    EXPECT_FALSE(hp.ok()) << text;
    if (!hp.ok()) {
      EXPECT_EQ(hp.status().code(), kInvalidAddressCode) << text;
    }
  }
}

TEST(ParseTcpEndpointTest, TcpEndpoints) {
  auto hp = ParseTcpEndpoint("tcp://127.0.0.1:7400");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7400);
  hp = ParseTcpEndpoint("tcp://[::1]:*");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 0);
  hp = ParseTcpEndpoint("tcp://*:7400");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "*");
}

TEST(ParseTcpEndpointTest, RefusesOtherSchemesAndMalformed) {
  for (const char* text : {"ipc:///tmp/hub.sock", "inproc://x", "127.0.0.1:7400", "tcp://",
                           "tcp://127.0.0.1", "tcp://:7400", "TCP://127.0.0.1:7400",
                           "tcp://127.0.0.1:99999", "tcp://127.0.0.1:7400;10.0.0.1:1"}) {
    auto hp = ParseTcpEndpoint(text);
    EXPECT_FALSE(hp.ok()) << text;
    if (!hp.ok()) {
      EXPECT_EQ(hp.status().code(), kInvalidAddressCode) << text;
    }
  }
}

}  // namespace
}  // namespace carehub
