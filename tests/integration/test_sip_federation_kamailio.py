#!/usr/bin/python3
"""SIP federation through the pair between two Kamailio domains (issue #19).

Topology (loopback, free ports):

  inside:  Kamailio "imp" as the IM&P routing node of example.com (TCP): registrar for alice, record-routes,
           sends requests for other domains to edge-c's federation.sip listener
  pair:    edge-c -> link -> edge-e; edge-e finds partner.test by `_sips._tcp.partner.test` (dnsmasq)
  outside: Kamailio "partner" for partner.test: registrar for bob (TCP), TLS listener with partner.test's
           certificate (the SRV target), sends requests for other domains to edge-e's federation listener over TLS

alice and bob are small Python UAs (one TCP connection each to their own Kamailio; their Contacts are that
connection's local address, where nothing listens, so only their own Kamailio can reach them). Both directions
play a MESSAGE and a presence SUBSCRIBE whose NOTIFY comes back inside the dialog, then a refresh (re-SUBSCRIBE
inside the dialog) and its NOTIFY.

What proves the in-dialog requests crossed the pair rather than going from one Kamailio to the other directly:
each Kamailio logs the next hop loose_route() chose for an in-dialog request, and it must be the pair (imp:
edge-c's listener; partner: edge-e's listener); the route set the UAs learn names both edges; and edge-e's
edgepair_sip_federation_requests_total counts every NOTIFY and refresh in its direction.

Interoperability: Kamailio is a third-party SIP implementation at both ends, so the SIP-level exchange (Record-Route,
loose routing, transaction matching over two hops of TLS/TCP) is interop with Kamailio. How Cisco IM and Presence
or a Cisco Expressway partner route federated dialogs is not proven here (docs/PROTOCOL-FACTS.md).

The SRV fail-over test gives `_sips._tcp.partner.test` two targets, the preferred one with nothing listening: the
MESSAGE still reaches bob through the second, and edge-e counts the failed target.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
from sipenv import KAM_MODULES, SipMsg, take_sip_message  # noqa: E402

SIP_DIR = os.path.join(h.SRC, "tests", "integration", "sip")
TIMEOUT = 15.0


def uris(values: list[str]) -> list[str]:
    """The <...> entries of Record-Route / Route fields, in order (a field may hold several)."""
    out = []
    for v in values:
        out += re.findall(r"<[^>]*>", v)
    return out


class UA:
    """A SIP UA over one TCP connection to its own Kamailio; bounded waits only."""

    def __init__(self, port: int, user: str, domain: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.user, self.domain = user, domain
        self.aor = f"sip:{user}@{domain}"
        self.local = "%s:%d" % self.sock.getsockname()[:2]
        self.contact = f"<sip:{user}@{self.local};transport=tcp>"
        self.tag = uuid.uuid4().hex[:10]
        self.buf = b""
        self.cseq = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, start: str, headers: list[str], body: str = "", ctype: str = ""):
        lines = [start] + headers
        if body:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n" + body).encode())

    def recv(self, timeout: float = TIMEOUT) -> SipMsg:
        deadline = time.monotonic() + timeout
        while True:
            msg, self.buf = take_sip_message(self.buf)
            if msg:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise h.HarnessError(f"{self.user}: no SIP message within {timeout}s ({self.buf[:300]!r})")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise h.HarnessError(f"{self.user}: connection closed")
            self.buf += data

    def request(self, method: str, ruri: str, to: str, call_id: str, routes: list[str] | None = None,
                from_tag: str | None = None, extra: list[str] | None = None, body: str = "",
                ctype: str = "") -> None:
        self.cseq += 1
        hdrs = [f"Via: SIP/2.0/TCP {self.local};branch=z9hG4bK{uuid.uuid4().hex};rport", "Max-Forwards: 70"]
        hdrs += [f"Route: {r}" for r in routes or []]
        hdrs += [f"From: <{self.aor}>;tag={from_tag or self.tag}", f"To: {to}", f"Call-ID: {call_id}",
                 f"CSeq: {self.cseq} {method}", f"Contact: {self.contact}"]
        self.send(f"{method} {ruri} SIP/2.0", hdrs + (extra or []), body, ctype)

    def final(self, method: str) -> SipMsg:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            m = self.recv(max(0.1, deadline - time.monotonic()))
            if not m.is_request and m.method == method and m.status >= 200:
                return m
            if m.is_request:
                raise h.HarnessError(f"{self.user}: unexpected {m.start} while waiting for the {method} answer")
        raise h.HarnessError(f"{self.user}: no final answer to {method}")

    def expect(self, method: str) -> SipMsg:
        m = self.recv()
        while not m.is_request:  # a late provisional answer
            m = self.recv()
        if m.method != method:
            raise h.HarnessError(f"{self.user}: expected {method}, got {m.start}")
        return m

    def respond(self, req: SipMsg, status: int, reason: str, to_tag: str | None = None):
        hdrs = [f"Via: {v}" for v in req.all("Via")] + [f"Record-Route: {v}" for v in req.all("Record-Route")]
        to = req.get("To")
        if to_tag and "tag=" not in to:
            to += f";tag={to_tag}"
        hdrs += [f"From: {req.get('From')}", f"To: {to}", f"Call-ID: {req.get('Call-ID')}",
                 f"CSeq: {req.get('CSeq')}", f"Contact: {self.contact}"]
        if req.method == "SUBSCRIBE":
            hdrs.append(f"Expires: {req.get('Expires', '3600')}")
        self.send(f"SIP/2.0 {status} {reason}", hdrs)

    def register(self) -> None:
        self.request("REGISTER", f"sip:{self.domain}", f"<{self.aor}>", uuid.uuid4().hex,
                     extra=["Expires: 600"])
        r = self.final("REGISTER")
        if r.status != 200:
            raise h.HarnessError(f"{self.user}: REGISTER answered {r.start}")


def contact_uri(m: SipMsg) -> str:
    c = m.get("Contact")
    g = re.search(r"<([^>]*)>", c)
    return g.group(1) if g else c


def tag_of(v: str) -> str:
    g = re.search(r";\s*tag=([^;>\s]+)", v)
    return g.group(1) if g else ""


class SipFederationKamailioTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        for tool in ("kamailio", "dnsmasq"):
            self.require_tool(tool)
        self.pki_dir = h.pki()
        self.ports = pair.Ports()
        self.fed_port, self.inside_port, self.imp_port, self.ptcp_port, self.ptls_port = h.free_ports(5)
        self.dns_port = h.free_port(udp=True)
        self.uas: list[UA] = []

    def tearDown(self) -> None:
        for u in self.uas:
            u.close()
        super().tearDown()

    # ---- topology -------------------------------------------------------------------------------------------

    def start_kamailio(self, name: str, domain: str, port: int, nexthop: str, tls_port: int | None = None):
        with open(os.path.join(SIP_DIR, "kamailio-fed.cfg.in")) as f:
            cfg = f.read()
        tls = tlsload = tlsparam = ""
        if tls_port:
            tls_cfg = os.path.join(self.tmp, f"{name}-tls.cfg")
            with open(os.path.join(SIP_DIR, "tls.cfg.in")) as f:
                text = f.read().replace("@CERT@", f"{self.pki_dir}/xmpp-partner-chain.crt")
            with open(tls_cfg, "w") as f:
                f.write(text.replace("@KEY@", f"{self.pki_dir}/xmpp-partner.key"))
            tls = f"enable_tls=yes\nlisten=tls:127.0.0.1:{tls_port}"
            tlsload = 'loadmodule "tls.so"'
            tlsparam = f'modparam("tls", "config", "{tls_cfg}")'
        for k, v in {"@NAME@": name, "@DOMAIN@": domain, "@PORT@": str(port), "@NEXTHOP@": nexthop,
                     "@MPATH@": KAM_MODULES, "@TLS@": tls, "@TLSLOAD@": tlsload, "@TLSPARAM@": tlsparam}.items():
            cfg = cfg.replace(k, v)
        path = os.path.join(self.tmp, f"{name}.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        rundir = os.path.join(self.tmp, name)
        os.makedirs(rundir, exist_ok=True)
        k = self.start(["kamailio", "-DD", "-E", "-f", path, "-Y", rundir, "-w", rundir], name=name)
        h.wait_port("127.0.0.1", port, timeout=15, proc=k)
        if tls_port:
            h.wait_port("127.0.0.1", tls_port, timeout=15, proc=k)
        return k

    def start_dns(self, targets: list[tuple[int, int]]) -> h.Proc:
        """targets: (priority, port) of `_sips._tcp.partner.test` records, all on sip.partner.test."""
        args = [self.require_tool("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                f"--port={self.dns_port}", "--log-facility=-", "--log-queries", "--user=root",
                "--host-record=sip.partner.test,127.0.0.1"]
        args += [f"--srv-host=_sips._tcp.partner.test,sip.partner.test,{port},{prio},10" for prio, port in targets]
        p = self.start(args, name="dns")
        h.wait_udp_bound("127.0.0.1", self.dns_port, timeout=10, proc=p)
        return p

    def start_all(self, srv: list[tuple[int, int]] | None = None) -> None:
        pki = self.pki_dir
        self.dns = self.start_dns(srv or [(10, self.ptls_port)])
        ecfg = pair.edge_e_yaml(self, self.ports, pki, extra=f"""
federation:
          sip:
            listen: 127.0.0.1:{self.fed_port}
            local_domains: [example.com]
            dns_servers: ["127.0.0.1:{self.dns_port}"]
            connect_timeout: 3s
            trusted_cas: {pki}/ca.crt
""".strip("\n"))
        ccfg = pair.edge_c_yaml(self, self.ports, pki, extra=f"""
federation:
          sip:
            listen: 127.0.0.1:{self.inside_port}
            imp_nodes: ["127.0.0.1:{self.imp_port}"]
            dial_timeout: 15s
""".strip("\n"))
        self.ccfg = ccfg
        self.edge_e = pair.start_edge_e(self, ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, ccfg, self.ports)
        h.wait_port("127.0.0.1", self.fed_port, timeout=10, proc=self.edge_e)
        h.wait_port("127.0.0.1", self.inside_port, timeout=10, proc=self.edge_c)
        self.wait_links()
        self.imp = self.start_kamailio("imp", "example.com", self.imp_port,
                                       f"sip:127.0.0.1:{self.inside_port};transport=tcp")
        self.partner = self.start_kamailio("partner", "partner.test", self.ptcp_port,
                                           f"sip:127.0.0.1:{self.fed_port};transport=tls", tls_port=self.ptls_port)
        self.alice = UA(self.imp_port, "alice", "example.com")
        self.bob = UA(self.ptcp_port, "bob", "partner.test")
        self.uas += [self.alice, self.bob]
        self.alice.register()
        self.bob.register()

    def wait_links(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
            links = json.loads(body)["link"]["links"] if st == 200 else []
            if len(links) == 2 and all(ln["state"] == "up" for ln in links):
                return
            time.sleep(0.2)
        self.fail("edge-c's links never came up")

    def metric(self, name: str, labels: str) -> float:
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/metrics", timeout=5)
        text = body.decode() if isinstance(body, bytes) else body
        m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def requests(self, direction: str, method: str) -> float:
        return self.metric("edgepair_sip_federation_requests_total", f'direction="{direction}",method="{method}"')

    def wait_log(self, proc: h.Proc, pattern: str, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, proc.log_text())
            if m:
                return m.group(0)
            time.sleep(0.1)
        self.fail(f"{proc.name}: no log line matching {pattern!r}\n{proc.log_text()[-4000:]}")

    # ---- the exchanges ----------------------------------------------------------------------------------------

    def message(self, src: UA, dst: UA) -> None:
        text = f"hello {dst.user} from {src.user} {uuid.uuid4().hex[:6]}"
        src.request("MESSAGE", dst.aor, f"<{dst.aor}>", uuid.uuid4().hex, body=text, ctype="text/plain")
        got = dst.expect("MESSAGE")
        self.assertEqual(got.body.decode(), text)
        self.assertEqual(got.get("From").split(";")[0], f"<{src.aor}>")
        dst.respond(got, 200, "OK", to_tag=uuid.uuid4().hex[:8])
        self.assertEqual(src.final("MESSAGE").status, 200)

    def notify(self, notifier: UA, subscriber: UA, call_id: str, routes: list[str], target: str,
               local_tag: str, remote: str, state: str) -> None:
        body = f"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='{notifier.aor}'/>"
        notifier.request("NOTIFY", target, remote, call_id, routes=routes, from_tag=local_tag,
                         extra=["Event: presence", f"Subscription-State: {state}"], body=body,
                         ctype="application/pidf+xml")
        n = subscriber.expect("NOTIFY")
        self.assertEqual(n.get("Call-ID"), call_id)
        self.assertIn(notifier.aor, n.body.decode())
        subscriber.respond(n, 200, "OK")
        self.assertEqual(notifier.final("NOTIFY").status, 200)

    def subscribe(self, sub: UA, pres: UA) -> dict:
        """sub subscribes to pres's presence and pres notifies inside the new dialog. Returns the dialog."""
        cid = uuid.uuid4().hex
        sub.request("SUBSCRIBE", pres.aor, f"<{pres.aor}>", cid,
                    extra=["Event: presence", "Accept: application/pidf+xml", "Expires: 600"])
        got = pres.expect("SUBSCRIBE")
        ntag = uuid.uuid4().hex[:8]
        pres.respond(got, 200, "OK", to_tag=ntag)
        ok = sub.final("SUBSCRIBE")
        self.assertEqual(ok.status, 200, ok.start)
        # RFC 3261 12.1: the UAC's route set is the response's Record-Route reversed; the UAS's the request's.
        d = {"sub": sub, "pres": pres, "cid": cid, "ntag": ntag,
             "sub_routes": list(reversed(uris(ok.all("Record-Route")))), "sub_target": contact_uri(ok),
             "sub_to": ok.get("To"), "pres_routes": uris(got.all("Record-Route")), "pres_target": contact_uri(got),
             "pres_remote": got.get("From")}
        self.assert_route_set_through_pair(d["sub_routes"])
        self.assert_route_set_through_pair(d["pres_routes"])
        self.notify(d)
        return d

    def notify(self, d: dict) -> None:
        notifier, subscriber = d["pres"], d["sub"]
        body = f"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='{notifier.aor}'/>"
        notifier.request("NOTIFY", d["pres_target"], d["pres_remote"], d["cid"], routes=d["pres_routes"],
                         from_tag=d["ntag"], extra=["Event: presence", "Subscription-State: active;expires=600"],
                         body=body, ctype="application/pidf+xml")
        n = subscriber.expect("NOTIFY")
        self.assertEqual(n.get("Call-ID"), d["cid"])
        self.assertIn(notifier.aor, n.body.decode())
        subscriber.respond(n, 200, "OK")
        self.assertEqual(notifier.final("NOTIFY").status, 200)

    def refresh(self, d: dict) -> None:
        """The subscriber refreshes inside the dialog (RFC 6665 4.1.2.1), then the notifier notifies again."""
        sub, pres = d["sub"], d["pres"]
        sub.request("SUBSCRIBE", d["sub_target"], d["sub_to"], d["cid"], routes=d["sub_routes"],
                    extra=["Event: presence", "Expires: 600"])
        again = pres.expect("SUBSCRIBE")
        self.assertEqual(tag_of(again.get("To")), d["ntag"])
        pres.respond(again, 200, "OK")
        self.assertEqual(sub.final("SUBSCRIBE").status, 200)
        self.notify(d)

    def presence(self, sub: UA, pres: UA) -> None:
        self.refresh(self.subscribe(sub, pres))

    def assert_route_set_through_pair(self, routes: list[str]) -> None:
        text = " ".join(routes)
        self.assertIn(f"127.0.0.1:{self.fed_port};transport=tls", text, "edge-e's Record-Route entry")
        self.assertRegex(text, rf"127\.0\.0\.1:{self.inside_port};transport=tcp;lr;epfed=partner\.test",
                         "edge-c's Record-Route entry")

    # ---- tests --------------------------------------------------------------------------------------------

    def test_message_and_presence_both_ways_through_the_pair(self):
        self.start_all()
        # Outbound: alice (example.com, behind the IM&P Kamailio) -> bob (partner.test).
        self.message(self.alice, self.bob)
        self.assertIn("_sips._tcp.partner.test", self.dns.log_text())
        before = {k: self.requests(*k) for k in [("in", "NOTIFY"), ("out", "SUBSCRIBE"), ("out", "NOTIFY"),
                                                  ("in", "SUBSCRIBE")]}
        self.presence(self.alice, self.bob)
        # bob's two NOTIFYs and alice's SUBSCRIBE + refresh crossed edge-e.
        self.assertEqual(self.requests("in", "NOTIFY") - before[("in", "NOTIFY")], 2)
        self.assertEqual(self.requests("out", "SUBSCRIBE") - before[("out", "SUBSCRIBE")], 2)
        # Each Kamailio sent its in-dialog requests to the pair, not to the other Kamailio.
        self.wait_log(self.partner, rf"partner INDIALOG NOTIFY next=sip:127\.0\.0\.1:{self.fed_port};transport=tls")
        self.wait_log(self.imp, rf"imp INDIALOG SUBSCRIBE next=sip:127\.0\.0\.1:{self.inside_port};"
                                rf"transport=tcp;lr;epfed=partner\.test")
        self.assertNotRegex(self.partner.log_text(), rf"INDIALOG \S+ next=sip:127\.0\.0\.1:{self.imp_port}\b")
        self.assertNotRegex(self.imp.log_text(), rf"INDIALOG \S+ next=sip:127\.0\.0\.1:{self.ptls_port}\b")

        # Inbound: bob -> alice.
        self.message(self.bob, self.alice)
        self.wait_log(self.imp, r"imp REQ MESSAGE sip:alice@example\.com")
        before = {k: self.requests(*k) for k in [("in", "SUBSCRIBE"), ("out", "NOTIFY")]}
        self.presence(self.bob, self.alice)
        self.assertEqual(self.requests("out", "NOTIFY") - before[("out", "NOTIFY")], 2)
        self.assertEqual(self.requests("in", "SUBSCRIBE") - before[("in", "SUBSCRIBE")], 2)
        self.wait_log(self.imp, rf"imp INDIALOG NOTIFY next=sip:127\.0\.0\.1:{self.inside_port};"
                                rf"transport=tcp;lr;epfed=partner\.test")
        self.wait_log(self.partner, rf"partner INDIALOG SUBSCRIBE next=sip:127\.0\.0\.1:{self.fed_port};"
                                    rf"transport=tls")
        # Both Kamailios keep their TLS connections: /status shows one open flow each way for partner.test.
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
        open_now = {(o["protocol"], o["direction"], o["domain"]): o["sessions"]
                    for o in json.loads(body)["federation"]["open"]}
        self.assertGreaterEqual(open_now.get(("sip", "out", "partner.test"), 0), 1, open_now)
        self.assertGreaterEqual(open_now.get(("sip", "in", "partner.test"), 0), 1, open_now)
        # What reached each Kamailio after the pair: no Route naming either edge is left for it.
        for k in (self.imp, self.partner):
            for line in re.findall(r"REQ (?:NOTIFY|SUBSCRIBE) .*", k.log_text()):
                self.assertNotIn(f":{self.fed_port};", line.split("route=")[1], line)
                self.assertNotIn(f":{self.inside_port};", line.split("route=")[1], line)

    def test_dialogs_survive_link_reconnect(self):
        """edge-c is killed and restarted under two established subscriptions (one each way): every connection
        the pair held goes, and both Kamailios reach the pair anew for the refreshes and NOTIFYs. edge-c learns
        the outbound dialog's remote domain from its own Record-Route entry (epfed), not from a connection."""
        self.start_all()
        out_dialog = self.subscribe(self.alice, self.bob)
        in_dialog = self.subscribe(self.bob, self.alice)
        self.edge_c.send_signal(signal.SIGKILL)
        self.edge_c.wait(10)
        self.edge_c = self.start([self.require_binary("edge-c"), "-c", self.ccfg], name="edge-c-again")
        self.edge_c.wait_http(f"http://127.0.0.1:{self.ports.admin_c}/health", timeout=15)
        self.wait_links()
        before = self.requests("in", "NOTIFY"), self.requests("out", "NOTIFY")
        self.refresh(out_dialog)
        self.refresh(in_dialog)
        self.assertEqual(self.requests("in", "NOTIFY") - before[0], 1)
        self.assertEqual(self.requests("out", "NOTIFY") - before[1], 1)
        self.assertIn("leg to partner.test", self.edge_c.log_text())

    def test_srv_failover_to_second_target(self):
        dead = h.free_port()  # nothing listens here
        self.start_all(srv=[(10, dead), (20, self.ptls_port)])
        self.message(self.alice, self.bob)
        self.assertGreaterEqual(self.metric("edgepair_sip_federation_target_failures_total",
                                            'domain="partner.test"'), 1)
        self.assertIn(f"127.0.0.1:{dead}", self.edge_e.log_text())
        self.wait_log(self.partner, r"partner REQ MESSAGE sip:bob@partner\.test")


if __name__ == "__main__":
    h.run_tests()
