#include "carehub/hub/store/thread_setup.h"

#include <rocksdb/perf_level.h>

namespace carehub::hub {

void PrepareStoreThread() { rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable); }

}  // namespace carehub::hub
