#!/usr/bin/python3
"""The Python asyncio anchor of issue 11: the crawler shape of examples/coro_crawler.cpp
and bench/coro_bench.cpp ("crawl"), in asyncio, on this machine.

    async def fetch(i):
        async with sem:                       # at most INFLIGHT requests in flight
            await asyncio.sleep(LATENCY)      # the simulated request
            return i * 2
    results = await asyncio.gather(*(fetch(i) for i in range(REQUESTS)))

Run with Debian's /usr/bin/python3 (not a pyenv shim): scripts/compare-asyncio.sh does.
Prints `RESULT name=asyncio_crawl_<shape> unit=req/s value=<median> ...` lines, the format
of bench/bench_util.hpp, one per shape:
    --requests N (100000)  --inflight K (1000)  --latency-us L (1000; 0: sleep(0), a yield)
    --reps R (3)
"""
import argparse
import asyncio
import statistics
import sys
import time


async def crawl(requests, inflight, latency):
    sem = asyncio.Semaphore(inflight)
    state = {"now": 0, "peak": 0}

    async def fetch(i):
        async with sem:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(latency)
            state["now"] -= 1
            return i * 2

    results = await asyncio.gather(*(fetch(i) for i in range(requests)))
    return results, state["peak"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--inflight", type=int, default=1000)
    ap.add_argument("--latency-us", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    rates = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        results, peak = asyncio.run(crawl(a.requests, a.inflight, a.latency_us / 1e6))
        seconds = time.perf_counter() - t0
        if len(results) != a.requests or any(r != 2 * i for i, r in enumerate(results)) or peak > a.inflight:
            print("asyncio_crawler: wrong answer", file=sys.stderr)
            return 1
        rates.append(a.requests / seconds)
    shape = f"{a.requests}req_{a.inflight}inflight_{a.latency_us}us"
    print(f"RESULT name=asyncio_crawl_{shape} unit=req/s value={statistics.median(rates):.4g} reps={len(rates)} "
          f"min={min(rates):.4g} max={max(rates):.4g} python={sys.version.split()[0]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
