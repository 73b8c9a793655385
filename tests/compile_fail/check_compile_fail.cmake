# cmake -DBUILD_DIR=... -DTARGET=... [-DCONFIG=...] -DMODE=fail|pass [-DEXPECT=<regex>] -P check_compile_fail.cmake
# MODE=fail: the build of TARGET must fail and its first error must contain EXPECT.
# MODE=pass: the build must succeed (control case).
set(config_args "")
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET} ${config_args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(MODE STREQUAL "pass")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "control case ${TARGET} should compile but did not:\n${out}")
  endif()
  message(STATUS "${TARGET} compiled, as it should")
  return()
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled, but it must be rejected at compile time")
endif()
# The first diagnostic must be the library's message: a check that fires only after an error
# deep in the library (a missing `type` in std::invoke_result, say) has not done its job.
string(REGEX MATCH ": error: [^\n]*" first "${out}")
string(FIND "${first}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${TARGET} failed to compile, but its first error is not the expected message\n"
                      "expected to find: ${EXPECT}\nfirst error${first}\ncompiler output:\n${out}")
endif()
message(STATUS "${TARGET} was rejected with: ${EXPECT}")
