#include "sink_support.h"

#include <gtest/gtest.h>

#include "subscribe_support.h"

namespace carehub::itest {

void StartPgAndHub(const std::filesystem::path& dir, const std::string& tag,
                   const std::string& agreements_yaml, std::unique_ptr<PgCluster>* pg,
                   std::unique_ptr<HubProcess>* hub) {
  auto cluster = PgCluster::Start(tag);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  *pg = std::move(cluster).value();
  auto agreements = WritePolicyFiles(dir, agreements_yaml);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  auto started = HubProcess::Start(HubWithAgreements(tag + "-hub", agreements.value()));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  *hub = std::move(started).value();
}

}  // namespace carehub::itest
