# Test helpers. Every test has a timeout; multi-rank tests run under the launcher at each
# requested rank count (odd and oversubscribed ones included: the machine has 2 cores).
include(GoogleTest)
find_package(GTest REQUIRED)

set(COHORT_TEST_TIMEOUT 120 CACHE STRING "Default per-test timeout in seconds")
# Timeouts catch hangs, never slowness: sanitizer builds run the same tests 3-10x slower (TSan's
# p2p_test.np2 takes ~20 s alone on a loaded 2-core machine), so their multi-rank timeouts are
# scaled.
if(COHORT_SANITIZE)
  set(COHORT_TIMEOUT_SCALE 3)
else()
  set(COHORT_TIMEOUT_SCALE 1)
endif()

# The launch command of a multi-rank test: cohort_launch_command(OUT N TIMEOUT) sets OUT to
# `cohortrun -n N --tag-output --timeout T` (shm backend) or, on the MPI backend, to Open MPI's
# `mpirun -n N` (oversubscribed: 2 cores here; odls_base_max_threads 0 or the launch may hang
# here; the root variables come from the tests' ENVIRONMENT, see cohort_launch_properties).
# On the MPI backend rank counts above 4 are not run (COHORT_MPI_MAX_RANKS).
set(COHORT_MPI_MAX_RANKS 4 CACHE STRING "MPI backend: largest rank count the tests run at")
function(cohort_launch_command out n timeout)
  if(COHORT_BACKEND STREQUAL "mpi")
    set(${out} ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} --oversubscribe
        --mca odls_base_max_threads 0 --tag-output --timeout ${timeout} PARENT_SCOPE)
  else()
    set(${out} $<TARGET_FILE:cohortrun> -n ${n} --tag-output --timeout ${timeout} PARENT_SCOPE)
  endif()
endfunction()
# cohort_launch_properties(TEST...): what every launched test needs (mpirun as root).
function(cohort_launch_properties)
  if(COHORT_BACKEND STREQUAL "mpi")
    set_tests_properties(${ARGN} PROPERTIES
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
  endif()
endfunction()
# cohort_backend_skip(WHAT REASON): says at configure time which tests the MPI backend leaves out
# and why (never silently).
function(cohort_backend_skip what reason)
  message(STATUS "MPI backend: not run: ${what}: ${reason}")
endfunction()

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
  math(EXPR ARG_TIMEOUT "${ARG_TIMEOUT} * ${COHORT_TIMEOUT_SCALE}")
  foreach(n IN LISTS ARG_RANKS)
    if(COHORT_BACKEND STREQUAL "mpi" AND n GREATER COHORT_MPI_MAX_RANKS)
      continue()
    endif()
    cohort_launch_command(launch ${n} ${ARG_TIMEOUT})
    add_test(NAME ${name}.np${n} COMMAND ${launch} $<TARGET_FILE:${name}> ${ARG_ARGS})
    set_tests_properties(${name}.np${n} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "ranks")
    cohort_launch_properties(${name}.np${n})
  endforeach()
endfunction()
