"""Import time: ``import kclient`` (and the entry points users start from) vs the peers.

``python -m benchmarks.import_bench [--runs N] [--quick] [--cold] [--json PATH]``

Each statement runs as ``python -c STATEMENT`` in a fresh interpreter, ``--runs`` times
(default 15), the statements taking turns so that a slow spell on a shared machine hits
all of them alike. The figure is the median wall time minus the median of ``python -c
pass`` (interpreter start-up), so it is the import alone. The table also gives each
kclient statement's time divided by each peer's (below 1x: kclient imports faster).

Bytecode: installed packages come with compiled ``.pyc`` files, so by default every
statement runs once first with bytecode written to a temporary ``PYTHONPYCACHEPREFIX``
(the source tree is not touched) and is then timed with that cache.
``--cold`` measures without any cached bytecode for this checkout instead
(``PYTHONDONTWRITEBYTECODE=1``, as in a read-only source checkout): kclient is then
compiled on every run while the peers still use the ``.pyc`` files written when they were
installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks._harness import REPO_ROOT, Result, markdown_table, save_json


@dataclass(frozen=True)
class Target:
    client: str
    statement: str  # also the row's label
    needs: str  # top-level package that must be importable, else the row is skipped


TARGETS = (
    Target("kclient", "import kclient", "kclient"),
    Target("kclient", "import kclient.cli", "kclient"),  # the ``kclient`` command
    Target("kclient", "from kclient import AsyncProducer", "kclient"),
    Target("kclient", "from kclient import Producer", "kclient"),  # sync facade: all clients
    Target("aiokafka", "import aiokafka", "aiokafka"),
    Target("kafka-python", "import kafka", "kafka"),
    Target("confluent-kafka", "import confluent_kafka", "confluent_kafka"),
)
_BASELINE = "pass"


def _environment(cache_dir: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if cache_dir is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def _run_once(statement: str, env: Mapping[str, str]) -> float:
    # No timeout: with one, subprocess polls the child with growing sleeps, which rounds
    # every figure up to the next poll (it made ``pass`` and ``import kclient`` both 32 ms).
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, cwd=REPO_ROOT, env=dict(env))
    return time.perf_counter() - started


def measure(
    statements: Sequence[str], runs: int, env: Mapping[str, str], warm: bool
) -> dict[str, list[float]]:
    """Wall seconds per run of each statement, the statements taking turns."""
    if warm:
        for statement in statements:
            _run_once(statement, env)
    times: dict[str, list[float]] = {s: [] for s in statements}
    for _ in range(runs):
        for statement in statements:
            times[statement].append(_run_once(statement, env))
    return times


def time_ratio_table(results: Sequence[Result]) -> str | None:
    """One row per kclient statement, one column per peer: kclient seconds / peer seconds."""
    mine = [r for r in results if r.client == "kclient"]
    peers = [r for r in results if r.client != "kclient" and r.seconds]
    if not mine or not peers:
        return None
    rows = [
        [m.variant, *(f"{(m.seconds or 0) / (p.seconds or 1):.2f}x" for p in peers)] for m in mine
    ]
    return markdown_table(["kclient \\ peer", *(p.variant for p in peers)], rows)


def _available(target: Target) -> bool:
    return importlib.util.find_spec(target.needs) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per statement")
    parser.add_argument("--quick", action="store_true", help="5 runs (CI smoke)")
    parser.add_argument("--cold", action="store_true", help="no cached bytecode for kclient")
    parser.add_argument("--json", metavar="PATH", default=None, help="also save results here")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    targets = [t for t in TARGETS if _available(t)]
    skipped = [t.statement for t in TARGETS if not _available(t)]

    with tempfile.TemporaryDirectory(prefix="import-bench-pyc-") as cache_dir:
        env = _environment(None if args.cold else cache_dir)
        statements = [_BASELINE, *(t.statement for t in targets)]
        times = measure(statements, runs, env, warm=not args.cold)

    startup = statistics.median(times[_BASELINE])
    results = []
    for target in targets:
        wall = statistics.median(times[target.statement])
        results.append(
            Result(
                client=target.client,
                variant=target.statement,
                seconds=max(wall - startup, 0.0),
                extra={"wall_s": wall, "min_wall_s": min(times[target.statement])},
            )
        )
    mode = "no cached bytecode (--cold)" if args.cold else "bytecode cached"
    print(
        f"Python {sys.version.split()[0]}, {runs} runs each, {mode}; interpreter start-up "
        f"{startup * 1000:.0f} ms (subtracted)"
    )
    rows = [[r.variant, r.client, f"{(r.seconds or 0) * 1000:.0f}"] for r in results]
    print(markdown_table(["statement", "client", "import ms (median)"], rows))
    table = time_ratio_table(results)
    if table:
        print("\nkclient import time / peer import time (below 1.00x: kclient is faster):")
        print(table)
    for variant in skipped:
        print(f"skipped (not installed): {variant}")
    if args.json:
        params = {"runs": runs, "cold": args.cold, "startup_s": startup}
        save_json(args.json, "import", params, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
