#pragma once
// What the sink's integration tests share (sink_postgres_test.cc, sink_charts_test.cc): a real
// PostgreSQL 15 started by the test (pg_cluster.h) beside a real hub reading the test's agreements.

#include <filesystem>
#include <memory>
#include <string>

#include "harness/hub_process.h"
#include "pg_cluster.h"

namespace carehub::itest {

// Starts the PostgreSQL cluster `tag` and a hub `tag`-hub whose agreements file is
// `agreements_yaml` (written into `dir` with its key and opt-out list). A fatal test failure when
// either does not start: call it under ASSERT_NO_FATAL_FAILURE.
void StartPgAndHub(const std::filesystem::path& dir, const std::string& tag,
                   const std::string& agreements_yaml, std::unique_ptr<PgCluster>* pg,
                   std::unique_ptr<HubProcess>* hub);

}  // namespace carehub::itest
