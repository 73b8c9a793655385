# Proves that the MPI test harness reports a failure that happens on rank 1 only.
# Usage: cmake -DMPIEXEC=... -DNP=2 "-DFLAGS=a;b" -DBINARY=... -DMODE=abort|noabort -P expect_red.cmake
# Passes only if
#   1. the control test (HarnessDemo.PassesEverywhere) passes under the same launcher, and
#   2. the failing test exits non-zero, rank 1 printed its "[rank 1/N] FAILED" line with the
#      deliberate message, rank 0 printed none, and the mode's own evidence is there
#      (MPI_Abort called / rank 0 naming rank 1 as failed).
# So a red run caused by a broken launcher, a missing binary or a crash cannot pass.
foreach(var MPIEXEC NP BINARY MODE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "expect_red.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_demo filter out_rc out_text)
  execute_process(
    COMMAND ${MPIEXEC} -n ${NP} ${FLAGS} ${BINARY} --gtest_filter=${filter} --gtest_color=no
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 90)
  set(${out_rc} "${rc}" PARENT_SCOPE)
  set(${out_text} "${out}\n${err}" PARENT_SCOPE)
endfunction()

function(require text what)
  string(FIND "${text}" "${what}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "expected to find '${what}' in the output:\n${text}")
  endif()
endfunction()

function(forbid text what)
  string(FIND "${text}" "${what}" pos)
  if(NOT pos EQUAL -1)
    message(FATAL_ERROR "did not expect '${what}' in the output:\n${text}")
  endif()
endfunction()

unset(ENV{TROUPE_TEST_NO_ABORT})
run_demo(HarnessDemo.PassesEverywhere rc text)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "control run failed (rc=${rc}); the harness check would be vacuous:\n${text}")
endif()
require("${text}" "[  PASSED  ] 1 test")

if(MODE STREQUAL "abort")
  run_demo(HarnessDemo.FailsOnRank1BeforeBarrier rc text)
  set(needle "calling MPI_Abort")
  set(test_name HarnessDemo.FailsOnRank1BeforeBarrier)
elseif(MODE STREQUAL "noabort")
  set(ENV{TROUPE_TEST_NO_ABORT} 1)
  run_demo(HarnessDemo.FailsOnRank1AfterBarrier rc text)
  set(needle "test HarnessDemo.FailsOnRank1AfterBarrier failed on rank(s) 1")
  set(test_name HarnessDemo.FailsOnRank1AfterBarrier)
else()
  message(FATAL_ERROR "MODE must be abort or noabort, got '${MODE}'")
endif()

if(rc STREQUAL "0")
  message(FATAL_ERROR "the failing test exited 0: the harness hides failures on rank 1:\n${text}")
endif()
if(NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "the failing test did not finish normally (${rc}):\n${text}")
endif()
require("${text}" "[rank 1/${NP}] FAILED ${test_name}")
require("${text}" "deliberate failure on rank 1")
require("${text}" "${needle}")
forbid("${text}" "[rank 0/${NP}] FAILED")
message(STATUS "harness turned the rank-1 failure red (${MODE}, rc=${rc})")
