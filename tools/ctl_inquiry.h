#pragma once
// carehubctl's questions about events and patients (docs/operations.md, "Questions about events and
// patients"), over the admin API: trace one event, list a patient's disclosures, browse what
// arrived, show one event (identifiers masked unless revealed, which the hub audits).
//
// Each command prints to stdout and returns carehubctl's exit code (0 done, 1 failed with one line
// on stderr). Not thread-safe (one AdminClient).

#include <cstdint>
#include <optional>
#include <string>

#include "ctl_admin_client.h"

namespace carehub::ctl {

struct TraceArgs {
  std::string publisher;
  std::string event_id;
  std::optional<uint64_t> hub_seq;
  bool as_json = false;
};
int CmdTrace(AdminClient& client, const TraceArgs& args);

struct DisclosuresArgs {
  std::string nhs_number;
  std::string since;  // ParseTimeArg's forms; a bare date as --until takes the whole day
  std::string until;
  std::string format = "table";  // table, json, csv, html
  std::string out;               // a file instead of stdout (csv, html, json)
  std::string by;
  std::string reason;
};
int CmdDisclosures(AdminClient& client, const DisclosuresArgs& args);

struct EventsArgs {
  std::string publisher;
  std::string site;
  std::string type;
  std::string since;
  std::string until;
  uint64_t before_seq = 0;
  int limit = 50;
  bool as_json = false;
};
int CmdEvents(AdminClient& client, const EventsArgs& args);

struct EventArgs {
  uint64_t hub_seq = 0;
  bool reveal = false;
  std::string by;
  std::string reason;
};
int CmdEvent(AdminClient& client, const EventArgs& args);

}  // namespace carehub::ctl
