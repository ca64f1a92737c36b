#!/usr/bin/python3
"""Home-cluster look-up through the pair (issue #16), against a multi-cluster estate.

Expressway-C asks `GET /cucm-uds/clusterUser?username=<id>` first, then checks the password on the cluster
that answer names (`/cucm-uds/user/<id>/devices`, TechNote 211304). The estate here (ucm_fixture.py, one
process per node, each cluster with its own cluster file; the end-user directory is shared, each user homed on
one cluster, as ILS would answer clusterUser):

  cluster cucm-a: cucm1 (publisher, mixed mode) + cucm2     alice
  cluster cucm-b: cucm3 (publisher)                         bob
  cluster cucm-c: cucm4 (publisher)                         dave  (stopped and restarted by one test)

Asserted on the fixtures' request logs, not only on statuses: a user's password is only ever sent to their
home cluster; a user unknown everywhere is a clean 401 after every cluster was asked; a home cluster that is
down is 503, never 401, and recovers when it comes back.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_home_cluster.py
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
from test_http_edge import port_free_on, indent  # noqa: E402

FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
EDGE = "expe1.example.com"
DOMAIN_B64 = base64.b64encode(b"example.com").decode().rstrip("=")
ADDRS = {
    "cucm1.example.com": "127.0.1.1",
    "cucm2.example.com": "127.0.1.2",
    "cucm3.example.com": "127.0.1.3",
    "cucm4.example.com": "127.0.1.4",
}
CLUSTERS = {
    "cucm-a": ["cucm1.example.com", "cucm2.example.com"],
    "cucm-b": ["cucm3.example.com"],
    "cucm-c": ["cucm4.example.com"],
}
USERS = {
    "alice": {"password": "Alice-Passw0rd", "home_cluster": "cucm-a", "email": "alice@example.com"},
    "bob": {"password": "Bob-Passw0rd", "home_cluster": "cucm-b", "email": "bob@example.com"},
    "dave": {"password": "Dave-Passw0rd", "home_cluster": "cucm-c", "email": "dave@example.com"},
}
EC_PATH = f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


class HomeClusterTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pki_dir = h.pki()
        self.require_binary("edge-e")
        self.require_binary("edge-c")
        self.ports = pair.Ports()
        self.ucm_port = port_free_on(list(ADDRS.values()))
        self.fixtures: dict[str, h.Proc] = {}
        self.cluster_files: dict[str, str] = {}
        self.start_dns()
        for cname in CLUSTERS:
            self.cluster_files[cname] = self.write_cluster(cname)
        for cname, nodes in CLUSTERS.items():
            for n in nodes:
                self.start_fixture(cname, n)
        self.start_pair()

    def start_dns(self) -> None:
        dnsmasq = self.require_tool("dnsmasq")
        def argv(port: int) -> list:
            args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                    f"--port={port}", "--log-facility=-"]
            if os.geteuid() == 0:
                args.append("--user=root")
            args += [f"--address=/{name}/{ip}" for name, ip in ADDRS.items()]
            return args

        _, self.dns_port = h.start_dnsmasq(self.start, "127.0.0.1", argv)

    def write_cluster(self, cname: str) -> str:
        nodes = [{"name": n, "address": ADDRS[n], "type": "ucm", "publisher": i == 0}
                 for i, n in enumerate(CLUSTERS[cname])]
        doc = {
            "name": cname,
            "version": "14.0.1.10000-20",
            "security_mode": 1 if cname == "cucm-a" else 0,
            "https_port": self.ucm_port,
            "nodes": nodes,
            "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}},
            "end_users": USERS,
            "remote_clusters": {c: {"publisher": ns[0]} for c, ns in CLUSTERS.items() if c != cname},
        }
        path = os.path.join(self.tmp, f"{cname}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        return path

    def start_fixture(self, cname: str, node: str) -> h.Proc:
        # Only cucm1 and cucm2 have their own certificate in the test PKI; the others present cucm1's and are
        # discovered with tls_verify off (what is under test is whom edge-c asks, not TLS).
        cert = "tomcat-cucm2" if node == "cucm2.example.com" else "tomcat-cucm1"
        crt = f"{self.pki_dir}/{cert}-chain.crt"
        if not os.path.exists(crt):
            crt = f"{self.pki_dir}/{cert}.crt"
        p = self.start([PY, FIXTURE, "--cluster", self.cluster_files[cname], "--node", node, "--listen",
                        f"{ADDRS[node]}:{self.ucm_port}", "--cert", crt, "--key", f"{self.pki_dir}/{cert}.key"],
                       name=f"fixture-{node.split('.')[0]}-{len(self.fixtures)}")
        p.wait_log(r"^READY$", timeout=15)
        self.fixtures[node] = p
        return p

    def start_pair(self) -> None:
        disc = "unified_cm:\n" + "\n".join(
            f'  - {{address: {ns[0]}, port: {self.ucm_port}, username: axladmin, password: "Axl-Passw0rd", '
            f'tls_verify: {"true" if c == "cucm-a" else "false"}}}'
            for c, ns in CLUSTERS.items())
        extra = indent(f'\ndns: {{servers: ["127.0.0.1:{self.dns_port}"]}}\nhttp: {{upstream_timeout: 3s}}\n')
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra="# -")
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=disc, extra=extra)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        deadline = time.monotonic() + 40
        last = None
        while time.monotonic() < deadline:
            try:
                st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
                last = json.loads(body)
                names = sorted(n["name"] for n in (last.get("discovery") or {}).get("nodes", []))
                if st == 200 and names == sorted(ADDRS):
                    s2, _, _ = self.get(f"/{DOMAIN_B64}/get_edge_sso/?username=alice")
                    if s2 == 200:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        self.fail(f"pair not ready within 40s; edge-c status: {json.dumps(last)[:2000]}")

    def get(self, path: str, auth=None, timeout: float = 20):
        hdrs = {"Authorization": basic(*auth)} if auth else {}
        return h.http_request(f"https://{EDGE}:{self.ports.https}{path}", "GET", headers=hdrs, timeout=timeout,
                              cafile=f"{self.pki_dir}/ca.crt", connect_to=("127.0.0.1", self.ports.https))

    def log_of(self, node: str) -> str:
        return self.fixtures[node].log_text()

    def edge_config(self, user: str, password: str | None = None):
        return self.get(EC_PATH, auth=(user, password if password is not None else USERS[user]["password"]))

    # ---- tests ---------------------------------------------------------------------------------------

    def test_users_signed_in_on_their_home_cluster(self):
        for user, home_nodes in (("alice", CLUSTERS["cucm-a"]), ("bob", CLUSTERS["cucm-b"])):
            with self.subTest(user=user):
                st, _, body = self.edge_config(user)
                self.assertEqual(st, 200, body)
                uds = ET.fromstring(body).findtext("edgeConfig/userUdsServer/server/address")
                self.assertIn(uds, home_nodes)
        # The password went to the home cluster only: bob's never reached cluster cucm-a or cucm-c, whose
        # 404 ("no such user here") the old rotation read as a wrong password.
        self.assertIn('"GET /cucm-uds/user/bob/devices" 200', self.log_of("cucm3.example.com"))
        for n in ("cucm1.example.com", "cucm2.example.com", "cucm4.example.com"):
            self.assertNotIn("/cucm-uds/user/bob", self.log_of(n))
        for n in ("cucm3.example.com", "cucm4.example.com"):
            self.assertNotIn("/cucm-uds/user/alice", self.log_of(n))
        # Each sign-in asked clusterUser first.
        everything = "".join(p.log_text() for p in self.fixtures.values())
        self.assertIn("clusterUser?username=bob", everything)
        # A wrong password on the home cluster is a 401 with Expressway's realm.
        st, hd, _ = self.edge_config("bob", "wrong")
        self.assertEqual(st, 401)
        self.assertEqual(hd.get("WWW-Authenticate"), 'Basic realm="Cisco-Edge"')

    def test_user_unknown_everywhere_is_401(self):
        st, hd, _ = self.edge_config("nobody", "whatever")
        self.assertEqual(st, 401)
        self.assertEqual(hd.get("WWW-Authenticate"), 'Basic realm="Cisco-Edge"')
        # Every cluster was asked (one node each), and no password was sent anywhere.
        asked = [c for c, ns in CLUSTERS.items()
                 if any("clusterUser?username=nobody" in self.log_of(n) for n in ns)]
        self.assertEqual(sorted(asked), sorted(CLUSTERS))
        for n in ADDRS:
            self.assertNotIn("/cucm-uds/user/nobody", self.log_of(n))

    def test_home_cluster_down_is_503_then_recovers(self):
        self.fixtures["cucm4.example.com"].stop()
        st, hd, body = self.edge_config("dave")
        self.assertEqual(st, 503, body)
        self.assertIsNone(hd.get("WWW-Authenticate"))
        # Still 503 on a retry: a failure is never cached as a wrong password.
        st, _, body = self.edge_config("dave")
        self.assertEqual(st, 503, body)
        # Other users are not affected.
        st, _, body = self.edge_config("bob")
        self.assertEqual(st, 200, body)
        self.start_fixture("cucm-c", "cucm4.example.com")
        deadline = time.monotonic() + 20
        while True:
            st, _, body = self.edge_config("dave")
            if st == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(st, 200, body)
        self.assertEqual(ET.fromstring(body).findtext("edgeConfig/userUdsServer/server/address"),
                         "cucm4.example.com")


if __name__ == "__main__":
    unittest.main(verbosity=2)
