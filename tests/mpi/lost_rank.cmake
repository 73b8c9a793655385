# Runs test_mpi_lost_rank_app at 3 ranks under mpirun with Open MPI's recovery enabled
# (orte_enable_recovery: the job survives a dead process) and checks what the survivors
# printed. Rank 2 kills itself with SIGKILL mid-map. async_mpi_finalize: without it the
# survivors' MPI_Finalize waits in a fence for the dead process (3 hangs in 8 runs here).
# Usage: cmake -DMPIEXEC=... "-DFLAGS=a;b" -DBINARY=... -DMODE=retries|noretries -DWORK=dir -P lost_rank.cmake
foreach(var MPIEXEC BINARY MODE WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "lost_rank.cmake: -D${var}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY ${WORK})
set(kill_file ${WORK}/killed-${MODE}.txt)
file(REMOVE ${kill_file})
execute_process(
  COMMAND ${MPIEXEC} -n 3 ${FLAGS} --mca orte_enable_recovery 1 --mca orte_abort_on_non_zero_status 0
          --mca async_mpi_finalize 1 ${BINARY} ${MODE} ${kill_file}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 150)
set(text "${out}\n${err}")
message(STATUS "mpirun exit: ${rc}\n${out}")

function(require what)
  string(FIND "${text}" "${what}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "expected '${what}' in the output (mpirun exit ${rc}):\n${text}")
  endif()
endfunction()

if(NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "mpirun did not finish (${rc}): a survivor hung:\n${text}")
endif()
if(NOT EXISTS ${kill_file})
  message(FATAL_ERROR "rank 2 never killed itself: the test proves nothing:\n${text}")
endif()
if(MODE STREQUAL "retries")
  require("LOSTRANK rank 0: map completed, result exact")
else()
  require("LOSTRANK rank 0: map raised BrokenExecutor")
  require("rank 2 was lost")
endif()
require("LOSTRANK rank 0: 40 later submits ok")
require("LOSTRANK rank 0: shutdown completed without rank 2")
require("LOSTRANK rank 1: shutdown completed without rank 2")
