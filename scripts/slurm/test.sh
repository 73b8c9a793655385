#!/usr/bin/env bash
# Starts a private single-node Slurm (munged, slurmctld, slurmd as root, state in a temp
# dir) and runs troupe through srun: each app at 1, 2 and 4 tasks, each sbatch script of
# scripts/slurm/ (sbatch --wait), then the MPI test suite (ctest -L mpi) with srun as the
# launcher (-DTROUPE_MPI_LAUNCHER=srun, its own build dir). Prints a summary table and
# stops every daemon it started, also on failure, Ctrl-C or a timeout. Exits 0 with
# "SKIP: <reason>" where Slurm cannot start here (not root, no packages, munged or a Slurm
# daemon does not come up). Safe to run again. docs/slurm.md explains it.
#
#   bash scripts/slurm/test.sh               everything (builds build-srun/ first, -j1)
#   bash scripts/slurm/test.sh --no-ctest    apps and sbatch scripts only
#   bash scripts/slurm/test.sh --no-apps     MPI test suite only
#   bash scripts/slurm/test.sh --no-build    use build-srun/ as it is (built before)
#   bash scripts/slurm/test.sh -R executor   extra arguments go to ctest
#
# Environment: TROUPE_SLURM_BUILD (build dir, default build-srun), TROUPE_SLURM_JOBS
# (build parallelism, default 1), TROUPE_SLURM_PORT (slurmctld port, slurmd uses the next
# one; default 6817), TROUPE_SLURM_KEEP=1 (keep the state dir and its logs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$TROUPE_ROOT"

run_apps=1
run_ctest=1
run_build=1
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --no-ctest) run_ctest=0 ;;
    --no-apps) run_apps=0 ;;
    --no-build) run_build=0 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done

BUILD="${TROUPE_SLURM_BUILD:-build-srun}"
JOBS="${TROUPE_SLURM_JOBS:-1}"
PORT="${TROUPE_SLURM_PORT:-6817}"
START_TIMEOUT=60  # seconds for each daemon to come up and the node to be idle
STEP_TIMEOUT=300  # seconds for one srun / sbatch --wait
STATE=""
CHILD=""  # the srun / sbatch / ctest running now (stopped first on exit)
PIDS=()    # daemons started here, in start order
ROWS=()    # summary rows: what|tasks|result|seconds
FAILED=0

skip() {
  echo "SKIP: $*"
  exit 0
}

# ---------------------------------------------------------------------------- packages
[ "$(id -u)" -eq 0 ] || skip "Slurm's daemons run as root here (SlurmUser=root); run as root"
slurm_packages=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${slurm_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install ${missing[*]}"
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update && apt-get install -y "${slurm_packages[@]}"; }; then
    skip "could not install ${slurm_packages[*]}"
  fi
fi
for cmd in munged slurmctld slurmd srun sbatch sinfo squeue scancel; do
  command -v "$cmd" >/dev/null 2>&1 || skip "$cmd not found after installing ${slurm_packages[*]}"
done
bash scripts/setup.sh
if ss -ltn 2>/dev/null | awk '{print $4}' | grep -Eq ":($PORT|$((PORT + 1)))\$"; then
  skip "port $PORT or $((PORT + 1)) is in use (another Slurm?); set TROUPE_SLURM_PORT to a free pair"
fi

# ---------------------------------------------------------------------------- build
APPS=(mandelbrot nqueens pi wordcount)
if [ "$run_build" -eq 1 ]; then
  # Its own build dir: the multi-rank tests are registered with srun as their launcher there.
  echo "== build ($BUILD, -DTROUPE_MPI_LAUNCHER=srun, -j$JOBS)"
  mkdir -p "$BUILD"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_WARNINGS_AS_ERRORS=ON \
    -DTROUPE_BUILD_EXAMPLES=OFF -DTROUPE_MPI_LAUNCHER=srun >"$BUILD/slurm-configure.log" 2>&1 ||
    { cat "$BUILD/slurm-configure.log"; exit 1; }
  grep "troupe: " "$BUILD/slurm-configure.log" || true
  targets=()
  for app in "${APPS[@]}"; do targets+=("troupe_$app"); done
  if [ "$run_ctest" -eq 1 ]; then
    mapfile -t -O "${#targets[@]}" targets < <(ninja -C "$BUILD" -t targets all |
      sed -n 's/^\(test_mpi_[A-Za-z0-9_]*\): .*/\1/p' | sort -u)
  fi
  cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"
fi

# ---------------------------------------------------------------------------- daemons
# stop_all: cancel the jobs, stop slurmd, slurmctld and munged (SIGTERM, then SIGKILL after
# a bounded wait), and any job step daemon still serving a socket of our state dir.
stop_all() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CHILD" ]; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait_until 40 "pid $CHILD ends" pid_gone "$CHILD" || kill -KILL "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  if [ -n "$STATE" ] && [ -f "$STATE/slurm.conf" ]; then
    timeout 10 scancel --full --quiet --user=root >/dev/null 2>&1 || true
    wait_until 15 "no jobs left" no_jobs || true
  fi
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    wait_until 15 "pid ${PIDS[i]} ends" pid_gone "${PIDS[i]}" || kill -KILL "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  if [ -n "$STATE" ]; then
    # slurmstepd daemonizes: one still serving a step socket in our spool dir is ours.
    local pid
    for pid in $(ss -xlpn 2>/dev/null | grep -F "$STATE/" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
      echo "stopping leftover job step daemon $pid"
      kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${TROUPE_SLURM_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
      echo "Slurm state and logs kept in $STATE"
    else
      rm -rf "$STATE"
    fi
  fi
  exit "$rc"
}

# A child that exited stays a zombie (state Z) until waited for: that counts as gone.
pid_gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
no_jobs() { [ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ]; }
ctld_up() { timeout 10 scontrol ping 2>/dev/null | grep -q "is UP"; }
node_idle() { timeout 10 sinfo -h -n "$NODE" -o %T 2>/dev/null | grep -qx 'idle'; }

# wait_until <seconds> <what> <command...>: polls the command every 0.2 s; false after <seconds>.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out after ${limit} s waiting for: $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# start_daemon <name> <log> <command...>: starts it in the background (in the foreground
# mode of the daemon, so that its pid is ours); returns 1 if it exits at once.
start_daemon() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
  echo "started $name (pid $!)"
}

daemon_failed() {  # daemon_failed <name> <log>: skip with the end of its log
  echo "--- end of $2" >&2
  tail -n 20 "$2" >&2 || true
  skip "$1 did not start (log above)"
}

trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

STATE="$(mktemp -d /tmp/troupe-slurm.XXXXXX)"
chmod 700 "$STATE"
NODE="$(hostname -s)"
mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/munge"
chmod 700 "$STATE/munge"

# A private munged: its own key and socket, so that the host's munge (if any) is untouched.
MUNGE_SOCKET="$STATE/munge/munge.socket"
if command -v mungekey >/dev/null 2>&1; then
  mungekey --create --keyfile="$STATE/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
else
  dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 600 "$STATE/munge/munge.key"
start_daemon munged "$STATE/munged.out" munged --foreground --force --socket="$MUNGE_SOCKET" \
  --key-file="$STATE/munge/munge.key" --pid-file="$STATE/munge/munged.pid" \
  --seed-file="$STATE/munge/munged.seed" --log-file="$STATE/munged.log"
wait_until "$START_TIMEOUT" "munged's socket" test -S "$MUNGE_SOCKET" ||
  daemon_failed munged "$STATE/munged.log"
if ! munge --socket="$MUNGE_SOCKET" -n </dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1; then
  daemon_failed munged "$STATE/munged.log"
fi

# The node as slurmd sees it ("NodeName=vm CPUs=2 ... RealMemory=24105").
node_hw="$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')"
[ -n "$node_hw" ] || skip "slurmd -C printed no node description"
CPUS="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_hw")"

# slurm.conf(5). A container without systemd or cgroups: processes are tracked through
# /proc (proctrack/linuxproc), tasks are not bound (task/none), no accounting.
export SLURM_CONF="$STATE/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=troupe
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$STATE/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
ReturnToService=2
KillWait=5
MinJobAge=10
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 $node_hw State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=30 State=UP
EOF
: >"$STATE/plugstack.conf"

start_daemon slurmctld "$STATE/slurmctld.out" slurmctld -D -i -f "$SLURM_CONF"
wait_until "$START_TIMEOUT" "slurmctld answers" ctld_up ||
  { cat "$STATE/slurmctld.out" >>"$STATE/slurmctld.log" 2>/dev/null; daemon_failed slurmctld "$STATE/slurmctld.log"; }
start_daemon slurmd "$STATE/slurmd.out" slurmd -D -f "$SLURM_CONF" -N "$NODE"
if ! wait_until "$START_TIMEOUT" "node $NODE idle" node_idle; then
  cat "$STATE/slurmd.out" >>"$STATE/slurmd.log" 2>/dev/null || true
  daemon_failed slurmd "$STATE/slurmd.log"
fi
echo "== Slurm up: $(sinfo -h -o '%P %D %T %c CPUs' | head -n 1) (state in $STATE)"
echo "srun --mpi=list: $(srun --mpi=list 2>&1 | tr '\n' ' ')"

# ---------------------------------------------------------------------------- runs
LOGS="$STATE/logs"
mkdir -p "$LOGS"
export TROUPE_BUILD="$BUILD"
unset TROUPE_QUIET  # the apps' start-up line names the Slurm job
# srun --overcommit puts more ranks than CPUs on the node, which Open MPI cannot see under
# srun (mpirun --oversubscribe tells it): yield in blocking calls instead of spinning.
export OMPI_MCA_mpi_yield_when_idle=1

# run_step <name> <tasks> <pattern> <command...>: runs the command (bounded), keeps its output
# in $LOGS/<name>-n<tasks>.log, and records ok when it exits 0 and its output matches the pattern.
run_step() {
  local name=$1 tasks=$2 pattern=$3
  shift 3
  local log="$LOGS/${name// /_}-n$tasks.log" t0=$SECONDS rc=0 result=ok
  echo "-- $name: $*"
  # In the background with wait: a signal to this script interrupts wait (the trap runs at once).
  timeout -k 10 "$STEP_TIMEOUT" "$@" >"$log" 2>&1 &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    result="TIMEOUT (${STEP_TIMEOUT} s)"
  elif [ "$rc" -ne 0 ]; then
    result="FAIL (exit $rc)"
  elif [ -n "$pattern" ] && ! grep -Eq "$pattern" "$log"; then
    result="FAIL (no /$pattern/ in output)"
  fi
  ROWS+=("$name|$tasks|$result|$((SECONDS - t0))")
  if [ "$result" = ok ]; then
    # The interesting lines: Slurm's start-up line, the apps' verdicts, the thread count.
    grep -E "slurm job|threads=|images identical|solutions =|pi +~|error +=|verify =" "$log" | head -n 8 | sed 's/^/   /' || true
  else
    FAILED=1
    echo "   $result; end of $log:"
    tail -n 40 "$log" | sed 's/^/   /'
  fi
}

# Small inputs, each app checks its own result (non-zero exit when wrong).
app_args() {
  case "$1" in
    mandelbrot) echo "$LOGS/mandelbrot-$2.pgm --width 240 --height 120 --max-iter 300" ;;
    nqueens) echo "--n 10 --info" ;;
    pi) echo "--samples 4000000 --info" ;;
    wordcount) echo "$TROUPE_ROOT/docs $TROUPE_ROOT/README.md --verify --top 5" ;;
  esac
}

if [ "$run_apps" -eq 1 ]; then
  echo "== apps through srun --mpi=pmix --overcommit -n {1,2,4}"
  for app in "${APPS[@]}"; do
    for n in 1 2 4; do
      # shellcheck disable=SC2046
      run_step "srun $app" "$n" "slurm job [0-9]+ step [0-9]+: $n tasks? on nodes $NODE" \
        srun --mpi=pmix --overcommit --kill-on-bad-exit=1 --time=5 -n "$n" \
        "$BUILD/apps/$app/troupe_$app" $(app_args "$app" "np$n")
    done
  done
  # srun -c 2: SLURM_CPUS_PER_TASK=2 gives each rank 2 threads (the info line says why).
  run_step "srun -c 2 pi" 1 "threads=2.*SLURM_CPUS_PER_TASK|SLURM_CPUS_PER_TASK.*2" \
    srun --mpi=pmix --overcommit --kill-on-bad-exit=1 --time=5 -n 1 -c 2 \
    "$BUILD/apps/pi/troupe_pi" --samples 4000000 --info

  echo "== sbatch --wait scripts/slurm/<app>.sbatch"
  for app in "${APPS[@]}"; do
    # shellcheck disable=SC2046
    run_step "sbatch $app.sbatch" 2 "" \
      sbatch --wait --quiet --overcommit --ntasks=2 --time=5 --output="$LOGS/sbatch-$app.out" \
      "scripts/slurm/$app.sbatch" $(app_args "$app" sbatch)
    # sbatch --wait returns the job's exit code; the job's own output must name its Slurm job.
    if ! grep -Eq "slurm job [0-9]+ step [0-9]+: 2 tasks on nodes $NODE" "$LOGS/sbatch-$app.out" 2>/dev/null; then
      ROWS[-1]="sbatch $app.sbatch|2|FAIL (no start-up line in the job output)|0"
      FAILED=1
      tail -n 40 "$LOGS/sbatch-$app.out" 2>/dev/null | sed 's/^/   /'
    else
      grep -E "slurm job|sbatch: job" "$LOGS/sbatch-$app.out" | sed 's/^/   /'
    fi
  done
  run_step "sbatch -c 2 pi.sbatch" 1 "" \
    sbatch --wait --quiet --ntasks=1 --cpus-per-task=2 --time=5 --output="$LOGS/sbatch-pi-c2.out" \
    scripts/slurm/pi.sbatch --samples 4000000 --info
  if grep -Eq "threads=2.*SLURM_CPUS_PER_TASK" "$LOGS/sbatch-pi-c2.out" 2>/dev/null; then
    grep -E "slurm job|threads=" "$LOGS/sbatch-pi-c2.out" | sed 's/^/   /'
  else
    ROWS[-1]="sbatch -c 2 pi.sbatch|1|FAIL (not 2 threads from SLURM_CPUS_PER_TASK)|0"
    FAILED=1
    tail -n 20 "$LOGS/sbatch-pi-c2.out" 2>/dev/null | sed 's/^/   /'
  fi
fi

if [ "$run_ctest" -eq 1 ]; then
  echo "== MPI test suite through srun: ctest -L '^mpi\$' -LE singleton in $BUILD"
  echo "   not run here: the singleton tests (label singleton: they start the binary without a"
  echo "   launcher, so srun plays no part; the ordinary ctest runs them)"
  grep -h "skipped under srun" "$BUILD/slurm-configure.log" 2>/dev/null | sed 's/^-- troupe: /   /' || true
  t0=$SECONDS
  rc=0
  # PROCESSORS on each test keeps -j2 within 2 CPUs' worth of ranks at a time.
  # -L '^mpi$': the label itself (a bare "mpi" would also match "compile_fail").
  timeout -k 30 3600 ctest --test-dir "$BUILD" -L '^mpi$' -LE singleton --output-on-failure \
    -j "${TROUPE_SLURM_CTEST_JOBS:-2}" "${ctest_args[@]}" >"$LOGS/ctest.log" 2>&1 &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  # Every test's line (name, result, seconds), then ctest's verdict and the skip reasons.
  grep -E " Test +#[0-9]+: " "$LOGS/ctest.log" | sed 's/^ */   /' || true
  grep -E "SKIP:|tests passed|tests failed" "$LOGS/ctest.log" | sort -u | sed 's/^/   /' || true
  # One row per rank count: passed / failed / skipped and the summed test time.
  while IFS='|' read -r np pass fail skipped secs; do
    result="ok ($pass passed"
    [ "$skipped" -gt 0 ] && result+=", $skipped skipped"
    [ "$fail" -gt 0 ] && result="FAIL ($pass passed, $fail failed" && FAILED=1
    ROWS+=("ctest mpi tests (srun)|$np|$result)|$secs")
  done < <(awk '
    / Test +#[0-9]+: / {
      for (i = 1; i < NF; i++) if ($i ~ /^#[0-9]+:$/) name = $(i + 1)
      np = name; sub(/.*\.np/, "", np)
      status = ($0 ~ /Passed/) ? "pass" : ($0 ~ /Not Run|Skipped/) ? "skip" : "fail"
      secs = $(NF - 1)
      n[np]++; c[np, status]++; t[np] += secs
    }
    END { for (np in n) printf "%s|%d|%d|%d|%.0f\n", np, c[np, "pass"], c[np, "fail"], c[np, "skip"], t[np] }
  ' "$LOGS/ctest.log" | sort -n)
  if [ "$rc" -ne 0 ]; then
    FAILED=1
    ROWS+=("ctest mpi tests (srun) exit|-|FAIL (exit $rc)|$((SECONDS - t0))")
    tail -n 60 "$LOGS/ctest.log" | sed 's/^/   /'
  fi
  echo "   ctest wall time: $((SECONDS - t0)) s"
fi

wait_until 30 "no jobs left" no_jobs || { echo "jobs still queued:"; squeue; FAILED=1; }

echo
echo "== summary (Slurm $(sinfo --version | awk '{print $2}'), node $NODE: $CPUS CPUs, srun --mpi=pmix)"
printf '%-30s %-6s %-34s %s\n' "what" "tasks" "result" "seconds"
for row in "${ROWS[@]}"; do
  IFS='|' read -r what tasks result secs <<<"$row"
  printf '%-30s %-6s %-34s %s\n' "$what" "$tasks" "$result" "$secs"
done
if [ "$FAILED" -ne 0 ]; then
  echo "slurm test: FAILED (logs in $LOGS)"
  exit 1
fi
echo "slurm test: all passed"
