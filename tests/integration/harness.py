"""Shared helpers for edgepair integration tests (Python 3.11, standard library only).

Tests are run by ctest as ``/usr/bin/python3 tests/integration/test_X.py`` with

- ``EDGEPAIR_BIN``: the directory holding edge-e, edge-c (default: <repo>/build/bin);
- ``EDGEPAIR_SRC``: the repo root (default: two levels above this file).

A typical test::

    import harness as h

    class LinkTest(h.TestCase):
        def test_link_up(self):
            pki = h.pki()
            port = h.free_port()
            cfg = self.write_yaml("edge-e.yaml", '''
                listen: 127.0.0.1:{port}
                cert: {pki}/edge-e.crt
            ''', port=port, pki=pki)
            e = self.start([h.bin_path("edge-e"), "-c", cfg], name="edge-e")
            e.wait_port("127.0.0.1", port)

    if __name__ == "__main__":
        h.run_tests()

Every process started through ``Proc`` is killed when the test ends, at interpreter exit and on
SIGTERM/SIGINT/SIGHUP; when started from the main thread it also dies if the test process is SIGKILLed
(PR_SET_PDEATHSIG). Its stdout and stderr go to ``<test tmp dir>/<name>.log``; when a test fails, the tail of
every log it made is printed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import http.client
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import urllib.parse
from typing import Callable, ContextManager, Iterable, Mapping, Sequence

__all__ = [
    "SRC", "BIN", "CI", "HarnessError", "bin_path", "free_port", "free_ports", "free_port_range", "pki",
    "Proc", "wait_port", "wait_udp_bound", "wait_http", "write_yaml", "http_get", "http_request",
    "tls_connect", "s_client", "run_cmd", "TestCase", "run_tests", "current_dir", "add_teardown",
    "set_probe_namespace",
]

SRC: str = os.path.abspath(os.environ.get("EDGEPAIR_SRC")
                           or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN: str = os.path.abspath(os.environ.get("EDGEPAIR_BIN") or os.path.join(SRC, "build", "bin"))
CI: bool = os.environ.get("CI", "").lower() in ("1", "true", "yes")
KEEP_TMP: bool = os.environ.get("EDGEPAIR_KEEP_TMP", "") not in ("", "0")
LOG_TAIL_LINES = int(os.environ.get("EDGEPAIR_LOG_TAIL", "200"))


class HarnessError(AssertionError):
    """A harness wait or check failed (an AssertionError, so unittest reports a failure)."""


def bin_path(name: str) -> str:
    """Path of a project binary (edge-e, edge-c, edge-load) in EDGEPAIR_BIN."""
    return os.path.join(BIN, name)


# --------------------------------------------------------------------------------------------------------------
# temp dirs

_session_dir: str | None = None
_current_dir: str | None = None  # set by TestCase for the running test


def _session_tmp() -> str:
    global _session_dir
    if _session_dir is None:
        _session_dir = tempfile.mkdtemp(prefix="edgepair-session-")
        if not KEEP_TMP:
            atexit.register(shutil.rmtree, _session_dir, True)
    return _session_dir


def current_dir() -> str:
    """The running test's temp dir (or a per-process session dir outside a TestCase)."""
    return _current_dir or _session_tmp()


# --------------------------------------------------------------------------------------------------------------
# ports

_handed_out: set[tuple[str, int]] = set()
# Addresses that live in another network namespace (tests/integration/netns.py): a probe of such an address
# binds from inside that namespace, whose port space is its own.
_probe_ns: dict[str, Callable[[], ContextManager]] = {}


def set_probe_namespace(addr: str, enter: Callable[[], ContextManager] | None) -> None:
    """free_port(addr) / wait_udp_bound(addr) probe inside the namespace enter() moves the thread to
    (None: the thread's own namespace again)."""
    if enter is None:
        _probe_ns.pop(addr, None)
    else:
        _probe_ns[addr] = enter


def _can_bind(host: str, port: int, kind: int) -> bool:
    enter = _probe_ns.get(host)
    with enter() if enter else contextlib.nullcontext():
        return _can_bind_here(host, port, kind)


def _can_bind_here(host: str, port: int, kind: int) -> bool:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, kind)
    try:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports are drawn below the kernel's ephemeral range: a port bind(0) handed out there may be taken, before the
# server binds it, by an outgoing connection of another test running in parallel (seen as dnsmasq's "Address
# already in use"). Below it only another test's explicit bind can collide, and each checks with _can_bind.
_PORT_LO = 10000
_PORT_HI = max(_PORT_LO + 2000, _ephemeral_low())
_rnd = random.Random(os.getpid() ^ int(time.time() * 1e6))


# Ports handed out are also claimed across the test processes ctest runs in parallel: a probe only shows that a
# port is free now, and two processes drawing the same free port both bind it later, one of them in vain (seen in
# CI: "admin.listen: cannot bind ...: Address already in use"). A claim is a file named after the address and
# port, holding the claiming process's pid; a claim of a process that no longer runs is taken over.
_CLAIM_DIR = os.path.join(tempfile.gettempdir(), "edgepair-port-claims")
_claimed: list[str] = []


def _claim(host: str, port: int) -> bool:
    os.makedirs(_CLAIM_DIR, exist_ok=True)
    path = os.path.join(_CLAIM_DIR, f"{host.replace(':', '_')}-{port}")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner == os.getpid() or (owner and os.path.exists(f"/proc/{owner}")):
                return False
            try:
                os.unlink(path)  # its process is gone (or it never wrote its pid): take it over
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _claimed.append(path)
        return True
    return False


def _release_claims() -> None:
    while _claimed:
        try:
            os.unlink(_claimed.pop())
        except OSError:
            pass


atexit.register(_release_claims)


def free_port(host: str = "127.0.0.1", udp: bool = False) -> int:
    """A port that is free on host (TCP; also UDP when udp=True). Never the same port twice in one process, nor
    in two test processes running at once (claims under the temp directory)."""
    for _ in range(500):
        port = _rnd.randrange(_PORT_LO, _PORT_HI)
        if (host, port) in _handed_out:
            continue
        if not _can_bind(host, port, socket.SOCK_STREAM):
            continue
        if udp and not _can_bind(host, port, socket.SOCK_DGRAM):
            continue
        if not _claim(host, port):
            continue
        _handed_out.add((host, port))
        return port
    raise HarnessError(f"no free port on {host}")


def free_ports(n: int, host: str = "127.0.0.1", udp: bool = False) -> list[int]:
    """n distinct free ports."""
    return [free_port(host, udp) for _ in range(n)]


def free_port_range(n: int, host: str = "127.0.0.1", lo: int = _PORT_LO, hi: int = _PORT_HI) -> int:
    """First port of n consecutive ports free for both TCP and UDP on host (e.g. a media port range)."""
    for _ in range(500):
        base = _rnd.randrange(lo, hi - n)
        if base % 2:
            base += 1
        ports = range(base, base + n)
        if any((host, p) in _handed_out for p in ports):
            continue
        if all(_can_bind(host, p, socket.SOCK_DGRAM) and _can_bind(host, p, socket.SOCK_STREAM) for p in ports):
            if not all(_claim(host, p) for p in ports):
                continue  # the ports claimed so far stay claimed by this process until it ends: harmless
            _handed_out.update((host, p) for p in ports)
            return base
    raise HarnessError(f"no range of {n} free ports on {host}")


# --------------------------------------------------------------------------------------------------------------
# PKI

_pki_dir: str | None = None


def pki(rsa: bool = False) -> str:
    """Directory of the test PKI (certs/mkpki.sh output; file list in certs/README.md).

    Made once per build tree in $EDGEPAIR_BIN/../pki (or $EDGEPAIR_PKI if set) under an fcntl lock, so parallel
    ctest jobs share one PKI. mkpki.sh is idempotent, so later calls only check its stamp.
    """
    global _pki_dir
    if _pki_dir is not None and (not rsa or os.path.exists(os.path.join(_pki_dir, "edge-e-rsa.crt"))):
        return _pki_dir
    out = os.path.abspath(os.environ.get("EDGEPAIR_PKI") or os.path.join(BIN, "..", "pki"))
    try:
        os.makedirs(os.path.dirname(out), exist_ok=True)
    except OSError as e:
        raise HarnessError(f"cannot create {os.path.dirname(out)}: {e}") from e
    script = os.path.join(SRC, "certs", "mkpki.sh")
    args = ["bash", script] + (["--rsa"] if rsa else []) + [out]
    with open(out + ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)
    if r.returncode != 0:
        raise HarnessError(f"certs/mkpki.sh failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    _pki_dir = out
    return out


# --------------------------------------------------------------------------------------------------------------
# processes

_live: "set[Proc]" = set()
_live_lock = threading.Lock()
_PR_SET_PDEATHSIG = 1

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _pdeathsig() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Proc:
    """A started process whose stdout+stderr go to a log file.

    Proc(args, name=None, env=None, cwd=None, logdir=None, replace_env=False)
      args: argv (str items; non-str are converted); name: log name (default: basename of args[0]);
      env: extra variables (merged over os.environ unless replace_env); logdir: default the test's temp dir.
    The process runs in its own session/process group; stop() and the exit handlers kill the whole group.
    """

    def __init__(self, args: Sequence, name: str | None = None, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, logdir: str | None = None, replace_env: bool = False):
        self.args = [str(a) for a in args]
        self.name = name or os.path.basename(self.args[0])
        logdir = logdir or current_dir()
        os.makedirs(logdir, exist_ok=True)
        base = os.path.join(logdir, re.sub(r"[^A-Za-z0-9_.-]", "_", self.name))
        path, i = base + ".log", 1
        while os.path.exists(path):
            path, i = f"{base}.{i}.log", i + 1
        self.log_path = path
        full_env = ({} if replace_env else dict(os.environ))
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        self._log = open(path, "ab", buffering=0)
        self._log.write(f"# {time.strftime('%H:%M:%S')} start: {' '.join(self.args)}\n".encode())
        main_thread = threading.current_thread() is threading.main_thread()
        try:
            self.popen = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                          stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                          start_new_session=True,
                                          preexec_fn=_pdeathsig if main_thread else None)
        except OSError as e:
            self._log.close()
            raise HarnessError(f"cannot start {self.args[0]}: {e}") from e
        self.pid = self.popen.pid
        with _live_lock:
            _live.add(self)
        if _current_test is not None:
            _current_test._procs.append(self)

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} rc={self.popen.returncode}>"

    def __enter__(self) -> "Proc":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # state
    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; returns the exit code (negative: killed by that signal). Raises HarnessError on timeout."""
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"{self.name} still running after {timeout}s\n{self.tail()}") from e
        self._forget()
        return rc

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text().splitlines()
        head = f"----- {self.name} (pid {self.pid}, rc {self.popen.poll()}) log {self.log_path}"
        if len(text) > lines:
            head += f" (last {lines} of {len(text)} lines)"
        return "\n".join([head] + text[-lines:] + ["----- end " + self.name])

    def _check_alive(self, what: str) -> None:
        if self.popen.poll() is not None:
            raise HarnessError(f"{self.name} exited with {self.popen.returncode} while {what}\n{self.tail()}")

    # waits that fail early if the process dies
    def wait_port(self, host: str, port: int, timeout: float = 10) -> None:
        wait_port(host, port, timeout, proc=self)

    def wait_http(self, url: str, timeout: float = 10, expect_status: int | None = 200, **kw):
        return wait_http(url, timeout, expect_status, proc=self, **kw)

    def wait_log(self, pattern: str, timeout: float = 10, start: int = 0) -> re.Match:
        """Wait until the regex pattern appears in the log (from character offset start); returns the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text(), start)
            if m:
                return m
            if self.popen.poll() is not None:
                m = rx.search(self.log_text(), start)
                if m:
                    return m
                self._check_alive(f"waiting for /{pattern}/ in its log")
            if time.monotonic() > deadline:
                raise HarnessError(f"/{pattern}/ not in {self.name}'s log after {timeout}s\n{self.tail()}")
            time.sleep(0.05)

    # control
    def send_signal(self, sig: int) -> None:
        """Send sig to the process itself (not its group): SIGHUP reload, SIGTERM drain, ..."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def _kill_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 10, sig: int = signal.SIGTERM) -> int:
        """SIGTERM (or sig), wait up to timeout, then SIGKILL; also kills what is left in its process group.
        Returns the exit code (negative: the signal that ended it)."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._log_note(f"did not exit {timeout}s after signal {sig}: SIGKILL")
                self._kill_group(signal.SIGKILL)
                self.popen.wait(10)
        self._kill_group(signal.SIGKILL)  # children left behind (workers, helpers)
        self._forget()
        return self.popen.returncode

    def _log_note(self, msg: str) -> None:
        try:
            self._log.write(f"# harness: {msg}\n".encode())
        except (OSError, ValueError):
            pass

    def _forget(self) -> None:
        with _live_lock:
            _live.discard(self)
        try:
            self._log.close()
        except OSError:
            pass


_teardowns: list[Callable[[], None]] = []


def add_teardown(fn: Callable[[], None]) -> None:
    """fn() runs after every process is killed: at interpreter exit and on SIGTERM/SIGINT/SIGHUP (e.g. removing
    network namespaces). It must be idempotent: it may run more than once."""
    _teardowns.append(fn)


add_teardown(_release_claims)


def _kill_all() -> None:
    _kill_procs()
    for fn in list(_teardowns):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            print(f"harness: teardown {getattr(fn, '__name__', fn)}: {e}", file=sys.stderr)


def _kill_procs() -> None:
    with _live_lock:
        procs = list(_live)
    for p in procs:
        try:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 3
    for p in procs:
        try:
            p.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        p._kill_group(signal.SIGKILL)
        try:
            p.popen.wait(2)
        except subprocess.TimeoutExpired:
            pass
        p._forget()


def _on_signal(signum, frame):  # noqa: ARG001
    _kill_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_kill_all)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_s, _on_signal)
    except (ValueError, OSError):  # not the main thread
        pass


def run_cmd(args: Sequence, timeout: float = 60, env: Mapping[str, str] | None = None,
            input: str | bytes | None = None, cwd: str | None = None) -> tuple[int, str]:
    """Run a command to completion; returns (exit code, stdout+stderr as text). Raises HarnessError on timeout."""
    full_env = dict(os.environ)
    full_env.update({k: str(v) for k, v in (env or {}).items()})
    if isinstance(input, str):
        input = input.encode()
    try:
        r = subprocess.run([str(a) for a in args], input=input if input is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"timed out after {timeout}s: {' '.join(map(str, args))}\n"
                           f"{(e.stdout or b'').decode('utf-8', 'replace')}") from e
    return r.returncode, r.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------------------------
# waiting

def wait_port(host: str, port: int, timeout: float = 10, proc: Proc | None = None) -> None:
    """Wait until a TCP connect to host:port succeeds (fails early if proc exits)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if proc is not None:
            proc._check_alive(f"waiting for {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError as e:
            last = e
        if time.monotonic() > deadline:
            msg = f"{host}:{port} not accepting after {timeout}s ({last})"
            raise HarnessError(msg + ("\n" + proc.tail() if proc else ""))
        time.sleep(0.05)


def wait_udp_bound(host: str, port: int, timeout: float = 10, proc: Proc | None = None) -> None:
    """Wait until something has bound UDP host:port (we can no longer bind it)."""
    deadline = time.monotonic() + timeout
    while _can_bind(host, port, socket.SOCK_DGRAM):
        if proc is not None:
            proc._check_alive(f"waiting for UDP {host}:{port}")
        if time.monotonic() > deadline:
            raise HarnessError(f"UDP {host}:{port} not bound after {timeout}s" + ("\n" + proc.tail() if proc else ""))
        time.sleep(0.05)


def start_dnsmasq(start: Callable[..., "Proc"], host: str, argv: Callable[[int], Sequence], tries: int = 3,
                  name: str = "dnsmasq") -> tuple["Proc", int]:
    """dnsmasq on a free UDP+TCP port of host, bound and serving: (proc, port). start is the test's own start
    (it may wrap the command, e.g. into a network namespace); argv(port) is dnsmasq's command line. A port can be
    taken between the claim and dnsmasq's bind (seen in CI twice as "failed to create listening socket ...:
    Address already in use", before any edgepair code ran): then dnsmasq exits at once, and a fresh port is tried,
    up to `tries` times. Any other failure is raised as it is."""
    for attempt in range(tries):
        port = free_port(host, udp=True)
        p = start(list(argv(port)), name=name if attempt == 0 else f"{name}-retry{attempt}")
        try:
            wait_udp_bound(host, port, timeout=10, proc=p)
            # The port looks bound as soon as anyone holds it, the process that took it included: dnsmasq must
            # also still run a moment later (it gives up on a taken port within milliseconds of starting).
            time.sleep(0.3)
            p._check_alive(f"starting on {host}:{port}")
            return p, port
        except HarnessError as e:
            p.stop()
            if attempt + 1 == tries or "Address already in use" not in str(e):
                raise
    raise HarnessError("unreachable")


def wait_http(url: str, timeout: float = 10, expect_status: int | None = 200, proc: Proc | None = None, **kw):
    """Poll url until it answers with expect_status (None: any status). Returns (status, headers, body).
    Extra keyword arguments go to http_request (cafile, connect_to, ...)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if proc is not None:
            proc._check_alive(f"waiting for {url}")
        try:
            st, hd, body = http_get(url, timeout=min(5.0, max(0.5, deadline - time.monotonic())), **kw)
            if expect_status is None or st == expect_status:
                return st, hd, body
            last = f"status {st}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            msg = f"{url} did not answer {expect_status} within {timeout}s (last: {last})"
            raise HarnessError(msg + ("\n" + proc.tail() if proc else ""))
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------------------------
# files

def write_yaml(path: str, text: str, **fmt) -> str:
    """Write text (dedented; str.format(**fmt) applied only when fmt is given) to path; returns path.
    A relative path is taken inside the current test's temp dir."""
    if not os.path.isabs(path):
        path = os.path.join(current_dir(), path)
    text = textwrap.dedent(text)
    if fmt:
        text = text.format(**fmt)
    if text.startswith("\n"):
        text = text[1:]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


# --------------------------------------------------------------------------------------------------------------
# HTTP and TLS clients

def _client_context(cafile: str | None, certfile: str | None = None, keyfile: str | None = None,
                    check_hostname: bool = True, alpn: Iterable[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def http_request(url: str, method: str = "GET", body: bytes | str | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 10, cafile: str | None = None,
                 certfile: str | None = None, keyfile: str | None = None, check_hostname: bool = True,
                 connect_to: tuple[str, int] | None = None, context: ssl.SSLContext | None = None):
    """One HTTP/1.1 request; returns (status, headers, body bytes). Never raises on 4xx/5xx, never follows
    redirects, ignores proxy variables. headers is an http.client.HTTPMessage (case-insensitive .get()).

    connect_to=(host, port) dials that address instead of the URL's, keeping the URL's host for the Host header
    and TLS SNI/verification (like curl --connect-to). For https, cafile=None means no verification."""
    u = urllib.parse.urlsplit(url)
    https = u.scheme == "https"
    host = u.hostname or "127.0.0.1"
    port = u.port or (443 if https else 80)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    dial = connect_to or (host, port)
    if isinstance(body, str):
        body = body.encode()
    sock = socket.create_connection(dial, timeout=timeout)
    try:
        if https:
            ctx = context or _client_context(cafile, certfile, keyfile, check_hostname)
            # An IP literal is verified against IP SANs and sent without SNI (as the ssl module does).
            sock = ctx.wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        hdrs = {"Connection": "close"}
        hdrs.update(headers or {})
        if "Host" not in hdrs and "host" not in hdrs:
            default = 443 if https else 80
            hdrs["Host"] = (f"[{host}]" if ":" in host else host) + ("" if port == default else f":{port}")
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        try:
            sock.close()
        except OSError:
            pass


def http_get(url: str, timeout: float = 10, **kw):
    """GET url; returns (status, headers, body bytes) without raising on 4xx/5xx. See http_request for kw."""
    return http_request(url, "GET", timeout=timeout, **kw)


def _sans_from_der(der: bytes) -> list[tuple[str, str]]:
    """SANs of a DER certificate without verifying it (uses the ssl module's test decoder via a temp PEM)."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
        f.write(ssl.DER_cert_to_PEM_cert(der))
        name = f.name
    try:
        info = ssl._ssl._test_decode_cert(name)  # type: ignore[attr-defined]
    finally:
        os.unlink(name)
    return list(info.get("subjectAltName", ()))


def tls_connect(host: str, port: int, servername: str | None, cafile: str | None, certfile: str | None = None,
                keyfile: str | None = None, alpn: Iterable[str] | None = None, timeout: float = 10,
                check_hostname: bool = True):
    """TLS client connection; returns (ssl socket, peer SANs as [('DNS', name) | ('IP Address', addr), ...]).

    servername: SNI and the name verified (check_hostname=False to verify the chain only); cafile=None: no
    verification at all. ALPN result: sock.selected_alpn_protocol(). Raises ssl.SSLError /
    ssl.SSLCertVerificationError on handshake or verification failure. The caller closes the socket."""
    ctx = _client_context(cafile, certfile, keyfile, check_hostname and servername is not None, alpn)
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=servername)
    except BaseException:
        raw.close()
        raise
    der = s.getpeercert(binary_form=True)
    sans = _sans_from_der(der) if der else []
    return s, sans


def s_client(host: str, port: int, servername: str | None, cafile: str | None,
             extra_args: Sequence[str] = (), timeout: float = 15, input: bytes | str | None = None):
    """openssl s_client -connect host:port -servername N -CAfile F -verify_return_error -brief [extra_args],
    stdin closed (or fed input); returns (exit code, stdout+stderr)."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    args = ["openssl", "s_client", "-connect", target]
    if servername:
        args += ["-servername", servername]
    else:
        args += ["-noservername"]
    if cafile:
        args += ["-CAfile", cafile]
    args += ["-verify_return_error", "-brief"] + [str(a) for a in extra_args]
    if isinstance(input, str):
        input = input.encode()
    try:
        r = subprocess.run(args, input=input if input is not None else b"", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or b"").decode("utf-8", "replace") + f"\n[harness: s_client timed out after {timeout}s]"
    return r.returncode, r.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------------------------
# unittest glue

_current_test: "TestCase | None" = None


class TestCase(unittest.TestCase):
    """unittest.TestCase with a per-test temp dir (self.tmp) and process bookkeeping.

    self.start(args, **kw) -> Proc (stopped at the end of the test); self.write_yaml(name, text, **fmt);
    self.require_binary(name) / self.require_tool(name): skip locally, fail under CI=true.
    On failure the tail of every log of the test's processes is printed and self.tmp is kept.
    """

    maxDiff = None

    def setUp(self) -> None:
        global _current_dir, _current_test
        super().setUp()
        tid = re.sub(r"[^A-Za-z0-9_.-]", "_", self.id().split(".", 1)[-1])[:80]
        self.tmp = tempfile.mkdtemp(prefix=f"edgepair-{tid}-")
        self._procs: list[Proc] = []
        _current_dir, _current_test = self.tmp, self
        self.addCleanup(self._cleanup_procs)

    def _cleanup_procs(self) -> None:
        global _current_dir, _current_test
        for p in reversed(self._procs):
            try:
                p.stop(timeout=5)
            except Exception as e:  # noqa: BLE001
                print(f"harness: stopping {p.name}: {e}", file=sys.stderr)
        _current_dir, _current_test = None, None

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self._procs = []
        self.tmp = None
        super().run(result)
        failed = len(result.failures) + len(result.errors) > before
        if failed:
            # The reason first: CI keeps only the head of a long output, and the process logs below can push
            # unittest's own report (printed at the end of the run) out of it.
            _, why = (result.failures + result.errors)[-1]
            print(f"harness: {self.id()} failed:\n{why.rstrip()[-3000:]}", file=sys.stderr)
            print("harness: processes: " + ", ".join(f"{p.name} pid {p.pid} rc {p.popen.poll()}"
                                                    for p in self._procs), file=sys.stderr)
            for p in self._procs:
                print(p.tail(), file=sys.stderr)
            if self.tmp:
                print(f"harness: files of {self.id()} kept in {self.tmp}", file=sys.stderr)
        elif self.tmp and not KEEP_TMP:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return result

    # helpers
    def start(self, args: Sequence, **kw) -> Proc:
        return Proc(args, **kw)

    def write_yaml(self, name: str, text: str, **fmt) -> str:
        return write_yaml(name if os.path.isabs(name) else os.path.join(self.tmp, name), text, **fmt)

    def pki(self) -> str:
        return pki()

    def require_binary(self, name: str) -> str:
        p = bin_path(name)
        if not os.access(p, os.X_OK):
            self._missing(f"{p} not built")
        return p

    def require_tool(self, name: str) -> str:
        p = shutil.which(name) or next((d + "/" + name for d in ("/usr/sbin", "/sbin")
                                        if os.access(d + "/" + name, os.X_OK)), None)
        if not p:
            self._missing(f"{name} not installed (tools/test.sh installs it)")
        return p

    def _missing(self, msg: str) -> None:
        if CI:
            self.fail(msg)
        self.skipTest(msg)


class _CountingResult(unittest.TextTestResult):
    pass


def run_tests(argv: Sequence[str] | None = None) -> None:
    """Run the calling module's tests (unittest, verbose) and exit: 0 if all passed, 1 otherwise.
    Prints a closing line 'N passed, N failed, N skipped'."""
    main = sys.modules["__main__"]
    argv = list(argv if argv is not None else sys.argv)
    loader = unittest.TestLoader()
    names = [a for a in argv[1:] if not a.startswith("-")]
    suite = loader.loadTestsFromNames(names, main) if names else loader.loadTestsFromModule(main)
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stderr, resultclass=_CountingResult)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    sys.stderr.flush()
    _kill_all()
    sys.exit(0 if res.wasSuccessful() and res.testsRun > 0 else 1)
