// The config refuses what would deliver to the wrong place or in the clear, naming the key.

#include <gtest/gtest.h>

#include "carehub/notify/config.h"

namespace carehub::notify {
namespace {

std::string WithEndpoint(const std::string& endpoint, const std::string& extra = "") {
  return "state_dir: /tmp/x\nsubscriptions:\n  - id: feed\n    purpose: direct_care\n" + extra +
         "    endpoint: " + endpoint + "\n";
}

TEST(NotifyConfigTest, AcceptsHttpsAndLoopbackHttp) {
  auto c = ParseNotifyConfig(WithEndpoint("{url: \"https://receiver.example.nhs.uk/notify\"}"), "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->subscriptions[0].fhir_id, "feed");
  EXPECT_EQ(c->subscriptions[0].payload, Payload::kIdOnly);
  EXPECT_TRUE(ParseNotifyConfig(WithEndpoint("{url: \"http://127.0.0.1:8080/n\"}"), "").ok());
  EXPECT_TRUE(ParseNotifyConfig(WithEndpoint("{url: \"http://[::1]:8080/n\"}"), "").ok());
}

TEST(NotifyConfigTest, EveryHubEndpointOfAPairMustBeLoopbackWithoutCurve) {
  const std::string subs =
      "state_dir: /tmp/x\nsubscriptions:\n  - id: a\n    purpose: direct_care\n"
      "    endpoint: {url: \"https://r/n\"}\n";
  EXPECT_TRUE(ParseNotifyConfig(
                  "hub: {endpoint: \"tcp://127.0.0.1:7401, tcp://127.0.0.2:7401\"}\n" + subs, "")
                  .ok());
  auto c = ParseNotifyConfig(
      "hub: {endpoint: \"tcp://127.0.0.1:7401, tcp://10.0.0.9:7401\"}\n" + subs, "");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("tcp://10.0.0.9:7401"), std::string::npos);
}

TEST(NotifyConfigTest, RefusesPlainHttpOffLoopback) {
  for (const char* url : {"http://10.1.2.3/n", "http://localhost/n", "http://receiver.nhs.uk/n"}) {
    auto c = ParseNotifyConfig(WithEndpoint(std::string("{url: \"") + url + "\"}"), "");
    ASSERT_FALSE(c.ok()) << url;
    EXPECT_NE(c.status().message().find("subscriptions[0].endpoint.url"), std::string::npos);
  }
}

TEST(NotifyConfigTest, RefusesWhatWouldBeAMistake) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {WithEndpoint("{url: \"https://r/n\"}", "    payloads: id-only\n"), "unknown key 'payloads'"},
      {WithEndpoint("{url: \"https://r/n\", client_cert_file: /etc/hosts}"), "go together"},
      {WithEndpoint("{url: \"https://r/n\", bearer_token_file: /nonexistent/t}"), "cannot read"},
      {WithEndpoint("{url: \"ftp://r/n\"}"), "not an http(s)"},
      {WithEndpoint("{url: \"https://r/n\"}", "    fhir_id: has_underscore\n"), "not a FHIR id"},
      {WithEndpoint("{url: \"https://r/n\"}", "    max_events_per_notification: 0\n"), "between 1"},
      {"subscriptions:\n  - id: a\n    purpose: direct_care\n    endpoint: {url: "
       "\"https://r/n\"}\n",
       "state_dir"},
      {"state_dir: /tmp/x\nhub: {endpoint: \"tcp://10.0.0.5:7401\"}\nsubscriptions:\n  - id: a\n"
       "    purpose: direct_care\n    endpoint: {url: \"https://r/n\"}\n",
       "needs CURVE keys"},
      {WithEndpoint("{url: \"https://r/n\"}") + "  - id: feed\n    purpose: direct_care\n"
                                                "    endpoint: {url: \"https://r/m\"}\n",
       "listed twice"},
  };
  for (const auto& [yaml, reason] : cases) {
    auto c = ParseNotifyConfig(yaml, "");
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_EQ(c.status().code(), "bad_config");
    EXPECT_NE(c.status().message().find(reason), std::string::npos) << c.status().message();
  }
}

}  // namespace
}  // namespace carehub::notify
