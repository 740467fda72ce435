// Operator experience (issue 22), against the real binaries: `carehubctl reload` says what each
// file changed and audits only real changes; a JSON log stays one JSON object per line through
// reloads (applied, unchanged, refused); secret files others can read are refused; a client that
// hears nothing from a CURVE hub names the likely cause (a refused key, the wrong server key, no
// keys, a missing option) instead of only a timeout.

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "carehub/hub/identities.h"
#include "harness/workload.h"
#include "ops_common.h"
#include "security_support.h"

namespace carehub::itest::ops {
namespace {

using security::CurveHub;
using security::KeyPair;
using security::NewKeyPair;
using security::Party;

// Audit records of `kind` the hub holds now.
size_t AuditCount(const CurveHub& hub, const std::string& kind) {
  auto audit = nlohmann::json::parse(hub.AdminGet("/api/v1/audit?limit=100000"), nullptr, false);
  size_t n = 0;
  if (audit.is_object()) {
    for (const auto& a : audit.value("items", nlohmann::json::array())) {
      n += a.value("kind", "") == kind ? 1 : 0;
    }
  }
  return n;
}

class OpsExperienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    publisher_ = Party{"rxk-pas", "publisher", {"RXK"}, "", {NewKeyPair()}};
    analytics_ = Party{"ics", "subscriber", {}, "ics-analytics", {NewKeyPair()}};
  }

  void StartHub(const std::string& log_format) {
    auto hub = CurveHub::Start("ops-ux", {publisher_, analytics_}, "info", log_format);
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
    admin_ = "--admin=" + hub_->process().admin_address();
  }

  Result<CommandResult> Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), admin_);
    return RunTool("carehubctl", args, hub_->process().dir());
  }

  Party publisher_;
  Party analytics_;
  std::unique_ptr<CurveHub> hub_;
  std::string admin_;
};

// `carehubctl reload` (the name the docs always used) reloads both files and prints what each
// did; an unchanged file leaves no audit record; a refused one says why and exits 1; and the hub's
// JSON log parses line by line through all of it (reload messages used to carry raw newlines).
TEST_F(OpsExperienceTest, ReloadReportsChangesAuditsOnlyChangesAndTheJsonLogParses) {
  StartHub("json");

  // Nothing changed: both files reported, no change record.
  auto same = Ctl({"reload"});
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_TRUE(same->status.Exited(0)) << same->out << same->err;
  EXPECT_NE(same->out.find("identities: reloaded from"), std::string::npos) << same->out;
  EXPECT_NE(same->out.find("agreements: reloaded from"), std::string::npos) << same->out;
  EXPECT_NE(same->out.find("2 identities, 2 keys in force"), std::string::npos) << same->out;
  EXPECT_EQ(same->out.find("change(s)"), std::string::npos) << same->out;
  EXPECT_EQ(AuditCount(*hub_, "identities_changed"), 0u);
  EXPECT_EQ(AuditCount(*hub_, "agreements_changed"), 0u);

  // A second key for the publisher (rotation step 1): one change, named, audited once.
  Party rotated = publisher_;
  rotated.keys.push_back(NewKeyPair());
  ASSERT_TRUE(hub_->WriteIdentities({rotated, analytics_}).ok());
  auto changed = Ctl({"reload"});
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(changed->status.Exited(0)) << changed->out << changed->err;
  EXPECT_NE(changed->out.find("identities: reloaded from"), std::string::npos) << changed->out;
  EXPECT_NE(changed->out.find("1 change(s) (2 identities, 3 keys in force)"), std::string::npos)
      << changed->out;
  EXPECT_NE(changed->out.find("  changed identity rxk-pas"), std::string::npos) << changed->out;
  EXPECT_EQ(AuditCount(*hub_, "identities_changed"), 1u);
  // The JSON report says the same, for scripts.
  auto as_json = Ctl({"reload", "--json"});
  ASSERT_TRUE(as_json.ok() && as_json->status.Exited(0));
  auto report = nlohmann::json::parse(as_json->out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << as_json->out;
  ASSERT_EQ(report["files"].size(), 2u);
  EXPECT_TRUE(report["files"][0]["changes"].empty()) << as_json->out;
  EXPECT_EQ(AuditCount(*hub_, "identities_changed"), 1u) << "an unchanged reload was audited";

  // An identities file with an unquoted key YAML reads as an alias: refused, the old set stays,
  // the agreements still reload; exit 1 with the reason on stderr.
  std::string bad = security::IdentitiesYaml({rotated, analytics_});
  const std::string quoted = "'" + rotated.keys[1].pub + "'";
  bad.replace(bad.find(quoted), quoted.size(), "*" + rotated.keys[1].pub.substr(1));
  ASSERT_TRUE(hub_->WriteIdentitiesText(bad).ok());
  auto refused = Ctl({"reload"});
  ASSERT_TRUE(refused.ok());
  EXPECT_TRUE(refused->status.Exited(1)) << refused->out << refused->err;
  EXPECT_NE(refused->out.find("identities: REFUSED"), std::string::npos) << refused->out;
  EXPECT_NE(refused->out.find("(2 identities, 3 keys)"), std::string::npos) << refused->out;
  EXPECT_NE(refused->out.find("rxk-pas"), std::string::npos) << refused->out;
  EXPECT_NE(refused->out.find("quote"), std::string::npos) << refused->out;
  EXPECT_NE(refused->out.find("agreements: reloaded from"), std::string::npos) << refused->out;
  EXPECT_EQ(AuditCount(*hub_, "identities_rejected"), 1u);
  // The older command name does the same.
  auto older = Ctl({"agreements", "reload"});
  ASSERT_TRUE(older.ok());
  EXPECT_TRUE(older->status.Exited(1));
  EXPECT_NE(older->out.find("identities: REFUSED"), std::string::npos) << older->out;
  // And SIGHUP, with a good file again.
  ASSERT_TRUE(hub_->WriteIdentities({publisher_, analytics_}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  EXPECT_EQ(AuditCount(*hub_, "identities_changed"), 2u);

  ASSERT_TRUE(hub_->process().Stop().ok());
  std::istringstream log(hub_->process().ReadLog());
  std::string line;
  size_t lines = 0;
  size_t reload_lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_object()) << "log line " << lines << " is not a JSON object: " << line;
    for (const char* key : {"ts", "level", "logger", "msg"}) {
      EXPECT_TRUE(parsed.contains(key)) << key << " missing: " << line;
    }
    const std::string msg = parsed.value("msg", "");
    reload_lines += msg.find("reload") != std::string::npos ? 1 : 0;
  }
  EXPECT_GE(lines, 10u);
  // 5 reloads of 2 files: each file's outcome is one line.
  EXPECT_GE(reload_lines, 10u);
}

// Quarantine records have a lifecycle: open -> replayed (a replay stored the event) / resolved /
// dismissed (an operator closed it, with who and why), audited; only open ones count in the gauge
// the growth alert watches, and the counts survive a restart. (Replayed-and-accepted records used
// to stay "in quarantine" and feed the alert.)
TEST_F(OpsExperienceTest, QuarantineLifecycleOpenReplayedResolvedDismissed) {
  WorkloadOptions o;
  o.seed = 2207;
  o.id_prefix = "ql-";
  o.events = 60;
  const std::vector<v1::Event> events = MakeWorkload(o).events;
  std::set<std::string> codes;
  for (const auto& e : events) {
    codes.insert(e.envelope().publisher_ods());
  }
  ASSERT_GE(codes.size(), 2u);
  // The publisher may not (yet) publish under one of the codes: those events are quarantined.
  const std::string withheld_code = *codes.begin();
  publisher_.ods.assign(std::next(codes.begin()), codes.end());
  StartHub("text");
  security::CurveDealer dealer(hub_->process().ingest_endpoint(), publisher_.keys[0],
                               hub_->server_keys().pub);
  auto published = dealer.Publish(events, std::chrono::seconds(10));
  ASSERT_TRUE(published.ok() && published.value().has_value());
  size_t refused = 0;
  for (const auto& r : published.value()->results()) {
    refused += r.reason() == "publisher_not_authorised" ? 1 : 0;
  }
  ASSERT_GE(refused, 3u);

  auto open_list = [&] {
    auto r = Ctl({"quarantine", "list", "--open", "--json"});
    EXPECT_TRUE(r.ok() && r->status.Exited(0));
    return nlohmann::json::parse(r.ok() ? r->out : "", nullptr, false);
  };
  auto listed = open_list();
  ASSERT_TRUE(listed.is_object());
  ASSERT_EQ(listed["items"].size(), refused);
  EXPECT_EQ(listed["open"], refused);
  EXPECT_EQ(hub_->Metric("carehub_quarantine_open_records"), refused);
  const uint64_t id1 = listed["items"][0]["id"];
  const uint64_t id2 = listed["items"][1]["id"];
  const uint64_t id3 = listed["items"][2]["id"];
  EXPECT_EQ(listed["items"][0]["state"], "open");

  auto dismissed = Ctl({"quarantine", "dismiss", std::to_string(id1), "--by", "alice", "--note",
                        "a test message from the PAS supplier"});
  ASSERT_TRUE(dismissed.ok());
  EXPECT_TRUE(dismissed->status.Exited(0)) << dismissed->err;
  EXPECT_NE(dismissed->out.find("dismissed by alice"), std::string::npos) << dismissed->out;
  // Closing it again is refused (409), naming its state.
  auto again = Ctl({"quarantine", "resolve", std::to_string(id1), "--by", "bob", "--note", "x"});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->status.Exited(1));
  EXPECT_NE(again->err.find("409"), std::string::npos) << again->err;
  EXPECT_NE(again->err.find("already dismissed"), std::string::npos) << again->err;
  // A note is required from carehubctl.
  auto no_note = Ctl({"quarantine", "resolve", std::to_string(id2)});
  ASSERT_TRUE(no_note.ok());
  EXPECT_FALSE(no_note->status.Exited(0));
  auto resolved = Ctl({"quarantine", "resolve", std::to_string(id2), "--by", "bob", "--note",
                       "the trust resent it corrected"});
  ASSERT_TRUE(resolved.ok());
  EXPECT_TRUE(resolved->status.Exited(0)) << resolved->err;

  // The code is granted; a replay stores the event and closes the record as replayed.
  Party widened = publisher_;
  widened.ods.push_back(withheld_code);
  ASSERT_TRUE(hub_->WriteIdentities({widened, analytics_}).ok());
  auto reloaded = Ctl({"reload"});
  ASSERT_TRUE(reloaded.ok() && reloaded->status.Exited(0));
  auto replayed = Ctl({"quarantine", "replay", std::to_string(id3), "--by", "carol"});
  ASSERT_TRUE(replayed.ok());
  EXPECT_TRUE(replayed->status.Exited(0)) << replayed->out << replayed->err;
  auto shown = Ctl({"quarantine", "show", std::to_string(id3)});
  ASSERT_TRUE(shown.ok() && shown->status.Exited(0));
  auto record = nlohmann::json::parse(shown->out, nullptr, false);
  EXPECT_EQ(record["state"], "replayed") << shown->out;
  EXPECT_EQ(record["state_by"], "carol");
  EXPECT_GT(record["state_at_unix_ms"].get<int64_t>(), 0);

  listed = open_list();
  EXPECT_EQ(listed["open"], refused - 3);
  EXPECT_EQ(listed["items"].size(), refused - 3);
  for (const auto& item : listed["items"]) {
    EXPECT_NE(item["id"], id1);
    EXPECT_NE(item["id"], id2);
    EXPECT_NE(item["id"], id3);
  }
  EXPECT_EQ(hub_->Metric("carehub_quarantine_open_records"), refused - 3);
  EXPECT_EQ(hub_->Metric("carehub_quarantine_records"), refused);
  auto table = Ctl({"quarantine", "list"});
  ASSERT_TRUE(table.ok() && table->status.Exited(0));
  EXPECT_NE(table->out.find(std::to_string(refused) + " record(s) in quarantine, " +
                            std::to_string(refused - 3) + " open"),
            std::string::npos)
      << table->out;
  EXPECT_NE(table->out.find("dismissed by alice"), std::string::npos) << table->out;

  // Each close is audited with who and why.
  auto audit = nlohmann::json::parse(hub_->AdminGet("/api/v1/audit"), nullptr, false);
  std::map<std::string, std::string> details;
  for (const auto& a : audit["items"]) {
    details[a.value("kind", "")] = a.value("detail", "");
  }
  EXPECT_NE(details["quarantine_dismissed"].find("by alice: a test message"), std::string::npos);
  EXPECT_NE(details["quarantine_resolved"].find("by bob"), std::string::npos);
  EXPECT_NE(details["quarantine_replayed"].find("by carol"), std::string::npos);

  // The open count is rebuilt from the records at start.
  ASSERT_TRUE(hub_->process().Stop().ok());
  ASSERT_TRUE(hub_->process().Restart().ok());
  EXPECT_EQ(hub_->Metric("carehub_quarantine_open_records"), refused - 3);
}

// Rotation you can watch: status and metrics show, per identity, which key fingerprints connect
// and when each was last used, and whether a key is still listed; a removed key still in use
// shows as REMOVED.
TEST_F(OpsExperienceTest, KeyRotationShowsWhichKeysConnect) {
  StartHub("text");
  TempDir keys("ops-ux-rotation");
  const KeyPair old_key = analytics_.keys[0];
  const KeyPair new_key = NewKeyPair();
  security::WriteKeyFile(keys.path() / "old.key", old_key);
  security::WriteKeyFile(keys.path() / "new.key", new_key);
  const auto server_pub = keys.path() / "hub.pub";
  std::ofstream(server_pub) << "public: " << hub_->server_keys().pub << "\n";
  auto read_with = [&](const std::string& key_file) {
    return RunTool("carehub-subscribe",
                   {"--endpoint", hub_->process().subscribe_endpoint(), "--subscription",
                    "ics-analytics-feed", "--until-idle", "1", "--key", key_file, "--server-key",
                    server_pub.string(), "--out", (keys.path() / "out.ndjson").string()},
                   keys.path(), std::chrono::seconds(60));
  };
  auto key_entry = [&](const std::string& fingerprint) {
    auto st = nlohmann::json::parse(hub_->AdminGet("/api/v1/status"), nullptr, false);
    for (const auto& k : st.value("keys", nlohmann::json::array())) {
      if (k.value("identity", "") == "ics" && k.value("key", "") == fingerprint) {
        return k;
      }
    }
    return nlohmann::json();
  };
  const std::string old_print = hub::KeyFingerprint(old_key.pub);
  const std::string new_print = hub::KeyFingerprint(new_key.pub);

  auto first = read_with((keys.path() / "old.key").string());
  ASSERT_TRUE(first.ok() && first->status.Exited(0)) << (first.ok() ? first->err : "");
  auto old_entry = key_entry(old_print);
  ASSERT_TRUE(old_entry.is_object()) << hub_->AdminGet("/api/v1/status");
  EXPECT_TRUE(old_entry["listed"].get<bool>());
  EXPECT_GE(old_entry["handshakes"].get<uint64_t>(), 1u);
  EXPECT_GT(old_entry["last_message_unix_ms"].get<int64_t>(), 0);
  EXPECT_EQ(old_entry["endpoint"], "carehub-subscribe");

  // Step 1: both keys listed; the client switches to the new one.
  Party both = analytics_;
  both.keys.push_back(new_key);
  ASSERT_TRUE(hub_->WriteIdentities({publisher_, both}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  auto second = read_with((keys.path() / "new.key").string());
  ASSERT_TRUE(second.ok() && second->status.Exited(0)) << (second.ok() ? second->err : "");
  auto new_entry = key_entry(new_print);
  ASSERT_TRUE(new_entry.is_object());
  EXPECT_GE(new_entry["last_message_unix_ms"].get<int64_t>(),
            key_entry(old_print)["last_message_unix_ms"].get<int64_t>());
  EXPECT_EQ(hub_->Metric("carehub_auth_accepted_by_key_total", "key=\"" + old_print + "\""),
            old_entry["handshakes"].get<double>());
  EXPECT_GE(hub_->Metric("carehub_auth_accepted_by_key_total", "key=\"" + new_print + "\""), 1);
  EXPECT_GT(
      hub_->Metric("carehub_identity_key_last_used_unix_seconds", "key=\"" + new_print + "\""), 0);

  // Step 2: the old key removed: still shown (it was used), as no longer listed.
  Party new_only = analytics_;
  new_only.keys = {new_key};
  ASSERT_TRUE(hub_->WriteIdentities({publisher_, new_only}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  EXPECT_FALSE(key_entry(old_print)["listed"].get<bool>());
  EXPECT_TRUE(key_entry(new_print)["listed"].get<bool>());
  auto table = Ctl({"status"});
  ASSERT_TRUE(table.ok() && table->status.Exited(0));
  EXPECT_NE(table->out.find("Keys in use"), std::string::npos) << table->out;
  EXPECT_NE(table->out.find(old_print), std::string::npos) << table->out;
  EXPECT_NE(table->out.find("REMOVED"), std::string::npos) << table->out;
}

// A secret key file other users can read is refused at start (as sshd refuses such a private
// key), naming the file, its mode and the fix; 0640 (the documented root:carehub layout) is fine.
TEST(OpsSecretFiles, WorldReadableServerKeyStopsTheHub) {
  TempDir keys("ops-ux-keys");
  const KeyPair server = NewKeyPair();
  security::WriteKeyFile(keys.path() / "hub.key", server);
  {
    std::ofstream(keys.path() / "identities.yaml")
        << security::IdentitiesYaml({Party{"rxk-pas", "publisher", {"RXK"}, "", {NewKeyPair()}}});
  }
  const std::string yaml =
      "security:\n  mode: curve\n  server_key_file: " + (keys.path() / "hub.key").string() +
      "\n  identities: " + (keys.path() / "identities.yaml").string() + "\n";
  std::filesystem::permissions(keys.path() / "hub.key", std::filesystem::perms(0644));
  auto readable = HubProcess::Start(HubOptions("ops-ux-key-0644", yaml));
  ASSERT_FALSE(readable.ok()) << "a world-readable hub.key was accepted";
  const std::string& why = readable.status().message();
  EXPECT_NE(why.find("hub.key has mode 0644"), std::string::npos) << why;
  EXPECT_NE(why.find("chmod o-rwx"), std::string::npos) << why;

  std::filesystem::permissions(keys.path() / "hub.key", std::filesystem::perms(0640));
  auto group_readable = HubProcess::Start(HubOptions("ops-ux-key-0640", yaml));
  ASSERT_TRUE(group_readable.ok()) << group_readable.status().ToString();
  EXPECT_TRUE(group_readable.value()->Stop().ok());
}

// carehub-subscribe against a CURVE hub, each way an operator gets the keys wrong: the error names
// the cause, not only "no answer within N ms".
TEST_F(OpsExperienceTest, SilentHubErrorsNameTheLikelyCause) {
  StartHub("text");
  TempDir keys("ops-ux-client-keys");
  const auto key_file = keys.path() / "ics.key";
  const auto stranger_file = keys.path() / "stranger.key";
  const auto server_pub = keys.path() / "hub.pub";
  const auto wrong_pub = keys.path() / "not-the-hub.pub";
  security::WriteKeyFile(key_file, analytics_.keys[0]);
  security::WriteKeyFile(stranger_file, NewKeyPair());
  std::ofstream(server_pub) << "public: " << hub_->server_keys().pub << "\n";
  std::ofstream(wrong_pub) << "public: " << NewKeyPair().pub << "\n";

  auto subscribe = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--endpoint",     hub_->process().subscribe_endpoint(),
                                     "--subscription", "ics-analytics-feed",
                                     "--until-idle",   "1",
                                     "--out",          (keys.path() / "out.ndjson").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTool("carehub-subscribe", args, keys.path(), std::chrono::seconds(60));
  };

  // --key without --server-key: the missing option is named (it used to be "cannot read key
  // file " with an empty name).
  auto no_server_key = subscribe({"--key", key_file.string()});
  ASSERT_TRUE(no_server_key.ok());
  EXPECT_FALSE(no_server_key->status.Exited(0));
  EXPECT_NE(no_server_key->err.find("--server-key"), std::string::npos) << no_server_key->err;

  // A key the hub does not know: refused by its ZAP handler, and said so.
  auto stranger = subscribe({"--key", stranger_file.string(), "--server-key", server_pub.string()});
  ASSERT_TRUE(stranger.ok());
  EXPECT_TRUE(stranger->status.Exited(1)) << stranger->err;
  EXPECT_NE(stranger->err.find("refused this client's CURVE key"), std::string::npos)
      << stranger->err;
  EXPECT_NE(stranger->err.find("identities"), std::string::npos) << stranger->err;

  // The right client key with the wrong server key: the handshake breaks off.
  auto wrong_server = subscribe({"--key", key_file.string(), "--server-key", wrong_pub.string()});
  ASSERT_TRUE(wrong_server.ok());
  EXPECT_TRUE(wrong_server->status.Exited(1)) << wrong_server->err;
  EXPECT_NE(wrong_server->err.find("server key"), std::string::npos) << wrong_server->err;

  // No keys at all against a CURVE hub.
  auto plain = subscribe({});
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->status.Exited(1)) << plain->err;
  EXPECT_NE(plain->err.find("requires CURVE"), std::string::npos) << plain->err;

  // Nothing listening at all.
  auto nowhere = RunTool("carehub-subscribe",
                         {"--endpoint", "tcp://127.0.0.1:1", "--subscription", "ics-analytics-feed",
                          "--until-idle", "1"},
                         keys.path(), std::chrono::seconds(60));
  ASSERT_TRUE(nowhere.ok());
  EXPECT_TRUE(nowhere->status.Exited(1)) << nowhere->err;
  EXPECT_NE(nowhere->err.find("nothing accepted a connection"), std::string::npos) << nowhere->err;

  // And with the right keys it works (the diagnosis is not a false alarm).
  auto right = subscribe({"--key", key_file.string(), "--server-key", server_pub.string()});
  ASSERT_TRUE(right.ok());
  EXPECT_TRUE(right->status.Exited(0)) << right->err;
}

}  // namespace
}  // namespace carehub::itest::ops

namespace carehub::itest::ops {
namespace {

size_t CountLines(const std::filesystem::path& file) {
  std::ifstream in(file);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    n += line.empty() ? 0 : 1;
  }
  return n;
}

// A fresh hub already has its labelled counters at 0 (dashboards and increase() see the first
// event); a subscriber that exits is marked gone at once, not "connected" for the 30 s timeout;
// and the audit says what was sent: no "delivery" record (then "delivery_not_sent") for events
// stored after the subscriber left.
TEST(OpsStatusTruth, ZeroSeriesFromStartGoneSubscriberDroppedAtOnceAuditSaysWhatWasSent) {
  auto started = HubProcess::Start(HubOptions("ops-ux-truth", DemoAgreementsYaml()));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  auto metrics = [&] { return ParseSamples(HttpGet(hub.admin_address(), "/metrics").body); };
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> zero_at_start = {
      {"carehub_subscriptions_dropped_total", {{"reason", "gone"}}},
      {"carehub_subscriptions_dropped_total", {{"reason", "timeout"}}},
      {"carehub_subscription_deliveries_held_total", {{"reason", "peer_full"}}},
      {"carehub_ingest_answers_dropped_total", {{"reason", "peer_gone"}}},
      {"carehub_ingest_answers_dropped_total", {{"reason", "peer_not_reading"}}},
      {"carehub_quarantine_dropped_total", {{"reason", "peer_rate"}}},
      {"carehub_quarantine_dropped_total", {{"reason", "total_cap"}}},
      {"carehub_policy_reloads_total", {{"outcome", "refused"}}},
      {"carehub_policy_reloads_total", {{"outcome", "applied"}}},
  };
  {
    const auto fresh = metrics();
    for (const auto& [name, labels] : zero_at_start) {
      bool found = false;
      for (const auto& s : fresh) {
        bool match = s.name == name;
        for (const auto& [k, v] : labels) {
          match = match && s.labels.count(k) && s.labels.at(k) == v;
        }
        if (match) {
          found = true;
          EXPECT_EQ(s.value, 0) << name;
        }
      }
      EXPECT_TRUE(found) << name << " " << labels.begin()->second << " has no series at start";
    }
  }

  auto first = RunPublish(hub, hub.dir(), 300, 71);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A publisher's conflict and duplicate counters exist from its first event.
  {
    const auto after = metrics();
    std::set<std::string> received;
    for (const auto& s : after) {
      if (s.name == "carehub_events_received_total") {
        received.insert(s.labels.at("publisher"));
      }
    }
    ASSERT_FALSE(received.empty());
    for (const auto& p : received) {
      EXPECT_EQ(SumSamples(after, "carehub_events_conflict_total", {{"publisher", p}}), 0) << p;
      bool has_conflict_series = false;
      for (const auto& s : after) {
        has_conflict_series = has_conflict_series || (s.name == "carehub_events_conflict_total" &&
                                                      s.labels.at("publisher") == p);
      }
      EXPECT_TRUE(has_conflict_series) << "no carehub_events_conflict_total series for " << p;
    }
  }

  const auto out = hub.dir() / "ics.ndjson";
  auto read_feed = [&] {
    return RunTool("carehub-subscribe",
                   {"--endpoint", hub.subscribe_endpoint(), "--subscription", "ics-analytics-feed",
                    "--from", "resume", "--until-idle", "1", "--out", out.string()},
                   hub.dir());
  };
  auto connected = [&] {
    auto st =
        nlohmann::json::parse(HttpGet(hub.admin_address(), "/api/v1/status").body, nullptr, false);
    for (const auto& s : st.value("subscriptions", nlohmann::json::array())) {
      if (s.value("id", "") == "ics-analytics-feed") {
        return s.value("connected", false);
      }
    }
    return false;
  };

  // 1. The subscriber exits and nothing new arrives: the hub must notice by itself (it used to
  // show "connected" until subscriber_timeout_ms, 30 s, and then count a "timeout").
  auto sub = read_feed();
  ASSERT_TRUE(sub.ok() && sub->status.Exited(0)) << (sub.ok() ? sub->err : "");
  auto exited = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return !connected(); }, std::chrono::seconds(40)));
  const double idle_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - exited).count();
  std::printf(
      "idle hub: subscriber exit -> status disconnected: %.2f s (subscriber_timeout 30 s)\n",
      idle_seconds);
  EXPECT_LT(idle_seconds, 5.0) << "an exited subscriber stayed 'connected' until its timeout";
  const auto after_exit = metrics();
  EXPECT_EQ(SumSamples(after_exit, "carehub_subscriptions_dropped_total", {{"reason", "gone"}}), 1);
  EXPECT_EQ(SumSamples(after_exit, "carehub_subscriptions_dropped_total", {{"reason", "timeout"}}),
            0);

  // 2. It reads again, exits, and events the subscription covers are stored right after.
  sub = read_feed();
  ASSERT_TRUE(sub.ok() && sub->status.Exited(0)) << (sub.ok() ? sub->err : "");
  exited = std::chrono::steady_clock::now();
  auto second = RunPublish(hub, hub.dir(), 300, 72);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return !connected(); }, std::chrono::seconds(40)));
  std::printf("busy hub: subscriber exit -> status disconnected: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - exited).count());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // rounds after the publish

  auto audit = nlohmann::json::parse(
      HttpGet(hub.admin_address(), "/api/v1/audit?subscriber=ics-analytics&limit=100000").body,
      nullptr, false);
  ASSERT_TRUE(audit.is_object());
  uint64_t audited_delivered = 0;
  size_t not_sent = 0;
  for (const auto& a : audit.value("items", nlohmann::json::array())) {
    if (a.value("kind", "") == "delivery") {
      audited_delivered += a.value("delivered", uint64_t{0});
    }
    not_sent += a.value("kind", "") == "delivery_not_sent" ? 1 : 0;
  }
  EXPECT_EQ(not_sent, 0u) << "a batch for the gone subscriber was audited, then not sent";
  EXPECT_EQ(audited_delivered, CountLines(out)) << "the audit does not say what was sent";
  ASSERT_TRUE(hub.Stop().ok());
}

}  // namespace
}  // namespace carehub::itest::ops
