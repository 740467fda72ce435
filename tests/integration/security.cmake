# Security integration tests (DESIGN §7): the real `carehub` in CURVE mode. Included from
# tests/integration/CMakeLists.txt, after the harness is defined.

carehub_add_integration_test(carehub_security_itest
  security_support.cc
  security_curve_test.cc
  security_logs_test.cc)
target_link_libraries(carehub_security_itest PRIVATE carehub_client PkgConfig::HTTPLIB cppzmq)
