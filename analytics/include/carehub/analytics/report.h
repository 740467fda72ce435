#pragma once
// The self-contained HTML report of carehub-analytics: inline SVG charts and tables, no scripts,
// no external assets, and no identifiers (only counts and rates over practices, organisations,
// months and age bands). The same indicators always give byte-identical HTML.

#include <string>

#include "carehub/analytics/indicators.h"

namespace carehub::analytics {

std::string RenderReportHtml(const Indicators& indicators, const PracticeList& practices);

}  // namespace carehub::analytics
