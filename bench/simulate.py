"""Seeded fault simulation (VOPR-style) of deals, bank callbacks, payouts, worker crashes and clock skew through
the real services; see app/tools/vopr/vopr.py for what is real and what is simulated.

    .venv/bin/python bench/simulate.py --seeds 1000 [--start 0] [--jobs 4]
    .venv/bin/python bench/simulate.py --seed 17 --verbose      # replay one seed exactly, with its trace
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.tools.vopr.vopr import SeedResult, replay_command, run_seed


def _quiet() -> None:
    logging.getLogger("cunguan").setLevel(logging.CRITICAL)


def _run(seed: int) -> SeedResult:
    _quiet()
    result = run_seed(seed)
    result.trace = result.trace if not result.ok else []
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run (from --start)")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--seed", type=int, help="run exactly this seed (replay)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--verbose", action="store_true", help="print the trace of every seed run")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.start, args.start + args.seeds))
    started = time.perf_counter()
    failed: list[SeedResult] = []
    totals: dict[str, int] = {}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = pool.map(_run, seeds, chunksize=4)
            for result in results:
                _collect(result, failed, totals, args.verbose)
    else:
        _quiet()
        for seed in seeds:
            result = run_seed(seed)
            _collect(result, failed, totals, args.verbose)
    elapsed = time.perf_counter() - started
    print(f"{len(seeds)} seeds, {len(seeds) - len(failed)} passed, {len(failed)} failed, {elapsed:.1f} s")
    print("totals: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())))
    for result in failed:
        print(f"FAILED seed {result.seed}: replay with  {replay_command(result.seed)}")
    return 1 if failed else 0


def _collect(result: SeedResult, failed: list[SeedResult], totals: dict[str, int], verbose: bool) -> None:
    for key, value in result.stats.items():
        totals[key] = totals.get(key, 0) + value
    if verbose:
        print(f"--- seed {result.seed} ({result.seconds:.2f} s) ---")
        print("\n".join(result.trace))
    if not result.ok:
        failed.append(result)
        print(f"seed {result.seed} FAILED ({result.seconds:.2f} s):")
        for problem in result.problems:
            print(f"  - {problem}")
        print(f"  replay: {replay_command(result.seed)}")


if __name__ == "__main__":
    raise SystemExit(main())
