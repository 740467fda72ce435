#pragma once
// A synthetic integrated care system for `make demo` and its tests (docs/demo.md): a registered
// population across GP practices grouped into PCNs, a quarter of activity and referral journeys at
// two acute trusts, a community provider, a mental health trust and a local authority, written in
// the formats each source's adapter accepts:
//   hl7/<trust>.hl7           HL7 v2.4 ADT (A01/A03/A04), one message per line, segments split by
//   CR fhir/RY6/*.json           FHIR R4 batch Bundles (Encounters; ServiceRequest + Task steps)
//   csv/<folder>/*.csv        CSV extracts (appointments and referrals layouts)
//   practices.csv             practice_ods,pcn,registered_patients (the published list sizes)
//   national-opt-out.txt      the patients who opted out (about 2%)
//   ground-truth.json         the indicators computed directly from the generated records
// The same options always give byte-identical output. Not thread-safe.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "carehub/core/status.h"

namespace carehub::demo {

struct IcsOptions {
  uint64_t seed = 20260701;
  uint32_t patients = 250'000;
  // Activity volume relative to the default sampling (1.0 gives about 260,000 events for 250,000
  // patients); tests use small populations and volumes.
  double volume = 1.0;
  // First day of the quarter (UTC midnight) and its length.
  int64_t quarter_start = 1782864000;  // 2026-07-01
  int quarter_days = 92;
};

struct IcsSummary {
  // "<folder or file>" -> records written (resends included).
  std::map<std::string, int64_t> records_by_output;
  // "<publisher> <event type>" -> valid distinct events.
  std::map<std::string, int64_t> events_by_source_type;
  int64_t events = 0;   // valid distinct events
  int64_t resends = 0;  // records written twice on purpose
  int64_t invalid = 0;  // records the adapters must refuse
  int64_t opted_out_patients = 0;
  int64_t withheld_events = 0;  // valid events of opted-out patients
  // Valid events of patients not yet identified (no NHS number): delivered to secondary use
  // anonymised, never withheld (docs/agreements.md "Patients without an NHS number").
  int64_t unidentified_events = 0;
  // Delivered events of overseas visitors (foreign postcode) and with a PD1 practice that is not
  // an ODS code: kept and flagged.
  int64_t overseas_events = 0;
  int64_t non_ods_practice_events = 0;
};

// The first day (UTC) of the last complete calendar quarter before `now_unix`.
int64_t LastCompleteQuarterStart(int64_t now_unix, int* days);

// Parses "2026Q3" into its first day and length. Error code "bad_quarter".
Result<int64_t> ParseQuarter(const std::string& text, int* days);

// Writes everything into `out_dir` (created; existing files with the same names are replaced).
Result<IcsSummary> GenerateIcs(const IcsOptions& options, const std::filesystem::path& out_dir);

}  // namespace carehub::demo
