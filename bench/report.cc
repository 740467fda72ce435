#include "report.h"

#include <algorithm>
#include <cmath>

namespace carehub::bench {

std::string Human(double v) {
  char buf[64];
  double a = std::fabs(v);
  if (a >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  } else if (a >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (a >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.0fk", v / 1e3);
  } else if (a >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (a >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f", v);
  }
  return buf;
}

void Report::Add(const std::string& section, const std::string& key, const std::string& metric,
                 double value, const std::string& unit, const std::string& target,
                 std::optional<bool> met) {
  json_["results"][section][key] = value;
  if (!target.empty()) {
    json_["targets"][section + "." + key] = {{"target", target},
                                             {"met", met ? nlohmann::json(*met) : nullptr}};
  }
  rows_.push_back({section, metric, Human(value) + (unit.empty() ? "" : " " + unit), target, met});
}

void Report::AddSummary(const std::string& target, const std::string& measured, bool met) {
  json_["summary"].push_back({{"target", target}, {"measured", measured}, {"met", met}});
  summary_.push_back({target, measured, met});
}

void Report::Print(std::FILE* out) const {
  size_t w_section = 7, w_metric = 6, w_value = 5, w_target = 6;
  for (const auto& r : rows_) {
    w_section = std::max(w_section, r.section.size());
    w_metric = std::max(w_metric, r.metric.size());
    w_value = std::max(w_value, r.value.size());
    w_target = std::max(w_target, r.target.size());
  }
  auto line = [&](const std::string& a, const std::string& b, const std::string& c,
                  const std::string& d, const std::string& e) {
    std::fprintf(out, "%-*s  %-*s  %*s  %-*s  %s\n", static_cast<int>(w_section), a.c_str(),
                 static_cast<int>(w_metric), b.c_str(), static_cast<int>(w_value), c.c_str(),
                 static_cast<int>(w_target), d.c_str(), e.c_str());
  };
  line("section", "metric", "value", "target", "");
  line(std::string(w_section, '-'), std::string(w_metric, '-'), std::string(w_value, '-'),
       std::string(w_target, '-'), "------");
  for (const auto& r : rows_) {
    line(r.section, r.metric, r.value, r.target, r.met ? (*r.met ? "met" : "MISSED") : "");
  }
  if (summary_.empty()) {
    return;
  }
  size_t w_target_line = 0;
  for (const auto& s : summary_) {
    w_target_line = std::max(w_target_line, s.target.size());
  }
  std::fprintf(out, "\nperformance targets (issue 15) measured in this run:\n");
  for (const auto& s : summary_) {
    std::fprintf(out, "  %-6s  %-*s  %s\n", s.met ? "met" : "missed",
                 static_cast<int>(w_target_line), s.target.c_str(), s.measured.c_str());
  }
}

}  // namespace carehub::bench
