#include "carehub/client/endpoints.h"

namespace carehub::client {

std::vector<std::string> SplitEndpoints(const std::string& endpoints) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = endpoints.find(',', start);
    std::string one =
        endpoints.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto first = one.find_first_not_of(' ');
    const auto last = one.find_last_not_of(' ');
    one = first == std::string::npos ? "" : one.substr(first, last - first + 1);
    if (!one.empty() || out.empty()) {
      out.push_back(one);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  if (out.size() > 1 && out.front().empty()) {
    out.erase(out.begin());
  }
  return out;
}

}  // namespace carehub::client
