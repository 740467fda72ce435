// `carehub-sink report` (issue 19): funnel plots and XmR charts computed from the sink's
// PostgreSQL tables, checked end to end on inputs built by hand. The test publishes a designed
// quarter-in-miniature through a real hub (28 days of emergency admissions whose daily counts hold
// exactly one run of 7 above the mean and one point beyond the upper limit; six practices, one
// with far more admissions than its list size predicts and one with far fewer; GP appointments
// with one practice missing many), lets the real carehub-sink load it into a real PostgreSQL 15,
// runs the report and reads its tables.
//
// The expected figures come from the test, never from the code under test:
//   - the daily counts, per-practice counts and weekly DNA rates are what the test published;
//   - the XmR mean, moving range, limits and Making Data Count flags are computed here from the
//     rules' definitions, and the designed signals (the shift on days 8..14, day 27 outside) are
//     asserted as known answers;
//   - a practice's position on a funnel is decided here by the textbook interval of its own
//     observed value (Byar's Poisson interval for a rate, Wilson's score interval for a
//     proportion) excluding the overall value, a different formulation from the funnel's limits;
//     each limit shown is checked to be where that interval's end crosses the overall value.

#include <gtest/gtest.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "carehub/core/synthetic.h"
#include "harness/workload.h"
#include "html_table.h"
#include "sink_support.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: charts-tester
    subscriptions:
      - {id: charts-feed, purpose: direct_care}
agreements:
  - id: DSA-T-CHARTS
    subscriber: charts-tester
    purpose: direct_care
    legal_basis: "test: direct care"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
pseudonymisation:
  secret_file: pseudonym.key
opt_out:
  file: national-opt-out.txt
)";

// 28 days from Monday 2026-06-01 (four whole weeks).
constexpr int kDays = 28;
constexpr const char* kFrom = "2026-06-01";
constexpr const char* kTo = "2026-06-29";

// Emergency admissions per day. Mean 307/28 = 10.964; the 8/12 alternation has moving ranges of
// 4, so the limits are wide; days 8..14 (indices 7..13) are 13 11 13 11 13 11 13, all above the
// mean: a run of exactly 7; day 27 (index 26) is 26, beyond the upper process limit (22.98).
const std::vector<int> kDailyAdmissions = {8, 12, 8, 12, 8, 12, 8, 13, 11, 13, 11, 13, 11, 13,
                                           8, 12, 8, 12, 8, 12, 8, 12, 8,  12, 8,  12, 26, 8};

struct Practice {
  std::string ods;
  int64_t list_size;
  int admissions;    // over the 28 days
  int appointments;  // GP appointments booked at the practice
  int dna;           // of which not attended
};
// Overall 307 admissions / 43,000 registered = 7.14 per 1,000: M85003 (expected 28.6, has 60) is
// far above, M85004 (expected 85.7, has 55) far below. GP appointments: 124 DNAs of 1,000
// (12.4%); M85005 misses 30%.
const std::vector<Practice> kPractices = {
    {"M85001", 9000, 64, 200, 20},  {"M85002", 7000, 50, 150, 15}, {"M85003", 4000, 60, 100, 10},
    {"M85004", 12000, 55, 300, 30}, {"M85005", 5000, 36, 120, 36}, {"M85006", 6000, 42, 130, 13},
};

int64_t DayStart(int day) {
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 5;
  tm.tm_mday = 1 + day;
  return static_cast<int64_t>(timegm(&tm));
}

// A valid activity of `kind` on `day` (UTC, 09:00 plus `n` seconds) for a patient registered at
// `practice`, taking a synthetic event's patient and identifiers; `site` replaces its site when
// not empty.
v1::Event Activity(SyntheticGenerator* gen, v1::ActivityKind kind, int day, int n,
                   const std::string& practice, const std::string& site) {
  v1::Event e = gen->Next();
  while (!e.has_activity()) {
    e = gen->Next();
  }
  v1::Envelope* env = e.mutable_envelope();
  env->set_lifecycle(v1::LIFECYCLE_NEW);
  env->clear_supersedes_event_id();
  env->mutable_patient()->set_registered_gp_ods(practice);
  if (!site.empty()) {
    env->set_site_ods(site);
  }
  const int64_t at = DayStart(day) + 9 * 3600 + n;
  env->mutable_occurred_at()->set_seconds(at);
  env->mutable_occurred_at()->set_nanos(0);
  env->mutable_recorded_at()->set_seconds(at + 300);
  e.mutable_activity()->set_kind(kind);
  e.mutable_activity()->clear_period_start();
  e.mutable_activity()->clear_period_end();
  return e;
}

// The rows of the table with id `id`.
std::vector<std::vector<std::string>> Table(const std::string& html, const std::string& id) {
  return HtmlTableRows(html, "<table id=\"" + id + "\">");
}

std::string Paragraph(const std::string& html, const std::string& id) {
  const size_t start = html.find("id=\"" + id + "\">");
  if (start == std::string::npos) {
    return "";
  }
  const size_t from = html.find('>', start) + 1;
  return html.substr(from, html.find("</p>", from) - from);
}

// ---- the test's own statistics, from the definitions ----

struct Expected {
  double mean = 0, mr_bar = 0, lpl = 0, upl = 0;
  std::vector<std::string> flags;  // "outside limits, shift, trend, 2 of 3" order, "" for none
};

// XmR per NHS England's Making Data Count: limits mean ± 2.66 mR̄; a point beyond a limit; 7 or
// more consecutive points on one side of the mean (a point on the mean breaks the run); 6 or more
// consecutive points each higher (lower) than the one before; 2 of 3 consecutive points beyond
// 2 sigma (two thirds of the way to a limit) on the same side (the points beyond are flagged).
Expected Xmr(const std::vector<double>& v) {
  Expected e;
  const size_t n = v.size();
  for (double x : v) {
    e.mean += x / static_cast<double>(n);
  }
  for (size_t i = 1; i < n; ++i) {
    e.mr_bar += std::fabs(v[i] - v[i - 1]) / static_cast<double>(n - 1);
  }
  e.upl = e.mean + 2.66 * e.mr_bar;
  e.lpl = e.mean - 2.66 * e.mr_bar;
  const double up2 = e.mean + 2.66 * e.mr_bar * 2 / 3;
  const double lo2 = e.mean - 2.66 * e.mr_bar * 2 / 3;
  std::vector<bool> out(n), shift(n), trend(n), two(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = v[i] > e.upl || v[i] < e.lpl;
    // Shift: the longest same-side stretch through i.
    for (int side : {+1, -1}) {
      auto on = [&](size_t k) { return side * (v[k] - e.mean) > 0; };
      if (!on(i)) {
        continue;
      }
      size_t a = i, b = i;
      while (a > 0 && on(a - 1)) {
        --a;
      }
      while (b + 1 < n && on(b + 1)) {
        ++b;
      }
      shift[i] = shift[i] || b - a + 1 >= 7;
    }
    // Trend: the longest strictly monotone stretch containing i.
    for (int side : {+1, -1}) {
      auto step = [&](size_t k) { return side * (v[k] - v[k - 1]) > 0; };  // k-1 -> k moves
      size_t a = i, b = i;
      while (a > 0 && step(a)) {
        --a;
      }
      while (b + 1 < n && step(b + 1)) {
        ++b;
      }
      trend[i] = trend[i] || b - a + 1 >= 6;
    }
    // 2 of 3: any window of three holding i in which i and another are beyond 2 sigma together.
    for (int side : {+1, -1}) {
      auto beyond = [&](size_t k) { return side > 0 ? v[k] > up2 : v[k] < lo2; };
      if (!beyond(i)) {
        continue;
      }
      for (size_t w = i >= 2 ? i - 2 : 0; w <= i && w + 2 < n; ++w) {
        int count = 0;
        for (size_t k = w; k < w + 3; ++k) {
          count += beyond(k) ? 1 : 0;
        }
        two[i] = two[i] || count >= 2;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    std::string f;
    for (auto [set, name] : {std::pair{out[i], "outside limits"}, std::pair{shift[i], "shift"},
                             std::pair{trend[i], "trend"}, std::pair{two[i], "2 of 3"}}) {
      if (set) {
        f += (f.empty() ? "" : ", ") + std::string(name);
      }
    }
    e.flags.push_back(f);
  }
  return e;
}

// The flags part of a "Special cause" cell ("high: shift" -> "shift").
std::string FlagsOf(const std::string& cell) {
  const size_t colon = cell.find(": ");
  return colon == std::string::npos ? cell : cell.substr(colon + 2);
}

constexpr double kZ95 = 1.959963985;
constexpr double kZ998 = 3.090232306;

// Byar's approximation to the exact Poisson interval of an observed count.
double ByarLower(double o, double z) {
  return o <= 0 ? 0 : o * std::pow(1 - 1 / (9 * o) - z / (3 * std::sqrt(o)), 3);
}
double ByarUpper(double o, double z) {
  return (o + 1) * std::pow(1 - 1 / (9 * (o + 1)) + z / (3 * std::sqrt(o + 1)), 3);
}
// Wilson's score interval of a proportion p observed in n.
double Wilson(double p, double n, double z, bool upper) {
  const double spread = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n));
  return (p + z * z / (2 * n) + (upper ? spread : -spread)) / (1 + z * z / n);
}

// Where an observed value lies, from its own interval: "above 99.8% limit" when even its 99.8%
// interval lies wholly above the overall value, and so on.
std::string Position(bool rate, double observed_count, double n, double overall) {
  auto lower = [&](double z) {
    return rate ? ByarLower(observed_count, z) / n : Wilson(observed_count / n, n, z, false);
  };
  auto upper = [&](double z) {
    return rate ? ByarUpper(observed_count, z) / n : Wilson(observed_count / n, n, z, true);
  };
  if (lower(kZ998) > overall) {
    return "above 99.8% limit";
  }
  if (lower(kZ95) > overall) {
    return "above 95% limit";
  }
  if (upper(kZ998) < overall) {
    return "below 99.8% limit";
  }
  if (upper(kZ95) < overall) {
    return "below 95% limit";
  }
  return "within limits";
}

class SinkChartsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartPgAndHub(dir_.path(), "sink-charts", kAgreements, &pg_, &hub_));
    std::ofstream csv(practices_csv());
    csv << "practice_ods,pcn,registered_patients\n";
    for (const Practice& p : kPractices) {
      csv << p.ods << ",PCN-T," << p.list_size << "\n";
    }
  }

  fs::path practices_csv() const { return dir_.path() / "practices.csv"; }

  // carehub-sink postgres until the feed is loaded and idle (it exits 0 by itself).
  void LoadFeed() {
    auto run =
        RunCommand({BinaryPath("carehub-sink").string(), "postgres", "--subscription",
                    "charts-feed", "--dsn", pg_->Uri(), "--endpoint", hub_->subscribe_endpoint(),
                    "--batch-delay-ms", "100", "--exit-when-idle", "1"},
                   dir_.path(), Scaled(seconds(120)));
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    ASSERT_TRUE(run->status.Exited(0)) << run->status.ToString() << run->err;
  }

  Result<CommandResult> Report(const std::vector<std::string>& extra,
                               const fs::path& practices = {}) {
    std::vector<std::string> argv = {BinaryPath("carehub-sink").string(),
                                     "report",
                                     "--dsn",
                                     pg_->Uri(),
                                     "--practices",
                                     (practices.empty() ? practices_csv() : practices).string(),
                                     "--out",
                                     (dir_.path() / "charts.html").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, dir_.path(), Scaled(seconds(60)));
  }

  TempDir dir_{"sink-charts"};
  std::unique_ptr<PgCluster> pg_;
  std::unique_ptr<HubProcess> hub_;
};

TEST_F(SinkChartsTest, FunnelsAndXmrChartsMatchTheirDefinitions) {
  // ---- publish the designed month ----
  SyntheticOptions options = FixedSyntheticOptions(19, "charts-");
  SyntheticGenerator gen(options);
  std::vector<v1::Event> events;
  // Admissions: practice k's admissions and the days' counts zipped in order, so both the daily
  // series and the per-practice totals are as designed.
  std::vector<std::string> practice_of;
  for (const Practice& p : kPractices) {
    practice_of.insert(practice_of.end(), p.admissions, p.ods);
  }
  size_t next = 0;
  for (int day = 0; day < kDays; ++day) {
    for (int k = 0; k < kDailyAdmissions[day]; ++k, ++next) {
      ASSERT_LT(next, practice_of.size());
      events.push_back(
          Activity(&gen, v1::ACTIVITY_KIND_EMERGENCY_ADMISSION, day, k, practice_of[next], ""));
    }
  }
  ASSERT_EQ(next, practice_of.size());
  // GP appointments at each practice, on day (running count mod 28); the first `dna` of each
  // practice's appointments are DNAs.
  std::vector<int> week_dna(4), week_booked(4);
  int running = 0;
  for (const Practice& p : kPractices) {
    for (int k = 0; k < p.appointments; ++k, ++running) {
      const int day = running % kDays;
      const bool dna = k < p.dna;
      events.push_back(
          Activity(&gen, dna ? v1::ACTIVITY_KIND_DID_NOT_ATTEND : v1::ACTIVITY_KIND_GP_CONSULTATION,
                   day, 1000 + k, p.ods, p.ods));
      week_dna[day / 7] += dna ? 1 : 0;
      ++week_booked[day / 7];
    }
  }
  auto seqs = PublishAccepted(hub_->ingest_endpoint(), events);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  LoadFeed();
  auto loaded = pg_->Psql("SELECT count(*) FROM carehub.activity_current");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded.value(), std::to_string(events.size()) + "\n");

  auto run = Report({"--from", kFrom, "--to", kTo});
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_TRUE(run->status.Exited(0)) << run->status.ToString() << run->err;
  const std::string html = ReadFileText(dir_.path() / "charts.html");
  ASSERT_FALSE(html.empty());
  EXPECT_NE(html.find("<svg class=\"chart\" id=\"chart-emergency-admissions\""), std::string::npos);
  EXPECT_NE(html.find("<svg class=\"chart\" id=\"chart-emergency-admissions-daily\""),
            std::string::npos);

  // ---- XmR: emergency admissions per day ----
  std::vector<double> daily(kDailyAdmissions.begin(), kDailyAdmissions.end());
  const Expected xmr = Xmr(daily);
  const auto summary = Table(html, "spc-emergency-admissions-daily-summary");
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[1][0], std::to_string(kDays));
  EXPECT_NEAR(std::stod(summary[1][1]), xmr.mean, 0.005);
  EXPECT_NEAR(std::stod(summary[1][2]), xmr.mr_bar, 0.005);
  EXPECT_NEAR(std::stod(summary[1][3]), xmr.lpl, 0.005);
  EXPECT_NEAR(std::stod(summary[1][4]), xmr.upl, 0.005);
  const auto points = Table(html, "spc-emergency-admissions-daily");
  ASSERT_EQ(points.size(), static_cast<size_t>(kDays) + 1);
  for (int day = 0; day < kDays; ++day) {
    const auto& row = points[day + 1];
    char date[16];
    std::snprintf(date, sizeof(date), "2026-06-%02d", day + 1);
    EXPECT_EQ(row[0], date);
    EXPECT_EQ(row[1], std::to_string(kDailyAdmissions[day])) << date;
    EXPECT_EQ(FlagsOf(row[3]), xmr.flags[day]) << date;
  }
  // The designed signals, as known answers: a run of 7 above the mean on days 8..14 and day 27
  // beyond the upper limit, and nothing else.
  for (int day = 0; day < kDays; ++day) {
    const std::string want = day >= 7 && day <= 13 ? "high: shift"
                             : day == 26           ? "high: outside limits"
                                                   : "";
    EXPECT_EQ(points[day + 1][3], want) << "day " << day + 1;
  }

  // ---- XmR: GP did-not-attend rate per week ----
  std::vector<double> weekly;
  for (int w = 0; w < 4; ++w) {
    weekly.push_back(100.0 * week_dna[w] / week_booked[w]);
  }
  const Expected weekly_xmr = Xmr(weekly);
  const auto weeks = Table(html, "spc-gp-dna-weekly");
  ASSERT_EQ(weeks.size(), 5u);
  for (int w = 0; w < 4; ++w) {
    EXPECT_NEAR(std::stod(weeks[w + 1][1]), weekly[w], 0.051) << "week " << w;
    EXPECT_EQ(FlagsOf(weeks[w + 1][3]), weekly_xmr.flags[w]) << "week " << w;
  }

  // ---- funnels ----
  struct FunnelCase {
    std::string id;
    bool rate;
    double multiplier;
    double last_digit;  // half a unit of the limits' last printed digit, in displayed units
  };
  for (const FunnelCase& f : {FunnelCase{"emergency-admissions", true, 1000, 0.0005},
                              FunnelCase{"gp-dna", false, 100, 0.005}}) {
    double numerators = 0, denominators = 0;
    for (const Practice& p : kPractices) {
      numerators += f.rate ? p.admissions : p.dna;
      denominators += f.rate ? static_cast<double>(p.list_size) : p.appointments;
    }
    const double overall = numerators / denominators;
    const auto rows = Table(html, "funnel-" + f.id);
    ASSERT_EQ(rows.size(), kPractices.size() + 1) << f.id;
    for (size_t i = 0; i < kPractices.size(); ++i) {
      const Practice& p = kPractices[i];
      const std::vector<std::string>& row = rows[i + 1];
      ASSERT_EQ(row.size(), 9u);
      const double n = f.rate ? static_cast<double>(p.list_size) : p.appointments;
      const double x = f.rate ? p.admissions : p.dna;
      EXPECT_EQ(row[0], p.ods);
      EXPECT_EQ(row[1], std::to_string(static_cast<int64_t>(n))) << f.id << " " << p.ods;
      EXPECT_EQ(row[2], std::to_string(static_cast<int64_t>(x))) << f.id << " " << p.ods;
      EXPECT_NEAR(std::stod(row[3]), x / n * f.multiplier, f.last_digit * 10) << p.ods;
      EXPECT_EQ(row[8], Position(f.rate, x, n, overall)) << f.id << " " << p.ods;
      // Each printed limit L: the interval of an observation at L - h and at L + h (h: half the
      // last printed digit) lie on either side of the overall value.
      const double h = f.last_digit / f.multiplier;
      struct Limit {
        int column;
        double z;
        bool upper;
      };
      for (const Limit& l : {Limit{4, kZ998, false}, Limit{5, kZ95, false}, Limit{6, kZ95, true},
                             Limit{7, kZ998, true}}) {
        const double shown = std::stod(row[l.column]) / f.multiplier;
        if (shown <= h) {
          continue;  // clamped at zero: checked below
        }
        // An upper limit is where the observation's lower interval end reaches the overall value;
        // a lower limit is where its upper end does.
        auto end = [&](double value) {
          return f.rate ? (l.upper ? ByarLower(value * n, l.z) : ByarUpper(value * n, l.z)) / n
                        : Wilson(value, n, l.z, !l.upper);
        };
        EXPECT_LE(end(shown - h), overall) << f.id << " " << p.ods << " column " << l.column;
        EXPECT_GE(end(shown + h), overall) << f.id << " " << p.ods << " column " << l.column;
      }
    }
  }
  // The designed outliers are named.
  EXPECT_EQ(Paragraph(html, "outliers-emergency-admissions"),
            "Outliers beyond the 99.8% limits: above: M85003; below: M85004. Beyond the 95% "
            "limits only: above: none; below: none.");
  EXPECT_EQ(Paragraph(html, "outliers-gp-dna"),
            "Outliers beyond the 99.8% limits: above: M85005; below: none. Beyond the 95% limits "
            "only: above: none; below: none.");
  // No discharges were published: that funnel says so rather than drawing nothing.
  const size_t follow = html.find("<h2 id=\"discharge-follow-up\">");
  ASSERT_NE(follow, std::string::npos);
  EXPECT_NE(html.find("Nothing to plot", follow), std::string::npos);
}

TEST_F(SinkChartsTest, BadReportInputsEndWithOneLine) {
  LoadFeed();  // an empty feed: the schema exists, with no activity in it
  std::ofstream(dir_.path() / "bad.csv") << "ods,size\nM85001,100\n";
  struct Case {
    std::vector<std::string> extra;
    int exit_code;
    std::string says;
    fs::path practices = {};
  };
  const std::vector<Case> cases = {
      {{}, 2, "no activity in schema carehub"},
      {{"--from", kFrom}, 2, "give both --from and --to"},
      {{"--from", "1 June", "--to", kTo}, 2, "YYYY-MM-DD"},
      {{"--from", "2026-13-01", "--to", kTo}, 2, "not a date range"},
      {{"--from", kTo, "--to", kFrom}, 2, "the period is empty"},
      {{"--from", kFrom, "--to", kTo, "--schema", "nothing_here"}, 2, "has no carehub-sink tables"},
      {{"--from", kFrom, "--to", kTo, "--schema", "Bad-Name"}, 2, "postgres.schema"},
      {{"--from", kFrom, "--to", kTo}, 2, "expected header", dir_.path() / "bad.csv"},
      {{"--from", kFrom, "--to", kTo}, 2, "cannot read", dir_.path() / "missing.csv"},
      {{"--bogus"}, 2, "bad usage"},
  };
  for (const Case& c : cases) {
    auto run = Report(c.extra, c.practices);
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_TRUE(run->status.Exited(c.exit_code))
        << c.says << ": " << run->status.ToString() << " " << run->err;
    std::vector<std::string> lines;
    std::istringstream in(run->err);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) {
        lines.push_back(line);
      }
    }
    ASSERT_EQ(lines.size(), 1u) << c.says << ": " << run->err;
    EXPECT_EQ(lines[0].rfind("carehub-sink: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(c.says), std::string::npos) << lines[0];
  }
  // An empty period is still a report: every chart says there is nothing to plot.
  auto empty = Report({"--from", kFrom, "--to", kTo});
  ASSERT_TRUE(empty.ok() && empty->status.Exited(0)) << (empty.ok() ? empty->err : "");
  EXPECT_NE(ReadFileText(dir_.path() / "charts.html").find("Nothing to plot"), std::string::npos);
}

}  // namespace
}  // namespace carehub::itest
