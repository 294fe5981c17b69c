# Test helpers. Every test has a timeout; multi-rank tests run under the launcher at each
# requested rank count (odd and oversubscribed ones included: the machine has 2 cores).
include(GoogleTest)
find_package(GTest REQUIRED)

set(COHORT_TEST_TIMEOUT 120 CACHE STRING "Default per-test timeout in seconds")

# cohort_unit_test(NAME SOURCES... [LIBS ...]): a GoogleTest binary, one ctest entry per test case.
function(cohort_unit_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LIBS" ${ARGN})
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE cohort_internal GTest::gtest_main GTest::gmock ${ARG_LIBS})
  cohort_warnings(${name})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${COHORT_TEST_TIMEOUT})
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT ${ARG_TIMEOUT})
endfunction()

# cohort_rank_test(NAME SOURCES... RANKS 1 2 3 [TIMEOUT s] [LIBS ...]): a GoogleTest binary
# with the rank-aware main (tests/support/rank_main.cpp), run by cohortrun at every rank count.
function(cohort_rank_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "RANKS;LIBS;ARGS" ${ARGN})
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE cohort_internal cohort_rank_main ${ARG_LIBS})
  cohort_warnings(${name})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${COHORT_TEST_TIMEOUT})
  endif()
  foreach(n IN LISTS ARG_RANKS)
    add_test(NAME ${name}.np${n}
      COMMAND $<TARGET_FILE:cohortrun> -n ${n} --tag-output --timeout ${ARG_TIMEOUT}
              $<TARGET_FILE:${name}> ${ARG_ARGS})
    set_tests_properties(${name}.np${n} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "ranks")
  endforeach()
endfunction()
