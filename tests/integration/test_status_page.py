"""Issue 20: the status page and alarms, as a person sees them in a browser.

A pair with one discovered Unified CM cluster (tools/fixtures/ucm_fixture.py) and one publisher that does not
answer; each admin port's page is loaded in headless Chromium (Debian `chromium`) and its DOM read back:
the traversal link up, discovered nodes and zones, the discovery alarm. Then edge-c is killed and the
link-down alarm appears on edge-e's page, in /alarms and in /metrics, and clears when edge-c returns. The
browser's console is watched for errors and Content-Security-Policy violations (a control page proves the
watcher sees them). Admin credentials: refused without, accepted with, and a config that exposes the admin
port without them does not validate."""

from __future__ import annotations

import base64
import html.parser
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
from test_foundation import make_cert  # noqa: E402

FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
DEMO_JSON = os.path.join(h.SRC, "tools", "fixtures", "cluster-demo.json")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
AXL_USER, AXL_PASSWORD = "axladmin", "Axl-Passw0rd"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Console output Chromium writes with --enable-logging=stderr that means the page is broken.
CONSOLE_PROBLEM = re.compile(r"Content Security Policy|Refused to|Uncaught|CONSOLE.*(error|ERROR)|net::ERR_")


class Page(html.parser.HTMLParser):
    """The parts of the rendered DOM a person reads: each section's text and its tables' rows."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, list[list[str]]] = {}
        self.section_text: dict[str, str] = {}
        self.row_classes: dict[str, list[str]] = {}
        self.stylesheets: list[str] = []
        self.scripts = 0
        self.refresh = None
        self.title = ""
        self._sec = None
        self._row = None
        self._cell = None
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._sec = a.get("id")
            self.sections.setdefault(self._sec, [])
            self.section_text.setdefault(self._sec, "")
            self.row_classes.setdefault(self._sec, [])
        elif tag == "tr" and self._sec:
            self._row = []
            self.row_classes[self._sec].append(a.get("class") or "")
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a.get("href"))
        elif tag == "script":
            self.scripts += 1
        elif tag == "meta" and (a.get("http-equiv") or "").lower() == "refresh":
            self.refresh = a.get("content")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._sec:
            self.sections[self._sec].append(self._row)
            self._row = None
        elif tag == "section":
            self._sec = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._sec:
            self.section_text[self._sec] += data
        if self._in_title:
            self.title += data

    def rows(self, section: str) -> list[list[str]]:
        return self.sections.get(section, [])

    def has_row(self, section: str, *cells: str) -> bool:
        return any(all(c in r for c in cells) for r in self.rows(section))


class StatusPageTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        if not os.path.exists(CHROMIUM):
            self._missing("chromium is not installed (tools/packages.txt)")
        self.pki_dir = h.pki()
        self.ports = pair.Ports()
        self.fixture_port = h.free_port("127.0.1.1")
        self.dead_port = h.free_port("127.0.1.9")

    # ---- browser ------------------------------------------------------------------------------------------

    def browse(self, url: str) -> tuple[str, str]:
        """Loads `url` in a fresh headless Chromium; the serialised DOM and the browser's stderr."""
        profile = os.path.join(self.tmp, f"chromium-{time.monotonic_ns()}")
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                "--virtual-time-budget=2000", "--dump-dom", url]
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=90)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        self.assertEqual(p.returncode, 0, f"chromium failed on {url}: {p.stderr[-3000:]}")
        return p.stdout, p.stderr

    def console_problems(self, stderr: str) -> list[str]:
        return [line for line in stderr.splitlines() if CONSOLE_PROBLEM.search(line)]

    def page(self, port: int) -> Page:
        dom, err = self.browse(f"http://127.0.0.1:{port}/")
        self.assertEqual(self.console_problems(err), [], f"console problems on :{port}")
        pg = Page(dom)
        self.assertIn("status", pg.title, dom[:500])
        return pg

    # ---- pair -------------------------------------------------------------------------------------------

    def start_fixture(self) -> h.Proc:
        p = self.start([PY, FIXTURE, "--cluster", DEMO_JSON, "--node", "cucm1.example.com", "--listen",
                        f"127.0.1.1:{self.fixture_port}", "--cert", f"{self.pki_dir}/tomcat-cucm1.crt", "--key",
                        f"{self.pki_dir}/tomcat-cucm1.key"], name="fixture-cucm1")
        p.wait_log(r"^READY$", timeout=15)
        return p

    def edge_c_config(self) -> str:
        # Addresses, not names: no DNS needed; tls_verify off because an IP is not in the tomcat certificate.
        disc = "\n".join([
            "unified_cm:",
            f'  - {{address: 127.0.1.1, port: {self.fixture_port}, username: {AXL_USER}, '
            f'password: "{AXL_PASSWORD}", tls_verify: false}}',
            f'  - {{address: 127.0.1.9, port: {self.dead_port}, username: {AXL_USER}, '
            f'password: "{AXL_PASSWORD}", tls_verify: false}}',
        ])
        return pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=disc)

    def get_json(self, port: int, path: str) -> dict:
        st, _, body = h.http_get(f"http://127.0.0.1:{port}{path}", timeout=5)
        self.assertEqual(st, 200, body)
        return json.loads(body.decode())

    def alarm(self, port: int, alarm_id: str) -> dict | None:
        for a in self.get_json(port, "/alarms")["alarms"]:
            if a["id"] == alarm_id:
                return a
        return None

    def wait_for(self, what: str, pred, timeout: float = 30):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(0.25)
        self.fail(f"timed out after {timeout}s waiting for {what}")

    def edge_e_with_admin(self, old: str, new: str) -> str:
        path = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w") as f:
            f.write(text.replace(old, new))
        return path

    # ---- tests ------------------------------------------------------------------------------------------

    def test_console_watcher_sees_csp_violations(self) -> None:
        """The control: a page that breaks its own CSP must be reported, else the checks below prove nothing."""
        bad = os.path.join(self.tmp, "bad.html")
        with open(bad, "w") as f:
            f.write("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                    "content=\"default-src 'none'\"><title>bad</title></head><body>"
                    "<script>document.title='ran'</script><p style=\"color:red\">x</p></body></html>")
        dom, err = self.browse("file://" + bad)
        self.assertNotIn("<title>ran</title>", dom)
        self.assertNotEqual(self.console_problems(err), [], err[-3000:])

    def test_page_shows_link_nodes_and_alarms(self) -> None:
        self.start_fixture()
        pair.start_edge_e(self, pair.edge_e_yaml(self, self.ports, self.pki_dir), self.ports)
        cfg_c = self.edge_c_config()
        edge_c = pair.start_edge_c(self, cfg_c, self.ports)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=30)

        def discovered():
            d = self.get_json(self.ports.admin_c, "/status")["discovery"]
            return d if all(p["state"] in ("ok", "error") for p in d["publishers"]) and d["nodes"] else None

        disc = self.wait_for("discovery", discovered)
        zone = disc["zones"][0]["name"]
        # The dead publisher raises an alarm of its own (and only it).
        self.wait_for("discovery alarm", lambda: self.alarm(self.ports.admin_c, f"discovery.failing:127.0.1.9:"
                                                                                 f"{self.dead_port}"))
        self.assertIsNone(self.alarm(self.ports.admin_c, f"discovery.failing:127.0.1.1:{self.fixture_port}"))
        unreachable = self.alarm(self.ports.admin_c, "node.unreachable:127.0.1.9")
        self.assertIsNotNone(unreachable)
        self.assertEqual(unreachable["state"], "raised")
        self.assertIsNone(self.alarm(self.ports.admin_c, "node.unreachable:127.0.1.1"))

        # edge-c's page: the link up, the nodes with their zones and search rules, the alarm, the allow list.
        pg = self.page(self.ports.admin_c)
        self.assertEqual(pg.stylesheets, ["/status.css"])
        self.assertEqual(pg.scripts, 0)
        self.assertEqual(pg.refresh, "5")
        self.assertTrue(any(r[3:4] == ["up"] for r in pg.rows("links")), pg.rows("links"))
        for node in ("cucm1.example.com", "cucm2.example.com"):
            self.assertTrue(pg.has_row("discovery", node), f"{node} not on the page: {pg.rows('discovery')}")
        self.assertTrue(pg.has_row("discovery", zone), pg.rows("discovery"))
        self.assertIn("Search rules", pg.section_text["discovery"])
        self.assertTrue(pg.has_row("alarms", f"discovery.failing:127.0.1.9:{self.dead_port}", "major", "raised"),
                        pg.rows("alarms"))
        self.assertTrue(pg.has_row("allowlist", "automatic"), pg.rows("allowlist"))
        self.assertTrue(pg.has_row("domains", "example.com"), pg.rows("domains"))
        self.assertIn("Media sessions", pg.section_text["sessions"])
        st, hdrs, css = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status.css", timeout=5)
        self.assertEqual(st, 200)

        # edge-e's page: its link from edge-c up, the nodes edge-c pushed, no alarm, one client on 8443.
        client = socket.create_connection(("127.0.0.1", self.ports.https), timeout=5)
        self.addCleanup(client.close)
        self.wait_for("the https session", lambda: self.get_json(self.ports.admin_e, "/status")
                      ["sessions_by_protocol"]["https"] == 1)
        pg = self.page(self.ports.admin_e)
        self.assertTrue(pg.has_row("sessions", "Client sessions: https", "1"), pg.rows("sessions"))
        self.assertTrue(pg.has_row("sessions", "Client sessions: xmpp", "0"), pg.rows("sessions"))
        self.assertTrue(any(r[3:4] == ["up"] for r in pg.rows("links")), pg.rows("links"))
        self.assertIn("cucm1.example.com", pg.section_text["discovery"])
        self.assertIn("No alarms.", pg.section_text["alarms"])

        # edge-c dies: edge-e raises link.down, shown on the page, in /alarms and in /metrics.
        edge_c.stop(sig=signal.SIGKILL)
        a = self.wait_for("link.down on edge-e",
                          lambda: (x := self.alarm(self.ports.admin_e, "link.down")) and x["state"] == "raised" and x)
        self.assertEqual(a["severity"], "critical")
        self.assertEqual(a["count"], 1)
        self.assertIn("no traversal link", a["detail"])
        st, _, metrics = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/metrics", timeout=5)
        self.assertIn('edgepair_alarms_active{id="link.down",severity="critical"} 1', metrics.decode())
        self.assertEqual([x["id"] for x in self.get_json(self.ports.admin_e, "/status")["alarms"]], ["link.down"])
        pg = self.page(self.ports.admin_e)
        self.assertTrue(pg.has_row("alarms", "link.down", "critical", "raised"), pg.rows("alarms"))
        self.assertIn("alarm critical", pg.row_classes["alarms"])
        self.assertFalse(any(r[3:4] == ["up"] for r in pg.rows("links")), pg.rows("links"))

        # edge-c returns: the alarm clears (kept as history), the gauge drops to 0.
        pair.start_edge_c(self, cfg_c, self.ports)
        self.wait_for("link.down cleared",
                      lambda: (x := self.alarm(self.ports.admin_e, "link.down")) and x["state"] == "cleared")
        st, _, metrics = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/metrics", timeout=5)
        self.assertIn('edgepair_alarms_active{id="link.down",severity="critical"} 0', metrics.decode())
        self.assertEqual(self.get_json(self.ports.admin_e, "/alarms")["active"], 0)
        pg = self.page(self.ports.admin_e)
        self.assertTrue(pg.has_row("alarms", "link.down", "cleared"), pg.rows("alarms"))
        self.assertTrue(any(r[3:4] == ["up"] for r in pg.rows("links")), pg.rows("links"))

    def test_security_headers(self) -> None:
        pair.start_edge_e(self, pair.edge_e_yaml(self, self.ports, self.pki_dir), self.ports)
        for path in ("/", "/status.html", "/status.css", "/alarms", "/status"):
            st, hdrs, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}{path}", timeout=5)
            self.assertEqual(st, 200, path)
            self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", path)
            csp = hdrs.get("content-security-policy", "")
            self.assertIn("default-src 'none'", csp, path)
            self.assertIn("style-src 'self'", csp, path)
            self.assertNotIn("unsafe", csp, path)
        st, hdrs, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/", timeout=5)
        self.assertTrue(hdrs.get("content-type", "").startswith("text/html"))

    def test_admin_credentials(self) -> None:
        # Beyond loopback without credentials: the configuration does not validate, naming the keys.
        loopback = f"admin: {{listen: 127.0.0.1:{self.ports.admin_e}}}"
        exposed = self.edge_e_with_admin(loopback, f"admin: {{listen: 0.0.0.0:{self.ports.admin_e}}}")
        rc, out = h.run_cmd([self.require_binary("edge-e"), "-c", exposed, "--check"], timeout=30)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("admin.listen", out)
        self.assertIn("admin.password_hash", out)

        rc, line = h.run_cmd([h.bin_path("edge-e"), "--hash-password", "ops"], input="s3cret-admin\n", timeout=30)
        self.assertEqual(rc, 0, line)
        hashed = line.strip().splitlines()[-1].split(":", 1)[1]
        # The same exposed address with credentials validates (checked only: the test binds loopback).
        rc, out = h.run_cmd([self.require_binary("edge-e"), "-c", self.edge_e_with_admin(
            loopback, f'admin: {{listen: 0.0.0.0:{self.ports.admin_e}, username: ops, password_hash: "{hashed}"}}'),
            "--check"], timeout=30)
        self.assertEqual(rc, 0, out)
        cfg = self.edge_e_with_admin(
            loopback, f'admin: {{listen: 127.0.0.1:{self.ports.admin_e}, username: ops, password_hash: "{hashed}"}}')
        rc, out = h.run_cmd([self.require_binary("edge-e"), "-c", cfg, "--check"], timeout=30)
        self.assertEqual(rc, 0, out)
        pair.start_edge_e(self, cfg, self.ports)  # /health needs no credentials
        base = f"http://127.0.0.1:{self.ports.admin_e}"
        for path in ("/", "/status", "/alarms", "/metrics", "/ready"):
            st, hdrs, _ = h.http_get(base + path, timeout=5)
            self.assertEqual(st, 401, path)
            self.assertIn("Basic", hdrs.get("www-authenticate", ""))
            bad = "Basic " + base64.b64encode(b"ops:wrong").decode()
            st, _, _ = h.http_get(base + path, timeout=5, headers={"Authorization": bad})
            self.assertEqual(st, 401, path)
        good = "Basic " + base64.b64encode(b"ops:s3cret-admin").decode()
        time.sleep(1.1)  # the wrong passwords above used this second's password checks
        st, _, body = h.http_get(base + "/alarms", timeout=5, headers={"Authorization": good})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body.decode())["role"], "edge-e")
        st, _, body = h.http_get(base + "/", timeout=5, headers={"Authorization": good})
        self.assertEqual(st, 200)
        self.assertIn(b"<section id=\"alarms\">", body)
        # A flood of wrong passwords is refused (at most a few PBKDF2 runs a second) while the main loop keeps
        # answering, and the credentials already accepted still pass.
        bad = "Basic " + base64.b64encode(b"ops:guess").decode()
        for _ in range(30):
            st, _, _ = h.http_get(base + "/status", timeout=5, headers={"Authorization": bad})
            self.assertEqual(st, 401)
        st, _, _ = h.http_get(base + "/health", timeout=2)
        self.assertEqual(st, 200)
        st, _, _ = h.http_get(base + "/status", timeout=5, headers={"Authorization": good})
        self.assertEqual(st, 200)

    def test_reload_port_conflict_and_certificate_alarms(self) -> None:
        # A certificate two days from expiry (the SNI one) alarms from the start; the others do not.
        crt, key = make_cert(self, self.pki_dir, "short", "short.example.com", "DNS:short.example.com")
        cfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, sni_cert=crt, sni_key=key)
        e = pair.start_edge_e(self, cfg, self.ports)
        base = self.ports.admin_e
        certs = self.wait_for("certificate alarm", lambda: [a for a in self.get_json(base, "/alarms")["alarms"]
                                                              if a["id"].startswith("cert.expiring:")])
        self.assertEqual(len(certs), 1, certs)
        self.assertIn("CN=short.example.com", certs[0]["id"])
        self.assertEqual(certs[0]["severity"], "major")
        self.assertIn("tls.certificates[0].cert", certs[0]["detail"])
        self.assertRegex(certs[0]["detail"], r"expires in [12] days")

        with open(cfg) as f:
            good = f.read()
        # A reload that does not validate is refused and alarms; the next good one clears it.
        with open(cfg, "w") as f:
            f.write(good.replace("workers: 2", "workers: lots"))
        e.send_signal(signal.SIGHUP)
        a = self.wait_for("config.reload_refused", lambda: self.alarm(base, "config.reload_refused"))
        self.assertEqual(a["state"], "raised")
        self.assertIn("workers", a["detail"])

        # The HTTPS listener moved to a port someone else holds: a port conflict, shown until it moves back.
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        try:
            with open(cfg, "w") as f:
                f.write(good.replace(f"https: {{listen: 127.0.0.1:{self.ports.https}}}",
                                     f"https: {{listen: 127.0.0.1:{taken}}}"))
            e.send_signal(signal.SIGHUP)
            conflict = self.wait_for("port.conflict", lambda: (x := self.alarm(base, f"port.conflict:127.0.0.1:{taken}"))
                                     and x["state"] == "raised" and x)
            self.assertEqual(conflict["severity"], "critical")
            self.assertEqual(self.alarm(base, "config.reload_refused")["state"], "cleared")
            pg = self.page(base)
            self.assertTrue(pg.has_row("alarms", f"port.conflict:127.0.0.1:{taken}", "critical", "raised"),
                            pg.rows("alarms"))
            self.assertTrue(pg.has_row("alarms", "config.reload_refused", "cleared"), pg.rows("alarms"))
        finally:
            holder.close()
        with open(cfg, "w") as f:
            f.write(good)
        e.send_signal(signal.SIGHUP)
        self.wait_for("port.conflict cleared",
                      lambda: self.alarm(base, f"port.conflict:127.0.0.1:{taken}")["state"] == "cleared")
        # The certificate alarm is re-checked on reload and stays.
        self.assertEqual(self.alarm(base, certs[0]["id"])["state"], "raised")


if __name__ == "__main__":
    h.run_tests()
