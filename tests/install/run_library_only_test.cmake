# Driver of the install.library_only test: configures the source tree with
# -DTROUPE_LIBRARY_ONLY=ON (configure only) and checks that no tests, examples, apps or
# benchmarks were added: their build folders do not exist.
foreach(var TROUPE_SOURCE_DIR WORK_DIR GENERATOR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_library_only_test.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${TROUPE_SOURCE_DIR} -B ${WORK_DIR} -G ${GENERATOR}
                        -DCMAKE_CXX_COMPILER=${CXX} -DTROUPE_LIBRARY_ONLY=ON -DTROUPE_BUILD_TESTS=ON
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 240)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "configure with TROUPE_LIBRARY_ONLY=ON failed (${rc}):\n${out}\n${err}")
endif()
foreach(dir tests examples apps bench)
  if(EXISTS ${WORK_DIR}/${dir})
    message(FATAL_ERROR "TROUPE_LIBRARY_ONLY=ON still added ${dir}/")
  endif()
endforeach()
if(NOT EXISTS ${WORK_DIR}/lib)
  message(FATAL_ERROR "TROUPE_LIBRARY_ONLY=ON did not add the library")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
message(STATUS "TROUPE_LIBRARY_ONLY=ON: the library only")
