#include "html_table.h"

#include <regex>

namespace carehub::itest {

std::vector<std::vector<std::string>> HtmlTableRows(const std::string& html,
                                                    const std::string& marker) {
  std::vector<std::vector<std::string>> rows;
  const size_t at = html.find(marker);
  const size_t start = at == std::string::npos ? at : html.find("<table", at);
  if (start == std::string::npos) {
    return rows;
  }
  const std::string table = html.substr(start, html.find("</table>", start) - start);
  static const std::regex kRow("<tr>(.*?)</tr>");
  static const std::regex kCell("<t[dh]>(.*?)</t[dh]>");
  for (auto r = std::sregex_iterator(table.begin(), table.end(), kRow); r != std::sregex_iterator();
       ++r) {
    const std::string row = (*r)[1];
    std::vector<std::string> cells;
    for (auto c = std::sregex_iterator(row.begin(), row.end(), kCell); c != std::sregex_iterator();
         ++c) {
      cells.push_back((*c)[1]);
    }
    rows.push_back(std::move(cells));
  }
  return rows;
}

}  // namespace carehub::itest
