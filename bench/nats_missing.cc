// Built when the NATS C client (libnats-dev) is not installed: the peer section reports that it
// cannot run instead of failing the build.
#include "sections.h"

namespace carehub::bench {

Status RunNatsSection(BenchContext* ctx) {
  return Status::Error("nats_unavailable",
                       "carehub-bench was built without the NATS C client (install libnats-dev)");
}

void AddComparisons(BenchContext* ctx) {
  const auto& f = ctx->figures;
  if (f.ingest_fsync_per_s && f.rocksdb_sync_batch_per_s && *f.rocksdb_sync_batch_per_s > 0) {
    double r = *f.ingest_fsync_per_s / *f.rocksdb_sync_batch_per_s;
    ctx->report.Add("compare", "ingest_vs_rocksdb_sync",
                    "carehub ingest (fsync) / raw RocksDB sync", r * 100, "%", ">= 70%", r >= 0.7);
  }
}

}  // namespace carehub::bench
