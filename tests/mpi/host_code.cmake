# A plain-MPI host at MPI_THREAD_FUNNELED calling troupe phases (issue 13): an own-main binary
# (it calls MPI_Init_thread itself; the gtest MPI harness would start MPI at MULTIPLE), run at
# 1, 2 and 4 ranks as mpi.host_code.np{1,2,4}. A failed check calls MPI_Abort: non-zero exit.
# troupe::mpi_check checks the FUNNELED rule on every MPI call of the program and of troupe.
# Included by tests/mpi/CMakeLists.txt.
add_executable(test_mpi_host_code_app ${CMAKE_CURRENT_LIST_DIR}/host_code_app.cpp)
target_link_libraries(test_mpi_host_code_app PRIVATE troupe::troupe troupe::mpi_check troupe_warnings)
_troupe_register_mpi_runs(mpi host_code test_mpi_host_code_app 120 "host_code" "" 1 2 4)
