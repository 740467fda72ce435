#pragma once
// What one reload did (SIGHUP, `carehubctl reload`, POST /api/v1/reload), file by file: applied
// with the list of changes (empty: the file said what was already in force) or refused with the
// one-line reason (the previous set stays in force). A plain value: built by Hub::Reload under its
// reload lock, then only read (by the admin server, which turns it into JSON).

#include <cstddef>
#include <string>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::hub {

struct ReloadFileOutcome {
  std::string what;  // "identities" | "agreements"
  std::string file;
  bool applied = false;
  std::vector<std::string> changes;  // applied: one line per difference
  std::string error;                 // refused: why
  std::string error_code;            // refused: the Status code of the load
  // In force after the reload (the new set when applied, the old one when refused): identities
  // and their keys, or agreements and subscribers.
  size_t entries = 0;
  size_t keys_or_subscribers = 0;
};

struct ReloadReport {
  std::vector<ReloadFileOutcome> files;

  // Ok when every file was applied; else the first refusal (code and message of its load).
  Status status() const {
    for (const auto& f : files) {
      if (!f.applied) {
        return Status::Error(f.error_code.empty() ? "reload_refused" : f.error_code, f.error);
      }
    }
    return Status::Ok();
  }
};

}  // namespace carehub::hub
