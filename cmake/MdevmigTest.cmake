# mdevmig_add_test(NAME LABEL <unit|lab|qemu|fuzz|bench> SOURCES ... [LIBS ...] [TIMEOUT s]
#                  [LAB_ARGS ...])
#
# One GoogleTest executable per component. Every test executable and its CTest test carry
# one name, <component>_<kind> (cli_unit, module_lab, migration_qemu, dirty_bench,
# migration_container_fuzz; a qualifier may follow the component), the kind being the
# test's label, so a name says where the test runs and ctest -R '_lab$' finds a kind.
# Whole-lab measurements run only by hand have kind and label `measure`
# (libvirt_paths_measure): no stage of the test command selects it.
# Helper programs of the test tree are named <component>_<tool> (migration_seedgen,
# report_sample), without a kind, so no test pattern picks them up.
# `unit` tests run on the host as they are. `lab` and `qemu` tests need the kernel
# module: CTest runs each such executable as one lab test group, i.e. one boot of the lab
# VM (tools/lab/lab.sh) that loads the modules and runs the executable inside the guest,
# where a skipped test counts as a failure.
# LAB_ARGS are extra options for tools/lab/lab.sh (e.g. --ivshmem 64M).
set(MDEVMIG_LAB_PROFILE "bookworm" CACHE STRING "Lab profile the lab tests boot: bookworm, trixie or sid")

function(mdevmig_add_test name)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "SOURCES;LIBS;LAB_ARGS" ${ARGN})
  if(NOT T_LABEL)
    message(FATAL_ERROR "mdevmig_add_test(${name}): LABEL is required")
  endif()
  mdevmig_check_test_name(${name} ${T_LABEL})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock)
  if(T_LABEL STREQUAL "lab" OR T_LABEL STREQUAL "qemu")
    target_link_libraries(${name} PRIVATE mdevmig::labtest_main)
    if(NOT T_TIMEOUT)
      set(T_TIMEOUT 900)
    endif()
    add_test(NAME ${name}
             COMMAND ${PROJECT_SOURCE_DIR}/tools/lab/lab.sh
                     --name ${name} --timeout ${T_TIMEOUT} --profile ${MDEVMIG_LAB_PROFILE}
                     --kmod-dir ${PROJECT_BINARY_DIR}/kmod ${T_LAB_ARGS}
                     -- ${PROJECT_SOURCE_DIR}/tests/lab/run-group.sh $<TARGET_FILE:${name}>)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE TIMEOUT ${T_TIMEOUT})
  else()
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
    add_test(NAME ${name} COMMAND ${name})
    if(T_TIMEOUT)
      set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
    endif()
  endif()
  set_tests_properties(${name} PROPERTIES LABELS ${T_LABEL})
  mdevmig_label_target(${T_LABEL} ${name})
endfunction()

# mdevmig_check_test_name(NAME KIND): NAME must be <component>_<KIND>.
function(mdevmig_check_test_name name kind)
  if(NOT name MATCHES "^[a-z][a-z0-9_]*_${kind}$")
    message(FATAL_ERROR "test ${name}: name it <component>_${kind} (see cmake/MdevmigTest.cmake)")
  endif()
endfunction()

# mdevmig_label_target(LABEL TARGET): tests_LABEL builds what `ctest -L LABEL` runs, so
# a preset that runs one label builds only that (cmake --build --target tests_unit).
function(mdevmig_label_target label target)
  if(NOT TARGET tests_${label})
    add_custom_target(tests_${label})
  endif()
  add_dependencies(tests_${label} ${target})
endfunction()

# mdevmig_add_lab_bench(NAME SOURCES ... [LIBS ...] [TIMEOUT s])
#
# A Google Benchmark program that needs the kernel module: CTest (label bench) runs it
# as one lab boot with a short minimum time, as a smoke test; for figures, run it
# through tools/lab/lab.sh with a longer --benchmark_min_time (see BENCHMARKS.md).
function(mdevmig_add_lab_bench name)
  cmake_parse_arguments(B "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT B_TIMEOUT)
    set(B_TIMEOUT 600)
  endif()
  mdevmig_check_test_name(${name} bench)
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE ${B_LIBS} benchmark::benchmark)
  add_test(NAME ${name}
           COMMAND ${PROJECT_SOURCE_DIR}/tools/lab/lab.sh
                   --name ${name} --timeout ${B_TIMEOUT} --profile ${MDEVMIG_LAB_PROFILE}
                   --kmod-dir ${PROJECT_BINARY_DIR}/kmod
                   -- ${PROJECT_SOURCE_DIR}/tests/lab/run-group.sh $<TARGET_FILE:${name}>
                      --benchmark_min_time=0.01)
  set_tests_properties(${name} PROPERTIES LABELS bench RUN_SERIAL TRUE TIMEOUT ${B_TIMEOUT})
endfunction()
