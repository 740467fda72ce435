#include "carehub/core/address.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

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

using Parser = Result<HostPort> (*)(std::string_view);

struct ParseCase {
  Parser parse;
  const char* text;
  const char* host;
  uint16_t port;
};

TEST(ParseHostPortTest, KnownAnswers) {
  for (const ParseCase& c : {
           ParseCase{ParseHostPort, "127.0.0.1:7480", "127.0.0.1", 7480},
           ParseCase{ParseHostPort, "[::1]:0", "::1", 0},
           ParseCase{ParseHostPort, "hub.example.net:65535", "hub.example.net", 65535},
           ParseCase{ParseTcpEndpoint, "tcp://127.0.0.1:7400", "127.0.0.1", 7400},
           ParseCase{ParseTcpEndpoint, "tcp://[::1]:*", "::1", 0},  // ZeroMQ's ephemeral port
           ParseCase{ParseTcpEndpoint, "tcp://*:7400", "*", 7400},
       }) {
    auto hp = c.parse(c.text);
    ASSERT_TRUE(hp.ok()) << c.text << ": " << hp.status().ToString();
    EXPECT_EQ(hp->host, c.host) << c.text;
    EXPECT_EQ(hp->port, c.port) << c.text;
  }
}

TEST(ParseHostPortTest, RefusesMalformed) {
  const std::initializer_list<std::pair<Parser, const char*>> cases = {
      {ParseHostPort, ""},
      {ParseHostPort, "127.0.0.1"},
      {ParseHostPort, "127.0.0.1:"},
      {ParseHostPort, ":80"},
      {ParseHostPort, "[::1]"},
      {ParseHostPort, "[::1]80"},
      {ParseHostPort, "[]:80"},
      {ParseHostPort, "::1:80"},
      {ParseHostPort, "127.0.0.1:65536"},
      {ParseHostPort, "127.0.0.1:-1"},
      {ParseHostPort, "127.0.0.1:+1"},
      {ParseHostPort, "127.0.0.1:http"},
      {ParseHostPort, "127.0.0.1:80 "},
      {ParseHostPort, "127.0.0.1:*"},
      {ParseHostPort, "[::1:80"},
      {ParseTcpEndpoint, "ipc:///tmp/hub.sock"},
      {ParseTcpEndpoint, "inproc://x"},
      {ParseTcpEndpoint, "127.0.0.1:7400"},
      {ParseTcpEndpoint, "tcp://"},
      {ParseTcpEndpoint, "tcp://127.0.0.1"},
      {ParseTcpEndpoint, "tcp://:7400"},
      {ParseTcpEndpoint, "TCP://127.0.0.1:7400"},
      {ParseTcpEndpoint, "tcp://127.0.0.1:99999"},
      {ParseTcpEndpoint, "tcp://127.0.0.1:7400;10.0.0.1:1"},
  };
  for (const auto& [parse, text] : cases) {
    auto hp = parse(text);
    ASSERT_FALSE(hp.ok()) << text;
    EXPECT_EQ(hp.status().code(), kInvalidAddressCode) << text;
  }
}

}  // namespace
}  // namespace carehub
