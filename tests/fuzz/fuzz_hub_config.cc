// The hub's config file (hub ParseHubConfig): arbitrary YAML through the parser `carehub --config`
// runs at start-up. Invariants: never throws or crashes; a refused file says why; an accepted
// config has the limits the hub relies on (non-zero frame and batch limits, known durability).

#include "carehub/hub/config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  auto config = carehub::hub::ParseHubConfig(yaml, "/nonexistent/carehub-fuzz");
  if (!config.ok()) {
    CAREHUB_FUZZ_CHECK(!config.status().code().empty() && !config.status().message().empty(),
                       "refused without a reason");
    return 0;
  }
  CAREHUB_FUZZ_CHECK(config->max_frame_bytes > 0, "zero frame limit accepted");
  CAREHUB_FUZZ_CHECK(config->max_events_per_batch > 0, "zero batch limit accepted");
  (void)carehub::hub::IsLoopbackHost(carehub::hub::EndpointHost(config->ingest_endpoint));
  (void)carehub::hub::IsLoopbackHost(carehub::hub::EndpointHost(config->subscribe_endpoint));
  return 0;
}
