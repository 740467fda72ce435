// The adapter makes a refusing hub visible where it happens (issue 22). It answers its source from
// the durable outbox whatever the hub does, so nothing else showed that the hub refused its key
// (it kept answering AA while its outbox grew) or rejected its events: only a metric did. Now the
// cause is logged at warning, shown on /healthz (still 200: the source is served) and in the
// status as hub_problem, and the hub's rejections are logged with their reasons.

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "adapters_support.h"
#include "security_support.h"

namespace carehub::itest {
namespace {

using security::NewKeyPair;
using security::Party;
using std::chrono::seconds;

template <typename Predicate>
bool Eventually(Predicate predicate, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return predicate();
}

TEST(AdapterHubProblemsTest, RefusedKeyIsLoggedAndOnHealthzAndHubRejectionsAreLogged) {
  const security::KeyPair adapter_key = NewKeyPair();
  // The hub does not know the adapter's key yet.
  auto hub = security::CurveHub::Start(
      "adapter-problems", {Party{"someone-else", "publisher", {"RR8"}, "", {NewKeyPair()}}});
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  TempDir dir("adapter-problems");
  security::WriteKeyFile(dir.path() / "adapter.key", adapter_key);
  std::ofstream(dir.path() / "hub.pub") << "public: " << (*hub)->server_keys().pub << "\n";
  const std::string yaml =
      "identity:\n  publisher_ods: RXK\n  allowed_sites: [RXK01]\n"
      "hub:\n  endpoint: " +
      (*hub)->process().ingest_endpoint() +
      "\n  client_key_file: " + (dir.path() / "adapter.key").string() +
      "\n  server_public_key_file: " + (dir.path() / "hub.pub").string() +
      "\n  resend_after_ms: 2000\n"
      "outbox:\n  dir: " +
      (dir.path() / "pas" / "outbox").string() +
      "\nadmin:\n  listen: 127.0.0.1:0\nlogging:\n  level: info\n";
  auto adapter = AdapterProcess::Start(dir.path(), "pas", "hl7", "127.0.0.1:0", yaml);
  ASSERT_TRUE(adapter.ok()) << adapter.status().ToString();
  auto& pas = *adapter.value();

  auto healthz = [&] {
    auto r = pas.AdminGet("/healthz");
    return r.ok() ? std::to_string(r->first) + " " + r->second : std::string("no answer");
  };
  ASSERT_TRUE(Eventually(
      [&] { return healthz().find("refused this client's CURVE key") != std::string::npos; },
      seconds(20)))
      << healthz() << "\n"
      << pas.ReadLog();
  EXPECT_EQ(healthz().rfind("200 ok\nwarning: hub at ", 0), 0u) << healthz();
  EXPECT_NE(pas.ReadLog().find("refused this client's CURVE key"), std::string::npos)
      << pas.ReadLog();
  auto status = pas.AdminGet("/api/v1/status");
  ASSERT_TRUE(status.ok());
  EXPECT_NE(status->second.find("\"hub_problem\":\"hub at"), std::string::npos) << status->second;

  // The source is still answered AA: the message is safe in the outbox.
  auto mllp = MllpClient::Connect(pas.endpoints().listen_host, pas.endpoints().listen_port);
  ASSERT_TRUE(mllp.ok()) << mllp.status().ToString();
  auto ack = mllp.value()->Send(AdtMessage("A01", "HP-1"), std::chrono::seconds(10));
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(ParseAck(*ack).code, "AA") << *ack;

  // The key is let in, but for another ODS code: the warning goes, the hub's refusal of the event
  // is logged with its reason.
  ASSERT_TRUE(
      (*hub)->WriteIdentities({Party{"rxk-pas", "publisher", {"RR8"}, "", {adapter_key}}}).ok());
  ASSERT_TRUE((*hub)->Reload().ok());
  EXPECT_TRUE(Eventually([&] { return healthz() == "200 ok\n"; }, seconds(30))) << healthz() << "\n"
                                                                                << pas.ReadLog();
  EXPECT_TRUE(Eventually(
      [&] {
        const std::string log = pas.ReadLog();
        return log.find("hub refused events of batch") != std::string::npos &&
               log.find("REJECTED publisher_not_authorised x1") != std::string::npos;
      },
      seconds(30)))
      << pas.ReadLog();
  ASSERT_TRUE(pas.Stop().ok());
}

}  // namespace
}  // namespace carehub::itest
