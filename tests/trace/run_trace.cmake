# Runs an app under mpiexec with TROUPE_TRACE=<TRACE> and checks the file with
# check_trace.py (valid Trace Event Format, every task with a start, an end, a rank and a
# thread, every rank present, messages with both ends when NP > 1).
# Usage: cmake -DMPIEXEC=... "-DFLAGS=a;b" -DNP=2 -DBINARY=... "-DARGS=a;b" -DTRACE=file.json
#              -DPYTHON=python3 -DCHECK=check_trace.py -P run_trace.cmake
foreach(var MPIEXEC NP BINARY TRACE PYTHON CHECK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_trace.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE ${TRACE})
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env TROUPE_TRACE=${TRACE} ${MPIEXEC} -n ${NP} ${FLAGS} ${BINARY} ${ARGS}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the traced run failed (${rc}):\n${out}\n${err}")
endif()
if(NOT EXISTS ${TRACE})
  message(FATAL_ERROR "TROUPE_TRACE=${TRACE}: no file was written:\n${out}\n${err}")
endif()
set(min_messages 0)
if(NP GREATER 1)
  set(min_messages 1)
endif()
execute_process(COMMAND ${PYTHON} ${CHECK} ${TRACE} --ranks ${NP} --min-messages ${min_messages}
                RESULT_VARIABLE rc OUTPUT_VARIABLE check ERROR_VARIABLE check_err TIMEOUT 60)
message(STATUS "${check}${check_err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the trace failed its check")
endif()
