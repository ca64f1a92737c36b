"""Debian packages and systemd integration (issue #20).

Builds the .debs with cpack from the build directory EDGEPAIR_BIN belongs to, unpacks them into a throwaway
dpkg root, checks what they hold, verifies the units with systemd-analyze, runs the installed binaries, and
checks the sd_notify protocol of the installed edge-e: READY=1 only once /ready is 200, watchdog pings that
keep coming, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness as h
import pair

PACKAGES = ("edgepair-e", "edgepair-c", "edgepair-tools")


class Built:
    """The packages of this run, built once for every test (cpack takes a while)."""

    dir: str | None = None
    debs: dict[str, str] = {}
    error: str | None = None


def build_packages() -> None:
    if Built.dir or Built.error:
        return
    build_dir = os.path.dirname(h.BIN)
    config = os.path.join(build_dir, "CPackConfig.cmake")
    missing = [b for b in ("edge-e", "edge-c", "edge-load") if not os.access(os.path.join(h.BIN, b), os.X_OK)]
    if not os.path.exists(config) or missing:
        Built.error = f"{build_dir}: no CPackConfig.cmake or not built: {missing}"
        return
    out = tempfile.mkdtemp(prefix="edgepair-debs-")
    # -B keeps cpack's staging tree and the .debs out of the build directory.
    rc, log = h.run_cmd(["cpack", "-G", "DEB", "--config", config, "-B", out], timeout=600, cwd=build_dir)
    if rc != 0:
        Built.error = f"cpack failed ({rc}):\n{log}"
        return
    for name in PACKAGES:
        found = glob.glob(os.path.join(out, f"{name}_*.deb"))
        if len(found) != 1:
            Built.error = f"expected one {name}_*.deb in {out}, found {found}:\n{log}"
            return
        Built.debs[name] = found[0]
    Built.dir = out


def tearDownModule() -> None:
    if Built.dir and not h.KEEP_TMP:
        shutil.rmtree(Built.dir, ignore_errors=True)


def deb_field(deb: str, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", deb, field], check=True, capture_output=True, text=True).stdout.strip()


def deb_files(deb: str) -> dict[str, str]:
    """path -> mode string, from the package's data archive."""
    out = subprocess.run(["dpkg-deb", "-c", deb], check=True, capture_output=True, text=True).stdout
    files = {}
    for line in out.splitlines():
        parts = line.split(None, 5)
        path = parts[5].split(" -> ")[0]
        files[path.removeprefix(".").rstrip("/") or "/"] = parts[0]
    return files


def deb_control(deb: str, member: str) -> str:
    r = subprocess.run(["dpkg-deb", "-I", deb, member], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


class NotifySocket:
    """The service manager's end of sd_notify: an abstract AF_UNIX datagram socket (no path length limit)."""

    def __init__(self) -> None:
        self.name = f"@edgepair-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.messages: list[tuple[float, str]] = []

    def close(self) -> None:
        self.sock.close()

    def collect(self, seconds: float) -> list[str]:
        """Every message that arrives within `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            m = self.recv(left)
            if m is not None:
                got.append(m)
        return got

    def recv(self, timeout: float) -> str | None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096).decode()
        except (socket.timeout, BlockingIOError):
            return None
        self.messages.append((time.monotonic(), data))
        return data

    def wait_for(self, line: str, timeout: float, proc: h.Proc) -> list[str]:
        """Messages up to and including the first holding `line` as one of its lines."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv(min(0.5, deadline - time.monotonic()))
            if m is None:
                proc._check_alive(f"waiting for {line} on NOTIFY_SOCKET")
                continue
            got.append(m)
            if line in m.split("\n"):
                return got
        raise AssertionError(f"no {line} within {timeout}s; got {got}\n{proc.tail()}")


class PackagesTest(h.TestCase):
    root: str

    def setUp(self) -> None:
        super().setUp()
        for tool in ("cpack", "dpkg", "dpkg-deb", "systemd-analyze"):
            self.require_tool(tool)
        build_packages()
        if Built.error:
            if h.CI:
                self.fail(Built.error)
            self.skipTest(Built.error)

    def install_root(self) -> str:
        """A throwaway dpkg root holding the three packages, unpacked (their maintainer scripts need adduser
        and systemd inside the root, which an empty root does not have: they are checked apart)."""
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "var/lib/dpkg/info"))
        os.makedirs(os.path.join(root, "var/lib/dpkg/updates"))
        open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
        rc, out = h.run_cmd(["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "--unpack",
                             *Built.debs.values()], timeout=120)
        self.assertEqual(rc, 0, out)
        return root

    def test_package_metadata_and_files(self) -> None:
        e, c, tools = (Built.debs[n] for n in PACKAGES)
        for name, deb in Built.debs.items():
            self.assertEqual(deb_field(deb, "Package"), name)
            self.assertEqual(deb_field(deb, "Version"), self.project_version())
            depends = deb_field(deb, "Depends")
            # Computed from the binaries: libc and the libraries they link.
            self.assertRegex(depends, r"\blibc6 \(>= ", name)
            self.assertRegex(depends, r"\blibssl3\b", name)
        for deb in (e, c):
            self.assertRegex(deb_field(deb, "Depends"), r"\blibsystemd0\b")
            self.assertRegex(deb_field(deb, "Depends"), r"\badduser\b")

        fe, fc, ft = deb_files(e), deb_files(c), deb_files(tools)
        for path in ("/usr/bin/edge-e", "/etc/edgepair/edge-e.yaml", "/etc/edgepair/link-users.txt",
                     "/lib/systemd/system/edgepair-e.service", "/usr/share/man/man8/edge-e.8.gz",
                     "/usr/share/doc/edgepair-e/copyright"):
            self.assertIn(path, fe)
        for path in ("/usr/bin/edge-c", "/etc/edgepair/edge-c.yaml", "/lib/systemd/system/edgepair-c.service",
                     "/usr/share/man/man8/edge-c.8.gz", "/usr/share/doc/edgepair-c/copyright"):
            self.assertIn(path, fc)
        for path in ("/usr/bin/edge-load", "/usr/share/man/man1/edge-load.1.gz"):
            self.assertIn(path, ft)
        # Each box gets only its own binary; nothing of the build or the test PKI leaks in.
        self.assertNotIn("/usr/bin/edge-c", fe)
        self.assertNotIn("/usr/bin/edge-e", fc)
        self.assertNotIn("/usr/bin/edge-load", fe | fc)
        for files in (fe, fc, ft):
            for path, mode in files.items():
                self.assertNotRegex(path, r"\.(key|crt|pem|a|o)$|/home/|/work/|/tmp/")
                self.assertFalse(mode.startswith("-") and mode[8] == "w", f"{path} is world-writable: {mode}")
        # Configurations may hold passwords: not world-readable.
        self.assertEqual(fc["/etc/edgepair/edge-c.yaml"][7:], "---")
        self.assertEqual(fe["/etc/edgepair/edge-e.yaml"][7:], "---")

        # /etc files are conffiles, so an upgrade keeps the administrator's edits.
        self.assertEqual(deb_control(e, "conffiles").split(),
                         ["/etc/edgepair/edge-e.yaml", "/etc/edgepair/link-users.txt"])
        self.assertEqual(deb_control(c, "conffiles").split(), ["/etc/edgepair/edge-c.yaml"])
        for deb, unit in ((e, "edgepair-e.service"), (c, "edgepair-c.service")):
            postinst = deb_control(deb, "postinst")
            self.assertIn("adduser --system", postinst)
            self.assertIn(unit, postinst)
            for script in ("postinst", "prerm", "postrm"):
                text = deb_control(deb, script)
                self.assertTrue(text.startswith("#!/bin/sh"), script)
                rc = subprocess.run(["sh", "-n"], input=text, text=True).returncode
                self.assertEqual(rc, 0, f"{deb} {script} is not valid sh")

    def test_installed_tree(self) -> None:
        root = self.install_root()
        rc, out = h.run_cmd(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f",
                             "${Package} ${Status}\n", *PACKAGES])
        self.assertEqual(rc, 0, out)
        for name in PACKAGES:
            self.assertIn(f"{name} install ok unpacked", out)
        rc, out = h.run_cmd(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Conffiles}\n",
                             "edgepair-e"])
        # Registered as conffiles ("newconffile" until configured, then their md5sum).
        self.assertEqual([l.split()[0] for l in out.splitlines() if l.strip()],
                         ["/etc/edgepair/edge-e.yaml", "/etc/edgepair/link-users.txt"], out)

        # The installed binaries run against the system's libraries, and report the packaged version.
        for binary, want in (("edge-e", "edge-e"), ("edge-c", "edge-c"), ("edge-load", "edge-load")):
            rc, out = h.run_cmd([f"{root}/usr/bin/{binary}", "--version"], timeout=10)
            self.assertEqual(rc, 0, out)
            self.assertIn(f"{want} {self.project_version()}", out)

        # The shipped link user database holds no user: the demo's published password must not link.
        # Unpacked, not configured: dpkg keeps a new conffile as .dpkg-new until the configure step.
        with open(f"{root}/etc/edgepair/link-users.txt.dpkg-new") as f:
            users = [l for l in f if l.strip() and not l.lstrip().startswith("#")]
        self.assertEqual(users, [])
        # The example configurations point at the packaged paths, not at the source tree's demo PKI.
        for box in ("e", "c"):
            with open(f"{root}/etc/edgepair/edge-{box}.yaml.dpkg-new") as f:
                text = f.read()
            self.assertNotIn("../", text)
            self.assertIn("/etc/edgepair/tls/", text)
        with open(f"{root}/etc/edgepair/edge-c.yaml.dpkg-new") as f:
            self.assertIn("state_file: /var/lib/edgepair-c/", f.read())

        # Man pages render without warnings.
        for page in ("man8/edge-e.8.gz", "man8/edge-c.8.gz", "man1/edge-load.1.gz"):
            r = subprocess.run(["man", "--warnings", "-l", f"{root}/usr/share/man/{page}"], capture_output=True,
                               text=True, env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.strip(), "", page)
            self.assertIn("SYNOPSIS", r.stdout)

    def test_units_verify(self) -> None:
        root = self.install_root()
        for box in ("e", "c"):
            unit = f"{root}/lib/systemd/system/edgepair-{box}.service"
            with open(unit) as f:
                text = f.read()
            for want in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                         "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "User=edgepair",
                         "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                         f"ExecStart=/usr/bin/edge-{box} -c /etc/edgepair/edge-{box}.yaml"):
                self.assertIn(want, text, unit)
            caps = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1)
            self.assertEqual(caps, "CAP_NET_BIND_SERVICE" if box == "e" else "")
            # systemd-analyze checks that ExecStart's binary exists and the man page in Documentation=
            # resolves: point both at the unpacked tree, in a copy.
            copy_dir = os.path.join(self.tmp, "units")
            os.makedirs(copy_dir, exist_ok=True)
            copy = os.path.join(copy_dir, f"edgepair-{box}.service")
            with open(copy, "w") as f:
                f.write(text.replace("/usr/bin/", f"{root}/usr/bin/").replace("/etc/edgepair/", f"{root}/etc/edgepair/"))
            r = subprocess.run(["systemd-analyze", "verify", "--man=yes", copy], capture_output=True, text=True,
                               env={**os.environ, "MANPATH": f"{root}/usr/share/man:"}, timeout=60)
            # Only this unit's own findings count (the host may have unrelated broken units).
            mine = [l for l in (r.stdout + r.stderr).splitlines() if f"edgepair-{box}" in l or copy in l]
            self.assertEqual(mine, [], r.stdout + r.stderr)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # And a unit with a mistake is caught, so the check above can fail.
            with open(copy, "w") as f:
                f.write(text.replace("/usr/bin/", f"{root}/nonexistent/"))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", copy], capture_output=True, text=True,
                               timeout=60)
            self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_sd_notify_readiness_watchdog_reload_stop(self) -> None:
        root = self.install_root()
        ports = pair.Ports()
        pki = h.pki()
        notify = NotifySocket()
        self.addCleanup(notify.close)
        watchdog_ms = 400
        e = self.start([f"{root}/usr/bin/edge-e", "-c", pair.edge_e_yaml(self, ports, pki)], name="edge-e",
                       env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": str(watchdog_ms * 1000)})
        e.wait_http(f"http://127.0.0.1:{ports.admin_e}/health", timeout=15)

        # No edge-c: not ready, so no READY=1, but the reason as status and pings every half period.
        early = notify.collect(2.0)
        st, _, body = h.http_get(f"http://127.0.0.1:{ports.admin_e}/ready")
        self.assertEqual(st, 503, body)
        lines = [l for m in early for l in m.split("\n")]
        self.assertNotIn("READY=1", lines)
        self.assertIn("STATUS=waiting: no traversal link to edge-c", lines)
        self.assertGreaterEqual(lines.count("WATCHDOG=1"), 3, early)

        self.start([f"{root}/usr/bin/edge-c", "-c", pair.edge_c_yaml(self, ports, pki)], name="edge-c")
        got = notify.wait_for("READY=1", timeout=20, proc=e)
        # READY=1 means what /ready means: it is 200 the moment READY=1 is read.
        st, _, body = h.http_get(f"http://127.0.0.1:{ports.admin_e}/ready")
        self.assertEqual(st, 200, body)
        self.assertNotIn("READY=1", [l for m in got[:-1] for l in m.split("\n")])

        # The pings go on once ready, at least every half period.
        notify.messages.clear()
        after = notify.collect(2.0)
        pings = [t for t, m in notify.messages if m == "WATCHDOG=1"]
        self.assertGreaterEqual(len(pings), 4, after)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), watchdog_ms / 1000, gaps)

        # Reload: RELOADING=1 (with the monotonic time newer systemd wants), then READY=1 again.
        e.send_signal(signal.SIGHUP)
        got = notify.wait_for("READY=1", timeout=10, proc=e)
        joined = "\n".join(got)
        self.assertRegex(joined, r"RELOADING=1\n(?:.*\n)*MONOTONIC_USEC=\d+")
        self.assertLess(joined.index("RELOADING=1"), joined.rindex("READY=1"))
        e.wait_log(r"SIGHUP: reloading")

        # Stop: STOPPING=1 as the drain begins.
        e.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", timeout=10, proc=e)
        self.assertEqual(e.wait(timeout=20), 0)

    def test_unreachable_notify_socket_is_reported_once(self) -> None:
        # A NOTIFY_SOCKET nobody listens on must not stop the service nor flood its log. edge-c here: the
        # protocol lives in the skeleton both edges share, and edge-e's side is covered above.
        root = self.install_root()
        ports = pair.Ports()
        c = self.start([f"{root}/usr/bin/edge-c", "-c", pair.edge_c_yaml(self, ports, h.pki())], name="edge-c",
                       env={"NOTIFY_SOCKET": f"@edgepair-nobody-{os.getpid()}", "WATCHDOG_USEC": "200000"})
        c.wait_http(f"http://127.0.0.1:{ports.admin_c}/health", timeout=15)
        c.wait_log(r"sd_notify.*failed")
        time.sleep(1.0)  # ten ticks and ten pings later
        self.assertEqual(len(re.findall(r"sd_notify.*failed", c.log_text())), 1, c.tail())
        self.assertTrue(c.alive())

    def project_version(self) -> str:
        with open(os.path.join(h.SRC, "CMakeLists.txt")) as f:
            return re.search(r"project\(edgepair VERSION ([0-9.]+)", f.read()).group(1)


if __name__ == "__main__":
    h.run_tests()
