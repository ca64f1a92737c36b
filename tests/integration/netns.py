"""Network namespaces for the cluster integration tests (issue #17): one address per peer, in its own namespace.

Net.create(["e1", "e2", "c1", ...]) makes a hub namespace holding a bridge, and one namespace per host joined to
the bridge by a veth pair (eth0 inside the host's namespace, one /24 address; lo up). The names carry the test
process's pid (ept<pid>-<host>), and the subnet 10.217.<pid-derived>.0/24, so parallel ctest runs never share a
name; nothing is added to the root namespace.

    net = netns.Net.create(["e1", "e2", "client"], fallback={"e1": "127.0.17.11", ...})
    net.addr("e1")                  # 10.217.N.2 (its address, reachable from every other host)
    net.add_addr("client")          # one more address on that host (a second client source, an alias)
    net.wrap("e1", argv)            # ["ip", "netns", "exec", "ept<pid>-e1", *argv]
    net.start("e1", argv, name=..)  # a harness.Proc running in e1's namespace
    with net.inside("e1"): ...      # sockets and subprocesses made here belong to e1's namespace
    net.local("e1")                 # where e1's loopback-only listeners (admin) are, from inside("e1")
    net.free_port("e1")             # a port free on e1's address, probed in e1's namespace
    net.destroy()

inside() moves only the calling thread (setns(2) with CLONE_NEWNET on that thread, through ctypes: the system
Python is 3.11, os.setns is 3.12+), and moves it back on exit. A socket stays in the namespace it was made in;
threads and subprocesses started from inside it start there too. harness.free_port(addr) and
harness.wait_udp_bound(addr, ...) probe in the namespace that holds addr (registered here).

Teardown: destroy() deletes every namespace; it also runs when the test process ends, including on
SIGTERM/SIGINT/SIGHUP (harness.add_teardown), and a later Net.create removes namespaces left by test processes
that no longer exist (a SIGKILLed run).

Fallback: when `ip netns add` fails (not root, no iproute2) or EDGEPAIR_NO_NETNS=1, Net keeps the same API on
loopback addresses of the root namespace (the `fallback` map, else 127.0.17.<n>): wrap() and inside() change
nothing, local(host) is the host's own address. One line says so on stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess
import sys
import threading
from typing import Iterator, Mapping, Sequence

import harness as h

CLONE_NEWNET = 0x40000000
PREFIX = "ept"
_libc = ctypes.CDLL(None, use_errno=True)
_nets: "set[Net]" = set()
_nets_lock = threading.Lock()
_told = False


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns into {what}: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """The calling thread in the network namespace at path (/run/netns/NAME) for the block, then back."""
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target, path)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(back, "the thread's previous namespace")
    finally:
        os.close(back)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise h.HarnessError(f"ip {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def _sweep_stale() -> None:
    """Namespaces of ours whose test process is gone (it was SIGKILLed before its teardown ran)."""
    r = _ip("netns", "list", check=False)
    for line in r.stdout.splitlines():
        m = re.match(rf"^({PREFIX}(\d+)-\S+)", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            _ip("netns", "del", m.group(1), check=False)


def _destroy_all() -> None:
    with _nets_lock:
        nets = list(_nets)
    for n in nets:
        n.destroy()


h.add_teardown(_destroy_all)


class Net:
    """Hosts, each at its own address: in namespaces of their own (ns_mode) or on loopback (fallback)."""

    def __init__(self, ns_mode: bool, addrs: dict[str, str], names: dict[str, str], subnet: str,
                 fallback_extra: list[str]):
        self.ns_mode = ns_mode
        self._addrs = {host: [a] for host, a in addrs.items()}
        self._names = names  # host -> namespace name (ns_mode), plus "hub"
        self._subnet = subnet
        self._next_extra = 100
        self._fallback_extra = list(fallback_extra)
        self._lock = threading.Lock()
        self._destroyed = False

    # ---- making and removing ---------------------------------------------------------------------------

    @classmethod
    def create(cls, hosts: Sequence[str], fallback: Mapping[str, str] | None = None,
               fallback_extra: Sequence[str] = ()) -> "Net":
        """hosts: names (letters, digits, '-'); fallback: their loopback addresses when namespaces are not
        available (default 127.0.17.<1+i>); fallback_extra: the addresses add_addr() hands out then, in order."""
        if len(set(hosts)) != len(hosts) or not all(re.fullmatch(r"[a-z0-9-]{1,12}", x) for x in hosts):
            raise h.HarnessError(f"host names must be distinct [a-z0-9-]{{1,12}}: {hosts}")
        fb = {x: (fallback or {}).get(x) or f"127.0.17.{1 + i}" for i, x in enumerate(hosts)}
        why = ""
        if os.environ.get("EDGEPAIR_NO_NETNS", "") not in ("", "0"):
            why = "EDGEPAIR_NO_NETNS is set"
        pid = os.getpid()
        hub = f"{PREFIX}{pid}-hub"
        if not why:
            _sweep_stale()
            with _nets_lock:
                taken = any(n.ns_mode and not n._destroyed for n in _nets)
            if taken:
                raise h.HarnessError("one Net at a time per process (destroy the previous one first)")
            r = _ip("netns", "add", hub, check=False)
            if r.returncode != 0:
                why = f"`ip netns add` failed: {r.stderr.strip() or r.returncode}"
        if why:
            global _told
            if not _told:  # once per process, not per test
                _told = True
                print(f"netns: {why}: hosts on loopback addresses of the root namespace instead", file=sys.stderr,
                      flush=True)
            net = cls(False, fb, {}, "", list(fallback_extra))
            for a in fb.values():
                h.set_probe_namespace(a, None)
            with _nets_lock:
                _nets.add(net)
            return net

        subnet = f"10.217.{pid % 250 + 1}"
        names = {"hub": hub}
        addrs: dict[str, str] = {}
        net = cls(True, addrs, names, subnet, [])
        with _nets_lock:
            _nets.add(net)
        try:
            _ip("-n", hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", hub, "link", "set", "br0", "up")
            for i, host in enumerate(hosts):
                ns = f"{PREFIX}{pid}-{host}"
                _ip("netns", "add", ns)
                names[host] = ns
                addr = f"{subnet}.{2 + i}"
                _ip("-n", hub, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("-n", hub, "link", "set", f"v{i}", "master", "br0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                net._addrs[host] = [addr]
                h.set_probe_namespace(addr, lambda ns=ns: in_netns(f"/run/netns/{ns}"))
        except BaseException:
            net.destroy()
            raise
        return net

    def destroy(self) -> None:
        """Deletes the namespaces (idempotent). Processes still inside keep theirs alive until they exit."""
        with self._lock:
            if self._destroyed:
                return
            self._destroyed = True
        for addrs in self._addrs.values():
            for a in addrs:
                h.set_probe_namespace(a, None)
        if self.ns_mode:
            for host, ns in list(self._names.items()):
                if host != "hub":
                    _ip("netns", "del", ns, check=False)
            if "hub" in self._names:
                _ip("netns", "del", self._names["hub"], check=False)
        with _nets_lock:
            _nets.discard(self)

    def namespaces(self) -> list[str]:
        return list(self._names.values())

    # ---- addresses -------------------------------------------------------------------------------------

    def hosts(self) -> list[str]:
        return list(self._addrs)

    def addr(self, host: str) -> str:
        return self._addrs[host][0]

    def addrs(self, host: str) -> list[str]:
        return list(self._addrs[host])

    def add_addr(self, host: str) -> str:
        """One more address on host (a second client source, a second server name)."""
        with self._lock:
            if not self.ns_mode:
                if not self._fallback_extra:
                    raise h.HarnessError("no fallback address left for add_addr")
                a = self._fallback_extra.pop(0)
                self._addrs[host].append(a)
                return a
            if self._next_extra > 250:
                raise h.HarnessError("no address left in the test subnet")
            a = f"{self._subnet}.{self._next_extra}"
            self._next_extra += 1
        _ip("-n", self._names[host], "addr", "add", f"{a}/24", "dev", "eth0")
        self._addrs[host].append(a)
        ns = self._names[host]
        h.set_probe_namespace(a, lambda ns=ns: in_netns(f"/run/netns/{ns}"))
        return a

    def host_of(self, addr: str) -> str:
        return next(host for host, addrs in self._addrs.items() if addr in addrs)

    def local(self, host: str) -> str:
        """The address of host's loopback-only listeners (admin ports), as seen from inside(host)."""
        return "127.0.0.1" if self.ns_mode else self.addr(host)

    def free_port(self, host: str, udp: bool = False) -> int:
        return h.free_port(self.addr(host), udp=udp)

    # ---- running things there --------------------------------------------------------------------------

    def wrap(self, host: str, argv: Sequence) -> list[str]:
        argv = [str(a) for a in argv]
        return ["ip", "netns", "exec", self._names[host], *argv] if self.ns_mode else argv

    def start(self, host: str, argv: Sequence, name: str | None = None, **kw) -> h.Proc:
        """A harness.Proc in host's namespace (`ip netns exec` execs the program: the pid is the program's)."""
        return h.Proc(self.wrap(host, argv), name=name or os.path.basename(str(argv[0])), **kw)

    def inside(self, host: str):
        """Context manager: the calling thread in host's namespace for the block (fallback: nothing)."""
        if not self.ns_mode:
            return contextlib.nullcontext()
        return in_netns(f"/run/netns/{self._names[host]}")

    def describe(self) -> str:
        mode = "namespaces " + self._names.get("hub", "") if self.ns_mode else "loopback (no namespaces)"
        return f"{mode}: " + ", ".join(f"{host} {' '.join(a)}" for host, a in self._addrs.items())


class InNamespaces:
    """Mixin for a harness.TestCase whose processes all run in the namespaces of self.net: start() puts a
    process on a host ("inside" by default, where the fixtures live) and stop_all_then_net() (register it with
    addCleanup) stops them before the namespaces they run in are removed."""

    def stop_all_then_net(self) -> None:
        for p in reversed(self._procs):
            p.stop(timeout=5)
        self.net.destroy()

    def start(self, args, host: str = "inside", **kw):
        return self.net.start(host, args, **kw)
