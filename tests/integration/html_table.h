#pragma once
// Reading figures back from the HTML reports in tests (carehub-analytics' report.html, carehub-sink
// report's page): the cell texts of a table, so a test compares what a reader sees. Pure; no
// errors (a missing table gives no rows).

#include <string>
#include <vector>

namespace carehub::itest {

// The <tr> rows (each a list of <td>/<th> cell texts, as written) of the first <table after the
// first occurrence of `marker` in `html` (a heading's text, or `<table id="x"` itself).
std::vector<std::vector<std::string>> HtmlTableRows(const std::string& html,
                                                    const std::string& marker);

}  // namespace carehub::itest
