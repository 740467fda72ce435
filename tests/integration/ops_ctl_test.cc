// Operations: carehubctl (the real binary) against a live hub, plus its local commands
// (agreements check, keygen) and its time-argument parsing.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "carehub/client/curve.h"
#include "ctl_format.h"
#include "harness/workload.h"
#include "ops_common.h"

namespace carehub::itest::ops {
namespace {

Result<CommandResult> Ctl(const std::filesystem::path& work, std::vector<std::string> args) {
  return RunTool("carehubctl", args, work, std::chrono::seconds(30));
}

size_t Lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(OpsCtl, ParsesRfc3339AndRelativeTimes) {
  const int64_t now = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
  EXPECT_EQ(ctl::ParseTimeArg("2026-01-01T00:00:00Z", 0).value(), now);
  EXPECT_EQ(ctl::ParseTimeArg("2026-01-01", 0).value(), now);
  EXPECT_EQ(ctl::ParseTimeArg("2026-01-01T01:00:00+01:00", 0).value(), now);
  EXPECT_EQ(ctl::ParseTimeArg("2025-12-31T23:30:00.250-00:30", 0).value(), now + 250);
  EXPECT_EQ(ctl::ParseTimeArg("1h", now).value(), now - 3'600'000);
  EXPECT_EQ(ctl::ParseTimeArg("90s", now).value(), now - 90'000);
  EXPECT_EQ(ctl::ParseTimeArg("7d", now).value(), now - 7 * 86'400'000LL);
  EXPECT_FALSE(ctl::ParseTimeArg("yesterday", now).ok());
  EXPECT_FALSE(ctl::ParseTimeArg("2026-02-30T00:00:00Z", now).ok());
  EXPECT_FALSE(ctl::ParseTimeArg("1y", now).ok());
  EXPECT_EQ(ctl::FormatUtc(now + 3'723'000), "2026-01-01T01:02:03Z");
}

TEST(OpsCtl, AgainstALiveHub) {
  auto started = HubProcess::Start(HubOptions("ops-ctl", DemoAgreementsYaml()));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  const std::string admin = "--admin=" + hub.admin_address();
  auto summary =
      RunPublish(hub, hub.dir(), 600, 61, {"--invalid-ratio", "0.05", "--publisher", "M85001"});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  const auto accepted = (*summary)["accepted"].get<uint64_t>();
  const auto rejected = (*summary)["rejected"].get<uint64_t>();
  ASSERT_GT(rejected, 0u);
  // A delivery, so the audit log has something.
  auto sub = RunTool(
      "carehub-subscribe",
      {"--endpoint", hub.subscribe_endpoint(), "--subscription", "ics-analytics-feed", "--from",
       "earliest", "--until-idle", "1", "--out", (hub.dir() / "ics.ndjson").string()},
      hub.dir());
  ASSERT_TRUE(sub.ok() && sub->status.Exited(0)) << (sub.ok() ? sub->err : sub.status().ToString());

  // status --json parses and agrees with what was published.
  auto status = Ctl(hub.dir(), {admin, "status", "--json"});
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(status->status.Exited(0)) << status->err;
  auto st = nlohmann::json::parse(status->out, nullptr, false);
  ASSERT_TRUE(st.is_object()) << status->out;
  EXPECT_TRUE(st["ready"].get<bool>());
  EXPECT_EQ(st["totals"]["accepted"].get<uint64_t>(), accepted);
  EXPECT_EQ(st["publishers"]["M85001"]["accepted"].get<uint64_t>(), accepted);

  // The table for people.
  auto table = Ctl(hub.dir(), {admin, "status"});
  ASSERT_TRUE(table.ok() && table->status.Exited(0));
  EXPECT_NE(table->out.find("READY"), std::string::npos) << table->out;
  EXPECT_NE(table->out.find("M85001"), std::string::npos) << table->out;
  EXPECT_NE(table->out.find("ics-analytics-feed"), std::string::npos) << table->out;

  auto lag = Ctl(hub.dir(), {admin, "lag", "--json"});
  ASSERT_TRUE(lag.ok() && lag->status.Exited(0)) << (lag.ok() ? lag->err : "");
  auto lags = nlohmann::json::parse(lag->out);
  bool saw_ics = false;
  for (const auto& s : lags) {
    if (s["id"] == "ics-analytics-feed") {
      saw_ics = true;
      EXPECT_EQ(s["lag"].get<uint64_t>(), 0u) << lag->out;  // it read everything
    } else if (s["id"] == "lth-direct-care") {
      EXPECT_GT(s["lag"].get<uint64_t>(), 0u) << lag->out;  // never connected
    }
  }
  EXPECT_TRUE(saw_ics) << lag->out;

  // quarantine list / show / replay.
  auto list = Ctl(hub.dir(), {admin, "quarantine", "list", "--json"});
  ASSERT_TRUE(list.ok() && list->status.Exited(0)) << (list.ok() ? list->err : "");
  auto q = nlohmann::json::parse(list->out);
  EXPECT_EQ(q["total"].get<uint64_t>(), rejected);
  ASSERT_FALSE(q["items"].empty());
  const uint64_t id = q["items"][0]["id"].get<uint64_t>();
  const std::string reason = q["items"][0]["reason"].get<std::string>();
  auto list_table = Ctl(hub.dir(), {admin, "quarantine", "list"});
  ASSERT_TRUE(list_table.ok() && list_table->status.Exited(0));
  EXPECT_NE(list_table->out.find(reason), std::string::npos) << list_table->out;

  auto show = Ctl(hub.dir(), {admin, "quarantine", "show", std::to_string(id)});
  ASSERT_TRUE(show.ok() && show->status.Exited(0)) << (show.ok() ? show->err : "");
  auto shown = nlohmann::json::parse(show->out);
  EXPECT_EQ(shown["reason"], reason);
  EXPECT_TRUE(shown.contains("event")) << show->out;

  // Replaying an invalid event: the hub refuses it again, and says why; exit 1 for scripts.
  auto replay = Ctl(hub.dir(), {admin, "quarantine", "replay", std::to_string(id)});
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replay->status.Exited(1)) << replay->out << replay->err;
  EXPECT_NE(replay->out.find("REJECTED"), std::string::npos) << replay->out;
  EXPECT_NE(replay->out.find(reason), std::string::npos) << replay->out;
  auto after = Ctl(hub.dir(), {admin, "quarantine", "show", std::to_string(id)});
  ASSERT_TRUE(after.ok() && after->status.Exited(0));
  EXPECT_NE(nlohmann::json::parse(after->out)["replay_outcome"].get<std::string>().find("REJECTED"),
            std::string::npos);
  auto missing = Ctl(hub.dir(), {admin, "quarantine", "show", "999999"});
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->status.Exited(1));
  EXPECT_EQ(Lines(missing->err), 1u) << missing->err;
  EXPECT_NE(missing->err.find("404"), std::string::npos) << missing->err;

  // agreements reload, and the audit trail it leaves next to the delivery audit.
  auto reload = Ctl(hub.dir(), {admin, "agreements", "reload"});
  ASSERT_TRUE(reload.ok());
  EXPECT_TRUE(reload->status.Exited(0)) << reload->err;
  auto audit =
      Ctl(hub.dir(), {admin, "audit", "--subscriber", "ics-analytics", "--since", "1h", "--json"});
  ASSERT_TRUE(audit.ok() && audit->status.Exited(0)) << (audit.ok() ? audit->err : "");
  auto records = nlohmann::json::parse(audit->out)["items"];
  ASSERT_FALSE(records.empty()) << audit->out;
  uint64_t delivered = 0;
  for (const auto& a : records) {
    EXPECT_EQ(a["subscriber"], "ics-analytics");
    delivered += a["delivered"].get<uint64_t>();
  }
  EXPECT_GT(delivered, 0u);
  auto audit_table = Ctl(hub.dir(), {admin, "audit", "--subscriber", "ics-analytics", "--since",
                                     "2020-01-01T00:00:00Z"});
  ASSERT_TRUE(audit_table.ok() && audit_table->status.Exited(0));
  EXPECT_NE(audit_table->out.find("ics-analytics-feed"), std::string::npos) << audit_table->out;
  // A time in the future finds nothing.
  auto none = Ctl(hub.dir(), {admin, "audit", "--since", "2999-01-01", "--json"});
  ASSERT_TRUE(none.ok() && none->status.Exited(0));
  EXPECT_TRUE(nlohmann::json::parse(none->out)["items"].empty());
  auto bad_time = Ctl(hub.dir(), {admin, "audit", "--since", "last tuesday"});
  ASSERT_TRUE(bad_time.ok());
  EXPECT_TRUE(bad_time->status.Exited(1));
  EXPECT_EQ(Lines(bad_time->err), 1u) << bad_time->err;

  ASSERT_TRUE(hub.Stop().ok());
  // The hub is gone now: one clear line, exit 1.
  auto gone = Ctl(hub.dir(), {admin, "status"});
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->status.Exited(1));
  EXPECT_EQ(Lines(gone->err), 1u) << gone->err;
  EXPECT_EQ(
      gone->err.rfind("carehubctl: cannot reach the hub's admin API at " + hub.admin_address(), 0),
      0u)
      << gone->err;
  EXPECT_TRUE(gone->out.empty());
}

TEST(OpsCtl, TokenProtectedAdminApi) {
  TempDir tmp("ops-ctl-token");
  auto token_file = tmp.path() / "admin.token";
  std::ofstream(token_file) << "s3cret-token-for-tests-0123456789\n";
  const std::string yaml = "admin:\n  token_file: " + token_file.string() + "\n";
  // A token file other users can read (the umask's 0644) is refused at start, naming the fix.
  std::filesystem::permissions(token_file, std::filesystem::perms(0644));
  auto readable = HubProcess::Start(HubOptions("ops-ctl-token-0644", yaml));
  ASSERT_FALSE(readable.ok()) << "a world-readable admin token file was accepted";
  EXPECT_NE(readable.status().message().find("chmod o-rwx"), std::string::npos)
      << readable.status().message();
  std::filesystem::permissions(token_file, std::filesystem::perms(0640));
  auto started = HubProcess::Start(HubOptions("ops-ctl-token", yaml));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  const std::string admin = "--admin=" + hub.admin_address();
  auto denied = Ctl(hub.dir(), {admin, "status"});
  ASSERT_TRUE(denied.ok());
  EXPECT_TRUE(denied->status.Exited(1));
  EXPECT_NE(denied->err.find("401"), std::string::npos) << denied->err;
  // carehubctl names its own flag, not only the HTTP header.
  EXPECT_NE(denied->err.find("--token-file"), std::string::npos) << denied->err;
  EXPECT_EQ(Lines(denied->err), 1u);
  // carehubctl refuses to send a token others can read, too.
  std::filesystem::permissions(token_file, std::filesystem::perms(0644));
  auto exposed = Ctl(hub.dir(), {admin, "--token-file", token_file.string(), "status"});
  ASSERT_TRUE(exposed.ok());
  EXPECT_TRUE(exposed->status.Exited(1));
  EXPECT_NE(exposed->err.find("mode 0644"), std::string::npos) << exposed->err;
  std::filesystem::permissions(token_file, std::filesystem::perms(0600));
  auto allowed = Ctl(hub.dir(), {admin, "--token-file", token_file.string(), "status", "--json"});
  ASSERT_TRUE(allowed.ok());
  EXPECT_TRUE(allowed->status.Exited(0)) << allowed->err;
  EXPECT_TRUE(nlohmann::json::parse(allowed->out, nullptr, false).is_object());
  ASSERT_TRUE(hub.Stop().ok());
}

TEST(OpsCtl, AgreementsCheckGoodAndBadFiles) {
  TempDir tmp("ops-ctl-agreements");
  auto good = Ctl(tmp.path(), {"agreements", "check", DemoAgreements().string()});
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->status.Exited(0)) << good->err;
  EXPECT_EQ(good->out.rfind("OK ", 0), 0u) << good->out;
  EXPECT_NE(good->out.find("DSA-2026-ICS-001"), std::string::npos) << good->out;

  // The demo file with one typo in a key: refused, one line naming the file.
  std::string text = ReadFileText(DemoAgreements());
  auto pos = text.find("patient_fields:");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 15, "patient_feilds:");
  auto bad = tmp.path() / "agreements.yaml";
  std::ofstream(bad) << text;
  // The secret and opt-out files the demo names sit next to it.
  for (const char* f : {"pseudonym.key", "national-opt-out.txt"}) {
    std::filesystem::copy_file(DemoAgreements().parent_path() / f, tmp.path() / f);
  }
  auto refused = Ctl(tmp.path(), {"agreements", "check", bad.string()});
  ASSERT_TRUE(refused.ok());
  EXPECT_TRUE(refused->status.Exited(1));
  EXPECT_EQ(Lines(refused->err), 1u) << refused->err;
  EXPECT_NE(refused->err.find(bad.string()), std::string::npos) << refused->err;
  EXPECT_NE(refused->err.find("patient_feilds"), std::string::npos) << refused->err;
  EXPECT_TRUE(refused->out.empty());

  auto absent = Ctl(tmp.path(), {"agreements", "check", (tmp.path() / "nope.yaml").string()});
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->status.Exited(1));
  EXPECT_EQ(Lines(absent->err), 1u) << absent->err;
}

TEST(OpsCtl, KeygenWritesKeyFilesWithSafeModes) {
  TempDir tmp("ops-ctl-keygen");
  auto name = (tmp.path() / "rxk-pas").string();
  auto run = Ctl(tmp.path(), {"keygen", "--out", name});
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(run->status.Exited(0)) << run->err;
  struct stat key_stat {};
  struct stat pub_stat {};
  ASSERT_EQ(::stat((name + ".key").c_str(), &key_stat), 0);
  ASSERT_EQ(::stat((name + ".pub").c_str(), &pub_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u);
  EXPECT_EQ(pub_stat.st_mode & 0777, 0644u);
  // The client library reads both; the public halves agree and the secret is not in the .pub.
  auto keys = client::ReadKeyFile(name + ".key");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  auto pub = client::ReadPublicKeyFile(name + ".pub");
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(keys->public_key, pub.value());
  EXPECT_NE(keys->public_key, keys->secret_key);
  EXPECT_EQ(ReadFileText(name + ".pub").find(keys->secret_key), std::string::npos);
  EXPECT_NE(run->out.find(keys->public_key), std::string::npos);

  // Never overwrites a key by accident.
  auto again = Ctl(tmp.path(), {"keygen", "--out", name});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->status.Exited(1));
  EXPECT_EQ(Lines(again->err), 1u) << again->err;
  EXPECT_EQ(client::ReadKeyFile(name + ".key")->secret_key, keys->secret_key);
  auto forced = Ctl(tmp.path(), {"keygen", "--out", name, "--force"});
  ASSERT_TRUE(forced.ok() && forced->status.Exited(0));
  EXPECT_NE(client::ReadKeyFile(name + ".key")->secret_key, keys->secret_key);
  ASSERT_EQ(::stat((name + ".key").c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace carehub::itest::ops
