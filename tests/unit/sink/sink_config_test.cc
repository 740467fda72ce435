#include "carehub/sink/sink_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace carehub::sink {
namespace {

namespace fs = std::filesystem;

class SinkConfigTest : public ::testing::Test {
 protected:
  Result<SinkConfig> Load(const std::string& yaml) {
    std::ofstream(path_) << yaml;
    return LoadSinkConfigFile(path_);
  }
  void TearDown() override { fs::remove(path_); }
  fs::path path_ =
      fs::temp_directory_path() / ("carehub-sink-config-" + std::to_string(getpid()) + ".yaml");
};

SinkConfig Valid() {
  SinkConfig c;
  c.subscription = "feed";
  c.dsn = "postgresql:///carehub";
  return c;
}

TEST_F(SinkConfigTest, ReadsEverySectionAndResolvesFilesBesideTheConfig) {
  auto c = Load(
      "subscription: feed\nhub: {endpoint: \"tcp://127.0.0.1:9\", client_key_file: k, "
      "server_public_key_file: /abs/s, window: 500}\npostgres: {dsn: \"host=/tmp dbname=x\", "
      "schema: wh}\nbatch: {max_events: 10, max_delay_ms: 5}\nreconnect: {initial_ms: 1, max_ms: "
      "2}\nadmin: {listen: \"127.0.0.1:0\"}\nlogging: {level: debug}\nprogress: {interval_s: 1}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->window, 500u);
  EXPECT_EQ(c->schema, "wh");
  EXPECT_EQ(c->batch_max_events, 10u);
  EXPECT_EQ(c->client_key_file, (path_.parent_path() / "k").string());
  EXPECT_EQ(c->server_public_key_file, "/abs/s");
  EXPECT_TRUE(ValidateSinkConfig(c.value()).ok());
}

TEST_F(SinkConfigTest, RefusesWhatItDoesNotKnowWithTheKeyNamed) {
  for (const auto& [yaml, says] : std::vector<std::pair<std::string, std::string>>{
           {"subscription: x\npostgress: {}\n", "unknown key 'postgress'"},
           {"batch: {max_events: -1}\n", "batch.max_events"},
           {"batch: {max_events: lots}\n", "batch.max_events"},
           {"hub: [1, 2]\n", "hub"},
           {"subscription: [a]\n", "subscription"},
           {"- a\n- b\n", "mapping"},
           {"a: [\n", "yaml"},
       }) {
    auto c = Load(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_EQ(c.status().code(), "bad_config");
    EXPECT_NE(c.status().message().find(says), std::string::npos) << c.status().message();
  }
  auto missing = LoadSinkConfigFile("/nonexistent/sink.yaml");
  EXPECT_EQ(missing.status().code(), "bad_config");
}

TEST_F(SinkConfigTest, ValidationNamesTheProblem) {
  EXPECT_TRUE(ValidateSinkConfig(Valid()).ok());
  auto refused = [](SinkConfig c, const std::string& says) {
    Status s = ValidateSinkConfig(c);
    EXPECT_EQ(s.code(), "bad_config") << says;
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
  };
  SinkConfig c = Valid();
  c.subscription = "";
  refused(c, "subscription");
  c = Valid();
  c.dsn = "host=x port";
  refused(c, "postgres.dsn");
  c = Valid();
  c.schema = "Robert'); DROP";
  refused(c, "postgres.schema");
  c = Valid();
  c.hub_endpoint = "tcp://10.0.0.1:7401";
  refused(c, "CURVE");
  c = Valid();
  c.admin_listen = "0.0.0.0:9000";
  refused(c, "bearer_token");
  c = Valid();
  c.log_level = "loud";
  refused(c, "logging.level");
  c = Valid();
  c.client_key_file = "k";
  refused(c, "go together");
}

}  // namespace
}  // namespace carehub::sink
