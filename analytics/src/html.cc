#include "carehub/analytics/html.h"

#include <cstdio>

namespace carehub::analytics {

std::string FormatFixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

}  // namespace carehub::analytics
