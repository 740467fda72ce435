// The hub's config file (hub ParseHubConfig): arbitrary YAML through the parser `carehub --config`
// runs at start-up. Invariants: never throws or crashes; a refused file says why; an accepted
// config has the limits the hub relies on (non-zero frame and batch limits, known durability) and,
// in plain mode, only loopback tcp:// endpoints.

#include "carehub/core/address.h"
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
  // DESIGN §7: an accepted plain-mode config binds tcp:// only to numeric loopback addresses.
  for (const std::string& ep : {config->ingest_endpoint, config->subscribe_endpoint}) {
    if (!config->curve && ep.rfind("tcp://", 0) == 0) {
      auto host_port = carehub::ParseTcpEndpoint(ep);
      CAREHUB_FUZZ_CHECK(host_port.ok() && carehub::IsLoopbackHost(host_port->host),
                         "plain mode accepted a non-loopback endpoint: " + ep);
    }
  }
  return 0;
}
