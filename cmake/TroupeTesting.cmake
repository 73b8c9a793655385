# Test registration helpers: unit tests (gtest, discovered), multi-rank tests registered at
# several rank counts, and examples run as smoke tests. Every test gets a ctest TIMEOUT.
include_guard(GLOBAL)
include(GoogleTest)
find_package(GTest REQUIRED)

set(TROUPE_TEST_RANKS "1;2;4" CACHE STRING "Default MPI rank counts for tests/mpi")
set(TROUPE_TEST_TIMEOUT 120 CACHE STRING "Default per-test time limit in seconds")
set(TROUPE_MPIEXEC_FLAGS "" CACHE STRING "Extra flags for mpiexec in tests")
# Open MPI refuses root and np > cores unless told; MPICH needs neither flag.
if(MPI_CXX_LIBRARY_VERSION_STRING MATCHES "Open MPI|OpenMPI")
  set(_troupe_mpiexec_flags --oversubscribe --allow-run-as-root ${TROUPE_MPIEXEC_FLAGS})
  # Open MPI 4.1 races when two jobs (mpirun or singletons) start at the same moment and
  # both create /tmp/ompi.<host>.<uid> ("mkdir ... File exists", orte_init fails). ctest -j
  # does exactly that, so every test gets its own session-directory base (kept short:
  # PMIx puts Unix sockets below it).
  set(TROUPE_TEST_OMPI_TMPDIR "/tmp/troupe-ompi" CACHE STRING "Base of per-test Open MPI session dirs")
  set(_troupe_ompi_session TRUE)
else()
  set(_troupe_mpiexec_flags ${TROUPE_MPIEXEC_FLAGS})
  set(_troupe_ompi_session FALSE)
endif()

# The launcher of the multi-rank tests: mpiexec (FindMPI's MPIEXEC_EXECUTABLE), or srun inside
# a Slurm allocation or next to a local Slurm (scripts/slurm/test.sh, docs/slurm.md). With srun,
# MPIEXEC_EXECUTABLE and its flags are shadowed in this directory scope, so every test started
# with them (tests/mpi, tests/install, apps, examples) goes through srun: --mpi=pmix (the ranks
# use the PMIx server of slurmd), --overcommit (more tasks than CPUs), and --kill-on-bad-exit=1
# (a rank that fails ends the step, as mpiexec does). Open MPI's mpirun-only flags
# (--oversubscribe, --allow-run-as-root, MPIEXEC_PREFLAGS) are dropped; tests that only make
# sense under mpirun are registered as skipped (each says why at configure time).
set(TROUPE_MPI_LAUNCHER "mpiexec" CACHE STRING "Launcher of the multi-rank tests: mpiexec or srun")
set_property(CACHE TROUPE_MPI_LAUNCHER PROPERTY STRINGS mpiexec srun)
set(TROUPE_SRUN_FLAGS "" CACHE STRING "Extra flags for srun in tests (TROUPE_MPI_LAUNCHER=srun)")
if(TROUPE_MPI_LAUNCHER STREQUAL "srun")
  find_program(TROUPE_SRUN_EXECUTABLE srun)
  if(NOT TROUPE_SRUN_EXECUTABLE)
    message(FATAL_ERROR "TROUPE_MPI_LAUNCHER=srun: srun not found (Debian: apt-get install slurm-client)")
  endif()
  set(MPIEXEC_EXECUTABLE ${TROUPE_SRUN_EXECUTABLE})
  set(MPIEXEC_NUMPROC_FLAG -n)
  set(MPIEXEC_PREFLAGS "")
  set(MPIEXEC_POSTFLAGS "")
  set(_troupe_mpiexec_flags --mpi=pmix --overcommit --kill-on-bad-exit=1 ${TROUPE_SRUN_FLAGS})
  list(JOIN _troupe_mpiexec_flags " " _troupe_shown_flags)
  message(STATUS "troupe: multi-rank tests run under ${MPIEXEC_EXECUTABLE} ${_troupe_shown_flags}")
elseif(NOT TROUPE_MPI_LAUNCHER STREQUAL "mpiexec")
  message(FATAL_ERROR "TROUPE_MPI_LAUNCHER must be mpiexec or srun, not '${TROUPE_MPI_LAUNCHER}'")
endif()
# troupe_boost_mpi_usable(<out_var>): TRUE when Boost.MPI is installed AND was built against
# the MPI this build uses. Debian's libboost-mpi links Open MPI's libmpi.so.40; linking it
# into an MPICH build would load two MPI libraries into one process. The check compares the
# MPI sonames the Boost.MPI library names (its NEEDED entries, read as strings) with the
# libraries FindMPI chose; a mismatch prints why the Boost.MPI tests and examples are skipped.
function(troupe_boost_mpi_usable out)
  set(${out} FALSE PARENT_SCOPE)
  find_package(Boost 1.74 QUIET COMPONENTS mpi)
  if(NOT Boost_MPI_FOUND)
    return()
  endif()
  get_target_property(boost_mpi_lib Boost::mpi IMPORTED_LOCATION_RELEASE)
  if(NOT boost_mpi_lib)
    get_target_property(boost_mpi_lib Boost::mpi IMPORTED_LOCATION)
  endif()
  if(NOT boost_mpi_lib OR NOT EXISTS "${boost_mpi_lib}")
    set(${out} TRUE PARENT_SCOPE)  # cannot tell: trust the installation
    return()
  endif()
  file(STRINGS "${boost_mpi_lib}" boost_needed REGEX "^libmpi[a-z_]*\\.so")
  set(ours)
  foreach(lib IN LISTS MPI_CXX_LIBRARIES)
    get_filename_component(stem "${lib}" NAME_WE)
    list(APPEND ours "${stem}")
  endforeach()
  foreach(needed IN LISTS boost_needed)
    string(REGEX REPLACE "\\.so.*" "" stem "${needed}")
    if(stem IN_LIST ours)
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
  endforeach()
  get_property(reported GLOBAL PROPERTY TROUPE_BOOST_MPI_MISMATCH_REPORTED)
  if(NOT reported)
    set_property(GLOBAL PROPERTY TROUPE_BOOST_MPI_MISMATCH_REPORTED TRUE)
    message(STATUS "troupe: Boost.MPI tests and examples skipped: ${boost_mpi_lib} links "
                   "${boost_needed}, this build uses ${ours} (another MPI implementation)")
  endif()
endfunction()

# Sanitizer run-time options in a -DTROUPE_SANITIZE build. Every test and example links
# troupe_sanitizer_options, which compiles them (and tests/sanitizers/lsan.supp) into the
# binary, so they hold however it is started. Tests that start MPI also carry them as
# environment (which reaches the ranks: Open MPI starts local ranks with mpiexec's
# environment), so binaries registered elsewhere (apps, the harness demo) get them too.
# Leaks are checked; the suppressions name Open MPI's libraries only, never a troupe frame.
# A UBSan report fails the test.
set(TROUPE_SANITIZER_ENV "")
if(TROUPE_SANITIZE AND NOT TARGET troupe_sanitizer_options)
  get_filename_component(_troupe_sanitizers_dir "${CMAKE_CURRENT_LIST_DIR}/../tests/sanitizers" ABSOLUTE)
  file(READ "${_troupe_sanitizers_dir}/lsan.supp" TROUPE_LSAN_SUPPRESSIONS)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_troupe_sanitizers_dir}/lsan.supp")
  configure_file("${_troupe_sanitizers_dir}/sanitizer_options.cpp.in"
                 "${CMAKE_BINARY_DIR}/troupe_sanitizer_options.cpp" @ONLY)
  add_library(troupe_sanitizer_options OBJECT "${CMAKE_BINARY_DIR}/troupe_sanitizer_options.cpp")
  # Its dlclose must be the one Open MPI's libraries call (see the source).
  target_link_options(troupe_sanitizer_options INTERFACE "LINKER:--export-dynamic-symbol=dlclose")
endif()
if(TROUPE_SANITIZE MATCHES "address")
  list(APPEND TROUPE_SANITIZER_ENV
    "ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:fast_unwind_on_malloc=0"
    "LSAN_OPTIONS=suppressions=${_troupe_sanitizers_dir}/lsan.supp:print_suppressions=0")
endif()
if(TROUPE_SANITIZE MATCHES "undefined")
  list(APPEND TROUPE_SANITIZER_ENV "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()

# Every target defined after this point (tests, examples, apps, fuzz targets; not the
# library, which comes before) links the options, also those registered outside this file.
if(TARGET troupe_sanitizer_options)
  link_libraries(troupe_sanitizer_options)
endif()

# troupe_mpi_test_environment(<out_var> <test_name>): environment entries every test that
# starts MPI (under mpiexec or as a singleton) should carry.
function(troupe_mpi_test_environment out test_name)
  set(env "OMPI_MCA_mpi_param_check=1" ${TROUPE_SANITIZER_ENV})
  if(_troupe_ompi_session)
    list(APPEND env "OMPI_MCA_orte_tmpdir_base=${TROUPE_TEST_OMPI_TMPDIR}/${test_name}")
  endif()
  if(_troupe_ompi_session AND TROUPE_MPI_LAUNCHER STREQUAL "srun")
    # mpirun --oversubscribe makes Open MPI yield in blocking calls; under srun --overcommit it
    # cannot tell that the node is oversubscribed and spins, starving the other ranks.
    list(APPEND env "OMPI_MCA_mpi_yield_when_idle=1")
  endif()
  set(${out} "${env}" PARENT_SCOPE)
endfunction()

# <prefix>.<name>.np<N> per N. mpiexec kills the job at <timeout> (MPIEXEC_TIMEOUT is honoured
# by Open MPI and MPICH; under srun, --time is the same limit in whole minutes); ctest's
# TIMEOUT (+15 s) is the backstop.
function(_troupe_register_mpi_runs prefix name target timeout labels extra_args)
  math(EXPR backstop "${timeout} + 15")
  set(time_flag "")
  if(TROUPE_MPI_LAUNCHER STREQUAL "srun")
    math(EXPR minutes "(${timeout} + 59) / 60")
    set(time_flag --time=${minutes})
  endif()
  foreach(np IN LISTS ARGN)
    set(test_name ${prefix}.${name}.np${np})
    add_test(NAME ${test_name}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${_troupe_mpiexec_flags} ${time_flag}
              ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${target}> ${MPIEXEC_POSTFLAGS} ${extra_args})
    troupe_mpi_test_environment(env ${test_name})
    set_tests_properties(${test_name} PROPERTIES
      TIMEOUT ${backstop} PROCESSORS ${np}
      ENVIRONMENT "MPIEXEC_TIMEOUT=${timeout};${env}"
      LABELS "${prefix};np${np};${labels}")
  endforeach()
endfunction()

# troupe_add_mpi_test(<name> SOURCES <src>... [RANKS <n>...] [TIMEOUT <s>] [LIBRARIES ...] [LABELS ...])
function(troupe_add_mpi_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TIMEOUT" "SOURCES;RANKS;LIBRARIES;LABELS;ARGS")
  if(NOT arg_RANKS)
    set(arg_RANKS ${TROUPE_TEST_RANKS})
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT ${TROUPE_TEST_TIMEOUT})
  endif()
  add_executable(test_mpi_${name} ${arg_SOURCES})
  target_link_libraries(test_mpi_${name} PRIVATE troupe_gtest_mpi_main troupe::troupe troupe_warnings ${arg_LIBRARIES})
  _troupe_register_mpi_runs(mpi ${name} test_mpi_${name} ${arg_TIMEOUT} "${arg_LABELS}" "${arg_ARGS}" ${arg_RANKS})
endfunction()

# troupe_add_unit_test(<name> SOURCES <src>... [TIMEOUT <s>] [LIBRARIES ...])
function(troupe_add_unit_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TIMEOUT" "SOURCES;LIBRARIES")
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT ${TROUPE_TEST_TIMEOUT})
  endif()
  add_executable(test_unit_${name} ${arg_SOURCES})
  target_link_libraries(test_unit_${name} PRIVATE GTest::gtest_main troupe::troupe troupe_warnings ${arg_LIBRARIES})
  gtest_discover_tests(test_unit_${name} TEST_PREFIX unit. DISCOVERY_MODE PRE_TEST
    PROPERTIES TIMEOUT ${arg_TIMEOUT} LABELS unit)
  # Every test of tests/unit/<layer> also gets the label unit_<layer>, so scripts can pick
  # layers (scripts/test.sh's ThreadSanitizer run: ctest -L 'unit_(pool|future|sync)').
  # A directory property, because gtest_discover_tests cannot pass a list of labels.
  get_filename_component(layer ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  get_property(dir_labels DIRECTORY PROPERTY LABELS)
  if(NOT "unit_${layer}" IN_LIST dir_labels)
    set_property(DIRECTORY APPEND PROPERTY LABELS unit_${layer})
  endif()
endfunction()

# troupe_add_example(<name> SOURCES <src>... [RUN_RANKS <n>...]) — built always, smoke-run if RUN_RANKS
function(troupe_add_example name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;RUN_RANKS;LIBRARIES;ARGS")
  add_executable(example_${name} ${arg_SOURCES})
  target_link_libraries(example_${name} PRIVATE troupe::troupe troupe_warnings ${arg_LIBRARIES})
  if(arg_RUN_RANKS)
    _troupe_register_mpi_runs(example ${name} example_${name} 60 "example" "${arg_ARGS}" ${arg_RUN_RANKS})
  endif()
endfunction()
