# cmake -P script run by ctest: install, configure and build the consumer, run it with the
# installed launcher.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
if(LAUNCH)  # the MPI backend: mpirun ...
  separate_arguments(launch UNIX_COMMAND "${LAUNCH}")
  run(${launch} ${WORK_DIR}/build/consumer)
else()
  run(${prefix}/bin/cohortrun -n 2 ${WORK_DIR}/build/consumer)
endif()
