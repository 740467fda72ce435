#pragma once
// Power-cut simulation, for tests (tests/integration/reliability_power_cut_test.cc). A kill -9
// loses nothing the operating system already holds, so `durability: os` survives it as well as
// `fsync` does; a power cut loses every write not yet fsync'd. This models the power cut:
//
//   CAREHUB_POWER_CUT_AT=<n>   the store runs on a RocksDB FileSystem wrapper that records, for
//                              every file the process writes, how much of it was fsync'd. At the
//                              n-th append to a write-ahead log file (before that append), every
//                              such file is cut back to its last synced size and the process
//                              raises SIGKILL: what the disk would hold after the power went.
//
// Counting log appends rather than time makes the cut land in the same place of the I/O whatever
// the machine's load. Modelled: file contents. Not modelled: directory entries (a file created and
// never dir-synced survives here, truncated); RocksDB fsyncs its directories where it relies on
// them. Unset, nothing changes. Read once; not thread-safe to call concurrently with itself.

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace carehub::hub {

// The power-cut environment when CAREHUB_POWER_CUT_AT names a valid n > 0 (writing one warning line
// to stderr), else null. Lives until the process ends.
rocksdb::Env* PowerCutEnvFromEnvironment();

}  // namespace carehub::hub
