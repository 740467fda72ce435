// Operations: the hub's status page in a real headless browser (chromium from Debian). The page
// must load, fetch the live status, show the hub's publishers and subscriptions with their numbers,
// and log no console errors. A screenshot is left in the build dir (ops-status-page.png) for a
// person to look at.

#include <gtest/gtest.h>

#include <regex>

#include "harness/workload.h"
#include "ops_common.h"

namespace carehub::itest::ops {
namespace {

std::string WithCommas(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    out += digits[i];
    size_t left = digits.size() - i - 1;
    if (left > 0 && left % 3 == 0) {
      out += ',';
    }
  }
  return out;
}

TEST(OpsStatusPage, ConsoleErrorDetectionWorks) {
  // The check below must be able to fail: a page with an uncaught exception is caught.
  TempDir work("ops-chromium-negative");
  auto run = RunChromium(work.path(), "neg", {"--virtual-time-budget=1000", "--dump-dom"},
                         "data:text/html,<script>window.notAFunction();</script><p>x</p>");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_TRUE(run->status.Exited(0)) << run->err;
  EXPECT_FALSE(ConsoleErrors(run->err).empty()) << "chromium log:\n" << run->err;
}

TEST(OpsStatusPage, ShowsLivePublishersAndSubscriptionsWithoutConsoleErrors) {
  auto started = HubProcess::Start(HubOptions("ops-status-page", DemoAgreementsYaml()));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  auto summary = RunPublish(hub, hub.dir(), 1200, 51,
                            {"--publisher", "M85001", "--publisher", "RY6", "--invalid-ratio",
                             "0.02", "--duplicate-ratio", "0.05"});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  const auto accepted = (*summary)["accepted"].get<uint64_t>();

  // A subscriber that stays connected while the browser looks.
  auto subscriber = ChildProcess::Spawn(
      {BinaryPath("carehub-subscribe").string(), "--endpoint", hub.subscribe_endpoint(),
       "--subscription", "lth-direct-care", "--from", "earliest", "--until-idle", "40", "--out",
       (hub.dir() / "lth.ndjson").string()},
      hub.dir() / "subscribe.out", hub.dir() / "subscribe.err");
  ASSERT_TRUE(subscriber.ok()) << subscriber.status().ToString();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto st = nlohmann::json::parse(HttpGet(hub.admin_address(), "/api/v1/status").body,
                                        nullptr, false);
        if (!st.is_object()) {
          return false;
        }
        for (const auto& s : st["subscriptions"]) {
          if (s["id"] == "lth-direct-care" && s["connected"] == true && s["delivered"] > 0) {
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(15)))
      << ReadFileText(hub.dir() / "subscribe.err");

  const std::string url = "http://" + hub.admin_address() + "/";
  // 5 s of virtual time: the page refreshes every 2 s, so it has fetched the status several times.
  auto dom = RunChromium(hub.dir(), "dom", {"--virtual-time-budget=5000", "--dump-dom"}, url);
  ASSERT_TRUE(dom.ok()) << dom.status().ToString();
  ASSERT_TRUE(dom->status.Exited(0)) << dom->err;
  const std::string& html = dom->out;
  EXPECT_TRUE(ConsoleErrors(dom->err).empty()) << "console errors:\n"
                                               << testing::PrintToString(ConsoleErrors(dom->err));
  EXPECT_NE(html.find("data-refreshed"), std::string::npos) << "the page never refreshed:\n"
                                                            << html;
  EXPECT_EQ(ElementText(html, "error"), "");
  EXPECT_NE(ElementText(html, "meta").find("ready"), std::string::npos)
      << ElementText(html, "meta");
  EXPECT_EQ(ElementText(html, "stored"), WithCommas(accepted));
  EXPECT_EQ(ElementText(html, "total-accepted"), WithCommas(accepted));
  // Publishers and subscriptions of the running hub, with the live state.
  for (const char* text : {">M85001<", ">RY6<", "lth-direct-care (leeds-teaching-hospitals)",
                           "ics-analytics-feed (ics-analytics)", ">connected<", ">disconnected<"}) {
    EXPECT_NE(html.find(text), std::string::npos) << "page lacks " << text << ":\n" << html;
  }
  // The invalid events appear in the quarantine table.
  EXPECT_NE(html.find("<td class=\"n\">1</td>"), std::string::npos);

  // A screenshot for people, in the build dir.
  auto shot = std::filesystem::path(CAREHUB_BIN_DIR).parent_path() / "ops-status-page.png";
  std::filesystem::remove(shot);
  auto png = RunChromium(hub.dir(), "shot",
                         {"--virtual-time-budget=5000", "--hide-scrollbars",
                          "--window-size=1400,1000", "--screenshot=" + shot.string()},
                         url);
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  EXPECT_TRUE(png->status.Exited(0)) << png->err;
  ASSERT_TRUE(std::filesystem::exists(shot)) << png->err;
  EXPECT_GT(std::filesystem::file_size(shot), 20'000u);

  subscriber->Signal(SIGTERM);
  (void)subscriber->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(hub.Stop().ok());
}

}  // namespace
}  // namespace carehub::itest::ops
