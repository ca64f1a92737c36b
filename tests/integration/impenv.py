"""Prosody as IM&P imp1, the UCM fixture as cucm1 (AXL user profiles) and imp1, dnsmasq, and the pair with the MRA
access policy and OAuth on edge-c: the XMPP sign-in topology of test_mra_policy.py and test_xmpp_oauth.py.

No tests here: a module that imports ImpEnv does not run someone else's tests again.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
import test_xmpp as tx  # noqa: E402
from test_sip_oauth import ISS, PROFILES, USERS, Issuer  # noqa: E402


class ImpEnv(h.TestCase):
    """Prosody as IM&P imp1 (a free 127.0.1.x:5222), the UCM fixture as cucm1 (AXL user profiles) and imp1."""

    # Borrowed from test_xmpp.py (not inherited: its tests would run again here).
    starttls = tx.XmppTest.starttls
    client = tx.XmppTest.client

    # What Prosody must offer after TLS for sign_in to go on.
    OFFERED = b"<mechanism>PLAIN</mechanism>"
    # mra_policy on edge-c: enabled, and its cache_ttl.
    MRA_POLICY = True
    POLICY_CACHE_TTL = "60s"
    # The nodes edge-e's snapshot must name before the tests start (discovery finds each publisher apart).
    READY_NODES: tuple[str, ...] = (tx.IMP_NAME,)

    def setUp(self):
        super().setUp()
        for tool in ("prosody", "prosodyctl", "dnsmasq"):
            self.require_tool(tool)
        self.pki_dir = h.pki()
        self.ports = pair.Ports()
        # edge-c dials IM&P on 5222, so Prosody needs that port: on a loopback address no other test uses.
        self.imp_addr = next((f"127.0.1.{i}" for i in range(30, 90)
                              if h._can_bind(f"127.0.1.{i}", tx.XMPP_PORT, socket.SOCK_STREAM)), None)
        if self.imp_addr is None:
            self.skipTest("no loopback address with 5222 free")
        self.start_prosody()
        self.start_dns()
        self.start_fixtures()
        self.start_pair()

    def prosody_config(self) -> str:
        """test_xmpp.py's Prosody configuration with this test's address and certificate."""
        with open(tx.PROSODY_TEMPLATE, encoding="utf-8") as f:
            text = f.read()
        for k, v in {"TMP": self.tmp, "ADDR": self.imp_addr, "PORT": str(tx.XMPP_PORT),
                     "CERT": f"{self.pki_dir}/tomcat-imp1-chain.crt", "KEY": f"{self.pki_dir}/tomcat-imp1.key"}.items():
            text = text.replace(f"@{k}@", v)
        return text

    def start_prosody(self):
        """Prosody as imp1, knowing ivy and nora with the fixture's passwords."""
        os.makedirs(os.path.join(self.tmp, "prosody-data"), exist_ok=True)
        cfg = os.path.join(self.tmp, "prosody.cfg.lua")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(self.prosody_config())
        for user in ("ivy", "nora"):
            rc, out = h.run_cmd([self.require_tool("prosodyctl"), "--config", cfg, "register", user, "example.com",
                                 USERS[user]["password"]], timeout=30)
            if rc != 0:
                raise h.HarnessError(f"prosodyctl register {user} failed: {out}")
        self.prosody = self.start([self.require_tool("prosody"), "--config", cfg, "-F"], name="prosody")
        self.prosody.wait_port(self.imp_addr, tx.XMPP_PORT, timeout=15)

    def start_dns(self):
        dnsmasq = self.require_tool("dnsmasq")

        def argv(port: int) -> list[str]:
            args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1", f"--port={port}",
                    "--log-facility=-", f"--address=/{tx.IMP_NAME}/{self.imp_addr}",
                    "--address=/cucm1.example.com/127.0.1.1"]
            return args + (["--user=root"] if os.geteuid() == 0 else [])

        _, self.dns_port = h.start_dnsmasq(self.start, "127.0.0.1", argv)

    def cluster(self, users: dict | None = None) -> dict:
        return {
            "name": "cucm-cluster-1", "version": "14.0.1.10000-20",
            "nodes": [{"name": "cucm1.example.com", "address": "127.0.1.1", "type": "ucm", "publisher": True},
                      {"name": tx.IMP_NAME, "address": self.imp_addr, "type": "imp", "publisher": True}],
            "axl_users": {"axladmin": {"password": tx.AXL_PASSWORD, "roles": ["axl"]}},
            "end_users": USERS if users is None else users, "user_profiles": PROFILES,
        }

    def write_cluster(self, users: dict | None = None) -> str:
        """The fixtures' cluster file (they re-read it when it changes)."""
        path = os.path.join(self.tmp, "cluster.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(self.cluster(users), f)
        os.replace(path + ".tmp", path)
        return path

    def start_fixtures(self):
        path = self.write_cluster()
        self.fport = {}
        for name, addr, cert in (("cucm1.example.com", "127.0.1.1", "tomcat-cucm1"),
                                 (tx.IMP_NAME, self.imp_addr, "tomcat-imp1")):
            self.fport[name] = h.free_port(addr)
            p = self.start([tx.PY, tx.FIXTURE, "--cluster", path, "--node", name, "--listen",
                            f"{addr}:{self.fport[name]}", "--cert", f"{self.pki_dir}/{cert}-chain.crt",
                            "--key", f"{self.pki_dir}/{cert}.key", *self.fixture_args(name)],
                           name=f"fixture-{name.split('.')[0]}")
            p.wait_log(r"^READY$", timeout=15)

    def fixture_args(self, node: str) -> list[str]:
        """More ucm_fixture.py arguments for `node` (cucm1.example.com or tx.IMP_NAME)."""
        return []

    def edge_e_extra(self) -> str:
        """Top-level edge-e YAML (indented for pair.edge_e_yaml)."""
        return ""

    def domains_yaml(self) -> str:
        """edge-c's `domains:` items (indented for pair.edge_c_yaml)."""
        return "- {name: example.com}"

    def oauth_section(self) -> str:
        """edge-c's `oauth:` line: keys of an in-process issuer (self.issuer mints the tests' tokens)."""
        self.issuer = Issuer(ISS)
        keys = os.path.join(self.tmp, "oauth-keys.json")
        self.issuer.write(keys, None)
        return f"oauth: {{clusters: [{{name: cucm-cluster-1, issuer: \"{ISS}\", keys_file: {keys}}}]}}"

    def edge_c_extra(self) -> str:
        """Top-level edge-c YAML (indented for pair.edge_c_yaml) after dns, mra_policy and oauth."""
        return ""

    def start_pair(self):
        ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=self.edge_e_extra())
        disc = (f"unified_cm:\n  - {{address: cucm1.example.com, port: {self.fport['cucm1.example.com']}, "
                f"username: axladmin, password: \"{tx.AXL_PASSWORD}\", tls_verify: true}}\n"
                f"im_and_presence:\n  - {{address: {tx.IMP_NAME}, port: {self.fport[tx.IMP_NAME]}, "
                f"username: axladmin, password: \"{tx.AXL_PASSWORD}\", tls_verify: true}}")
        extra = (f'dns: {{servers: ["127.0.0.1:{self.dns_port}"]}}\n'
                 f"        mra_policy: {{enabled: {str(self.MRA_POLICY).lower()}, cache_ttl: {self.POLICY_CACHE_TTL}}}\n"
                 f"        {self.oauth_section()}{self.edge_c_extra()}")
        ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=disc, extra=extra,
                                domains=self.domains_yaml())
        self.edge_e = pair.start_edge_e(self, ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, ccfg, self.ports)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
            snap = json.loads(body).get("snapshot") if st == 200 else None
            if snap and "example.com" in snap["domains"] and all(n in snap["nodes"] for n in self.READY_NODES):
                return
            time.sleep(0.2)
        self.fail(f"edge-e never got a snapshot naming {', '.join(self.READY_NODES)}")

    def sasl(self, t, mech: str, raw: str) -> bytes:
        """One SASL <auth> on a TLS socket whose features were read; what came back."""
        cred = base64.b64encode(raw.encode()).decode()
        t.sendall(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mech}'>{cred}</auth>".encode())
        return tx.recv_until(t, rb"<success|<failure|</stream:stream>")

    def sign_in(self, user: str, token: str | None = None, authzid: str | None = None) -> bytes:
        """Raw XMPP through the pair: STARTTLS at edge-e, the header, then SASL PLAIN (or OAUTHBEARER with
        `token`, RFC 7628, naming `authzid`, by default user@example.com); what came back."""
        with self.starttls(self.client()) as t:
            t.sendall(tx.header())
            got = tx.recv_until(t, rb"</stream:features>")
            self.assertIn(self.OFFERED, got)
            if token is None:
                return self.sasl(t, "PLAIN", f"\0{user}\0{USERS[user]['password']}")
            authzid = f"{user}@example.com" if authzid is None else authzid
            return self.sasl(t, "OAUTHBEARER", f"n,a={authzid},\x01auth=Bearer {token}\x01\x01")

    def metric_sum(self, name: str, **labels: str) -> float:
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/metrics", timeout=5)
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def oauth_refused(self, reason: str) -> float:
        return self.metric_sum("edgepair_oauth_refused_total", reason=reason)

    def refused(self, service: str, policy: str) -> float:
        return self.metric_sum("edgepair_mra_policy_refused_total", service=service, policy=policy)
