"""mpi4py.futures baselines for issue 3's benchmarks (troupe's distributed executor).

Run in mpi4py's pre-started mode, with Debian's system python3 (python3-mpi4py):

    mpirun --allow-run-as-root [--oversubscribe] -n N \\
        /usr/bin/python3 -m mpi4py.futures bench/mpi4py_futures_bench.py

Rank 0 runs this script as the client; ranks 1..N-1 are the workers, so N ranks give
N-1 workers (2 ranks = 1 worker). Pre-started mode is used because it is the reliable one
here: spawn mode from a singleton hangs when MPI_Comm_spawn fails, and its workers talk
to the parent over TCP (reference: python-anchors.md 1.4, measured-here.md pitfall 3).
MPICommExecutor inside the script does the same split of COMM_WORLD and gives the same
worker count. Workers import this file as __worker__, hence the __main__ guard and the
top-level task functions.

Measures (after bootup() and a warm-up task), one line each, parsed by
scripts/compare-mpi4py.sh:

    RESULT name=submit_roundtrip unit=us value=402 reps=2000 min=.. max=.. workers=1

  submit_roundtrip   (a) submit(noop, i).result(), one at a time: median/min/max per trip
  tasks_unchunked    (b) submit N no-op tasks, then wait for all: tasks/s, median of 3
  map_chunk{100,1000,10000}
                     (c) sum(executor.map(noop, range(M), chunksize=c)): items/s, median of 3
  map_chunk_best     the best of the three chunksizes above
  scoop_10ms         (d) reduce(add, executor.map(sum_after_10ms, [[a]*a for a < K])),
                     SCOOP's mapReduce seed with 10 ms per element: seconds, median of 1..
  scoop_10ms_vs_ideal  the same time / (K x 10 ms / workers)
  sleep_10ms         time.sleep(0.01) measured in the client alone (what "10 ms" costs)

Sizes come from the environment (defaults keep one run at 1 worker under ~25 s):
  MPI4PY_BENCH_ROUNDTRIPS (2000), MPI4PY_BENCH_TASKS (4000 per worker),
  MPI4PY_BENCH_MAP_ITEMS (200000), MPI4PY_BENCH_SCOOP_K (1000, the seed's size),
  MPI4PY_BENCH_REPS (3).
mpi4py's idle back-off is left at its default (1 ms) unless MPI4PY_BENCH_BACKOFF (seconds)
is set; it is passed as MPIPoolExecutor(backoff=...), which mpi4py 3.1 uses in the
client's manager thread and broadcasts to the workers.
"""
import functools
import operator
import os
import statistics
import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor, wait


def noop(x):
    return x


def sum_after_10ms(values):
    time.sleep(0.01)
    return sum(values)


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def result(name, unit, samples, workers, **extra):
    """Prints one RESULT line: median of the samples, with min and max."""
    fields = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"RESULT name={name} unit={unit} value={statistics.median(samples):.4g} "
          f"reps={len(samples)} min={min(samples):.4g} max={max(samples):.4g} "
          f"workers={workers} {fields}".rstrip(), flush=True)


def main():
    reps = env_int("MPI4PY_BENCH_REPS", 3)
    roundtrips = env_int("MPI4PY_BENCH_ROUNDTRIPS", 2000)
    map_items = env_int("MPI4PY_BENCH_MAP_ITEMS", 200_000)
    scoop_k = env_int("MPI4PY_BENCH_SCOOP_K", 1000)
    options = {}
    if os.environ.get("MPI4PY_BENCH_BACKOFF"):
        options["backoff"] = float(os.environ["MPI4PY_BENCH_BACKOFF"])
    clock = time.perf_counter

    with MPIPoolExecutor(**options) as executor:
        executor.bootup(wait=True)
        # mpi4py 3.1 has no num_workers property; in pre-started mode every other rank works.
        workers = getattr(executor, "num_workers", None) or MPI.COMM_WORLD.Get_size() - 1
        tasks = env_int("MPI4PY_BENCH_TASKS", 4000) * workers
        print(f"# mpi4py {sys.modules['mpi4py'].__version__}, python {sys.version.split()[0]}, "
              f"{MPI.COMM_WORLD.Get_size()} ranks = 1 client + {workers} worker(s), "
              f"{MPI.Get_library_version().splitlines()[0].rstrip(chr(0) + ' ,')}", flush=True)
        executor.submit(noop, 0).result()  # warm-up: first task pays imports and connections

        # (a) one task at a time: the latency a dependent chain of tasks pays per step.
        trips = []
        for i in range(roundtrips):
            t0 = clock()
            executor.submit(noop, i).result()
            trips.append((clock() - t0) * 1e6)
        result("submit_roundtrip", "us", trips, workers)

        # (b) unchunked throughput: one future per task, all submitted, then all waited.
        rates = []
        for _ in range(reps):
            t0 = clock()
            futures = [executor.submit(noop, i) for i in range(tasks)]
            done, not_done = wait(futures)
            elapsed = clock() - t0
            assert not not_done and all(f.result() == i for i, f in enumerate(futures))
            rates.append(tasks / elapsed)
        result("tasks_unchunked", "tasks/s", rates, workers, n=tasks)

        # (c) chunked map of a trivial function; the sum checks every item came back.
        expected = map_items * (map_items - 1) // 2
        best = None
        for chunksize in (100, 1000, 10000):
            rates = []
            for _ in range(reps):
                t0 = clock()
                total = sum(executor.map(noop, range(map_items), chunksize=chunksize))
                elapsed = clock() - t0
                assert total == expected, (total, expected)
                rates.append(map_items / elapsed)
            result(f"map_chunk{chunksize}", "items/s", rates, workers, n=map_items)
            if best is None or statistics.median(rates) > statistics.median(best[1]):
                best = (chunksize, rates)
        result("map_chunk_best", "items/s", best[1], workers, n=map_items, chunksize=best[0])

        # (d) SCOOP's mapReduce seed, 10 ms of (sleeping) work per element, unchunked as
        # SCOOP ships one future per element. Ideal: K x 10 ms / workers.
        data = [[a] * a for a in range(scoop_k)]
        expected = sum(a * a for a in range(scoop_k))
        t0 = clock()
        total = functools.reduce(operator.add, executor.map(sum_after_10ms, data))
        elapsed = clock() - t0
        assert total == expected, (total, expected)
        ideal = scoop_k * 0.01 / workers
        result("scoop_10ms", "s", [elapsed], workers, n=scoop_k, ideal=f"{ideal:.4g}")
        result("scoop_10ms_vs_ideal", "x", [elapsed / ideal], workers, n=scoop_k)

    sleeps = []
    for _ in range(50):
        t0 = clock()
        time.sleep(0.01)
        sleeps.append((clock() - t0) * 1e3)
    result("sleep_10ms", "ms", sleeps, workers)


if __name__ == "__main__":
    main()
