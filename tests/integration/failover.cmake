# Automatic failover through etcd (issue 14, docs/replication.md "Automatic failover"): a real
# three-member etcd cluster (Debian etcd-server) and two real hub processes. Included after
# replication.cmake (it uses the same support libraries).

# The etcd cluster the failover tests stand on: one member down changes nothing, quorum lost
# refuses writes.
carehub_add_test(carehub_etcd_cluster_itest
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/etcd_cluster_test.cc
  LIBS carehub_itest_harness)

# Chaos rounds (CAREHUB_FAILOVER_ROUNDS; `make chaos` runs 100), quorum loss, forced promotion.
carehub_add_test(carehub_failover_itest
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/failover_test.cc
  LIBS carehub_ops_itest_common carehub_subscribe_itest_support carehub_client carehub_synth
       carehub_hub PkgConfig::HTTPLIB cppzmq)
add_dependencies(carehub_failover_itest carehub carehubctl carehub-publish carehub-subscribe)
