# Third-party dependencies, found once for the whole tree (installed by scripts/setup.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
if(MDEVMIG_TESTS)
  find_package(GTest REQUIRED)
endif()
pkg_check_modules(LIBURING REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(LIBXXHASH REQUIRED IMPORTED_TARGET libxxhash)
# TLS for `migrate --tls`: the handshake, whose record keys go to kernel TLS (3.7.3:
# gnutls_transport_is_ktls_enabled).
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET gnutls>=3.7.3)
find_package(CapnProto REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
if(MDEVMIG_BENCH)
  find_package(benchmark REQUIRED)
endif()
