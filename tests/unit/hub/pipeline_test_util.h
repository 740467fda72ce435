#pragma once
// Commits a Publish through the real ingest pipeline and the hub's own group committer, as the
// ingest server does. For tests with hub/src on their include path (group_committer.h).

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "carehub/hub/ingest_pipeline.h"
#include "group_committer.h"

namespace carehub::hub::testing {

// Prepares `publish` with `pipeline`, submits it to `committer`, waits for it to come back (at
// most 10 s; a commit to a test's store takes milliseconds) and settles it with
// pipeline.Finish. Null when it did not come back.
inline std::unique_ptr<PreparedBatch> CommitThroughPipeline(IngestPipeline& pipeline,
                                                            GroupCommitter& committer,
                                                            v1::Publish* publish) {
  committer.Submit(pipeline.Prepare("peer", "", publish));
  std::vector<std::unique_ptr<PreparedBatch>> done;
  for (int wait = 0; wait < 10000 && done.empty(); ++wait) {
    done = committer.TakeCompleted();
    if (done.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (done.size() != 1) {
    return nullptr;
  }
  pipeline.Finish(done[0].get());
  return std::move(done[0]);
}

}  // namespace carehub::hub::testing
