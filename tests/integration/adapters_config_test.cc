// The adapter's config contract: the example configs in config/adapters/ parse, and a bad config
// makes `carehub-adapter` exit 2 with exactly one line on stderr naming the problem.

#include <gtest/gtest.h>

#include <fstream>

#include "adapters_support.h"
#include "carehub/adapters/adapter_config.h"

namespace carehub::itest {
namespace {

using adapters::AdapterKind;

TEST(AdapterConfigTest, ExampleConfigsParse) {
  const std::filesystem::path dir = std::filesystem::path(CAREHUB_SOURCE_DIR) / "config/adapters";
  struct Example {
    std::string file;
    AdapterKind kind;
    std::string publisher;
  };
  for (const Example& e : {Example{"rxk-hl7.yaml", AdapterKind::kHl7, "RXK"},
                           Example{"rr8-hl7.yaml", AdapterKind::kHl7, "RR8"},
                           Example{"ry6-fhir.yaml", AdapterKind::kFhir, "RY6"},
                           Example{"gp-csv.yaml", AdapterKind::kCsv, "QWO"}}) {
    auto config = adapters::LoadAdapterConfig(dir / e.file, e.kind);
    ASSERT_TRUE(config.ok()) << e.file << ": " << config.status().ToString();
    EXPECT_EQ(config->publisher_ods, e.publisher) << e.file;
    EXPECT_EQ(config->hub_endpoint, "tcp://127.0.0.1:7400") << e.file;
    EXPECT_FALSE(config->curve.has_value()) << e.file;
    EXPECT_EQ(config->EndpointsFile().filename(), "adapter-endpoints.json");
  }
  auto gp = adapters::LoadAdapterConfig(dir / "gp-csv.yaml", AdapterKind::kCsv);
  ASSERT_TRUE(gp.ok());
  EXPECT_EQ(gp->allowed_sites.size(), 30u);
  EXPECT_EQ(gp->source_system, "gp-extract");
  EXPECT_EQ(gp->EndpointsFile(), "data/adapters/gp-csv/adapter-endpoints.json");
  // The HL7 example's section does not fit a FHIR adapter: the wrong file is refused.
  auto wrong = adapters::LoadAdapterConfig(dir / "rxk-hl7.yaml", AdapterKind::kFhir);
  EXPECT_FALSE(wrong.ok());
}

const char kGood[] =
    "identity:\n  publisher_ods: RXK\n"
    "hub:\n  endpoint: tcp://127.0.0.1:7400\n"
    "outbox:\n  dir: OUTBOX\n";

TEST(AdapterConfigTest, BadConfigExitsTwoWithOneLine) {
  TempDir dir("adapter-config");
  const std::string outbox = (dir.path() / "outbox").string();
  struct Case {
    std::string name;
    std::string yaml;
    std::string expect;  // in the stderr line
  };
  const std::vector<Case> cases = {
      {"unknown top-level key", "identty:\n  publisher_ods: RXK\n", "unknown key 'identty'"},
      {"unknown nested key",
       "identity:\n  publisher_ods: RXK\nhub:\n  endpont: tcp://127.0.0.1:7400\noutbox:\n  dir: "
       "x\n",
       "hub: unknown key 'endpont'"},
      {"missing publisher", "identity:\n  allowed_sites: [RXK01]\noutbox:\n  dir: x\n",
       "identity.publisher_ods: is required"},
      {"not an ODS code", "identity:\n  publisher_ods: rxk!\noutbox:\n  dir: x\n",
       "is not an ODS code"},
      {"missing outbox", "identity:\n  publisher_ods: RXK\n", "outbox: section is required"},
      {"plain transport off loopback",
       "identity:\n  publisher_ods: RXK\nhub:\n  endpoint: tcp://10.1.2.3:7400\noutbox:\n  dir: "
       "x\n",
       "is not loopback"},
      {"missing key file",
       "identity:\n  publisher_ods: RXK\nhub:\n  client_key_file: nope.key\n"
       "  server_public_key_file: hub.pub\noutbox:\n  dir: x\n",
       "hub.client_key_file"},
      {"section of another kind", std::string(kGood) + "fhir:\n  max_body_bytes: 10\n",
       "fhir: section does not apply to a hl7 adapter"},
      {"negative count", std::string(kGood) + "hl7:\n  max_connections: -1\n",
       "hl7.max_connections: must be between 1 and"},
      {"wrong type", std::string(kGood) + "hl7:\n  max_connections: [1, 2]\n",
       "hl7.max_connections"},
      {"bad log level", std::string(kGood) + "logging:\n  level: loud\n", "logging.level"},
      {"admin off loopback without token", std::string(kGood) + "admin:\n  listen: 0.0.0.0:9470\n",
       "admin.token_file"},
      {"not YAML", "identity: [unclosed\n", "not valid YAML"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string yaml = c.yaml;
    const size_t at = yaml.find("OUTBOX");
    if (at != std::string::npos) {
      yaml.replace(at, 6, outbox);
    }
    const std::filesystem::path file = dir.path() / "bad.yaml";
    {
      std::ofstream out(file, std::ios::trunc);
      out << yaml;
    }
    auto run = RunCommand({BinaryPath("carehub-adapter").string(), "hl7", "--listen", "127.0.0.1:0",
                           "--config", file.string()},
                          dir.path(), std::chrono::seconds(20));
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_TRUE(run->status.Exited(2)) << run->status.ToString() << " " << run->err;
    ASSERT_FALSE(run->err.empty());
    EXPECT_EQ(run->err.find('\n'), run->err.size() - 1) << "more than one line: " << run->err;
    EXPECT_EQ(run->err.rfind("carehub-adapter: ", 0), 0u) << run->err;
    EXPECT_NE(run->err.find(c.expect), std::string::npos) << run->err;
  }

  // The config file itself missing, and a bad --listen address.
  auto missing = RunCommand({BinaryPath("carehub-adapter").string(), "fhir", "--listen",
                             "127.0.0.1:0", "--config", (dir.path() / "absent.yaml").string()},
                            dir.path(), std::chrono::seconds(20));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->status.Exited(2));
  EXPECT_NE(missing->err.find("cannot be read"), std::string::npos) << missing->err;

  const std::filesystem::path good = dir.path() / "good.yaml";
  {
    std::string yaml = kGood;
    yaml.replace(yaml.find("OUTBOX"), 6, outbox);
    std::ofstream out(good);
    out << yaml;
  }
  auto bad_listen = RunCommand({BinaryPath("carehub-adapter").string(), "hl7", "--listen",
                                "127.0.0.1:99999", "--config", good.string()},
                               dir.path(), std::chrono::seconds(20));
  ASSERT_TRUE(bad_listen.ok());
  EXPECT_TRUE(bad_listen->status.Exited(2)) << bad_listen->err;
  EXPECT_NE(bad_listen->err.find("--listen"), std::string::npos) << bad_listen->err;
}

}  // namespace
}  // namespace carehub::itest
