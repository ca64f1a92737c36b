#!/usr/bin/python3
"""edge-c discovery of Unified CM, IM and Presence and Unity Connection (issue #4), against the AXL/CUPI
fixture tools/fixtures/ucm_fixture.py.

Topology (loopback only): one fixture process per node on 127.0.1.x:<one free port> (cucm1 127.0.1.1, cucm2
127.0.1.2, imp1 127.0.1.3, cuc1 127.0.1.4, cucm3 127.0.1.5, cucm9 127.0.1.9), each with its tomcat certificate
from the test PKI; dnsmasq on 127.0.0.1:<free port> answers the node names, and edge-c uses it through
`dns.servers`. edge-c is configured with publishers (TLS verify on, trusted CA = the test CA), and the tests
read its /status, POST /discovery/refresh, restart it with the fixtures stopped, and run `edge-c discover`.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_discovery.py
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402

FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
DEMO_JSON = os.path.join(h.SRC, "tools", "fixtures", "cluster-demo.json")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
AXL_USER, AXL_PASSWORD = "axladmin", "Axl-Passw0rd"

ADDRS = {
    "cucm1.example.com": "127.0.1.1",
    "cucm2.example.com": "127.0.1.2",
    "imp1.example.com": "127.0.1.3",
    "cuc1.example.com": "127.0.1.4",
    "cucm3.example.com": "127.0.1.5",
    "cucm9.example.com": "127.0.1.9",
}
TOMCAT = {"cucm1.example.com": "tomcat-cucm1", "cucm2.example.com": "tomcat-cucm2",
          "imp1.example.com": "tomcat-imp1", "cuc1.example.com": "tomcat-cuc1"}


def port_free_everywhere(hosts) -> int:
    """A TCP port free on every given loopback address (the fixtures of one cluster share a port)."""
    for _ in range(100):
        p = h.free_port()
        ok = True
        for host in hosts:
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise h.HarnessError("no port free on all of " + ", ".join(hosts))


def demo_cluster() -> dict:
    with open(DEMO_JSON, encoding="utf-8") as f:
        return json.load(f)


class DiscoveryTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pki_dir = h.pki()
        self.edge_c_bin = self.require_binary("edge-c")
        self.port = port_free_everywhere(list(ADDRS.values()))
        self.ports = pair.Ports()
        self.dns_port = None

    # ---- fixtures -------------------------------------------------------------------------------------

    def write_cluster(self, doc: dict, name: str = "cluster.json") -> str:
        path = os.path.join(self.tmp, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, path)
        return path

    def start_fixture(self, cluster: str, node: str, port: int | None = None, cert: str | None = None,
                      addr: str | None = None) -> h.Proc:
        cert = cert or TOMCAT.get(node, "tomcat-cucm1")
        addr = addr or ADDRS[node]
        port = port or self.port
        p = self.start([PY, FIXTURE, "--cluster", cluster, "--node", node, "--listen", f"{addr}:{port}",
                        "--cert", f"{self.pki_dir}/{cert}-chain.crt" if os.path.exists(
                            f"{self.pki_dir}/{cert}-chain.crt") else f"{self.pki_dir}/{cert}.crt",
                        "--key", f"{self.pki_dir}/{cert}.key"], name=f"fixture-{node.split('.')[0]}-{port}")
        p.wait_log(r"^READY$", timeout=15)
        return p

    def start_dns(self) -> None:
        dnsmasq = self.require_tool("dnsmasq")
        def argv(port: int) -> list:
            args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                    f"--port={port}", "--log-facility=-", "--log-queries"]
            if os.geteuid() == 0:
                args.append("--user=root")  # dnsmasq would drop to "nobody"; nothing to gain in a test
            args += [f"--address=/{name}/{ip}" for name, ip in ADDRS.items()]
            return args

        _, self.dns_port = h.start_dnsmasq(self.start, "127.0.0.1", argv)

    # ---- edge-c ---------------------------------------------------------------------------------------

    def publisher_yaml(self, ucm=(), imp=(), cuc=()) -> str:
        """Each item: (address, port[, username[, password[, tls_verify]]])."""
        lines = []
        for section, items in (("unified_cm", ucm), ("im_and_presence", imp), ("unity_connection", cuc)):
            if not items:
                continue
            lines.append(f"{section}:")
            for it in items:
                addr, port = it[0], it[1]
                user = it[2] if len(it) > 2 else AXL_USER
                pw = it[3] if len(it) > 3 else AXL_PASSWORD
                verify = it[4] if len(it) > 4 else True
                lines.append(f'  - {{address: {addr}, port: {port}, username: {user}, password: "{pw}", '
                             f'tls_verify: {"true" if verify else "false"}}}')
        return "\n".join(lines)

    def edge_c_config(self, ucm=(), imp=(), cuc=(), name="edge-c.yaml") -> str:
        if self.dns_port is None:
            self.start_dns()
        cfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher_yaml(ucm, imp, cuc),
                               extra=f'dns: {{servers: ["127.0.0.1:{self.dns_port}"]}}')
        if name != "edge-c.yaml":
            os.replace(cfg, os.path.join(self.tmp, name))
            cfg = os.path.join(self.tmp, name)
        return cfg

    def start_edge_c(self, cfg: str) -> h.Proc:
        return pair.start_edge_c(self, cfg, self.ports)

    def status(self) -> dict:
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
        self.assertEqual(st, 200, body)
        return json.loads(body)

    def wait_discovery(self, pred=None, timeout: float = 30) -> dict:
        """Poll /status until no publisher is pending or running (and pred(discovery) holds)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status()["discovery"]
            settled = all(p["state"] in ("ok", "error") for p in last["publishers"])
            if settled and (pred is None or pred(last)):
                return last
            time.sleep(0.2)
        self.fail(f"discovery did not settle within {timeout}s: {json.dumps(last, indent=1)}")

    def refresh(self) -> dict:
        st, _, body = h.http_request(f"http://127.0.0.1:{self.ports.admin_c}/discovery/refresh", "POST", body=b"",
                                     timeout=5)
        self.assertEqual(st, 202, body)
        return json.loads(body)

    @staticmethod
    def pub(d: dict, section: str, address: str, port: int) -> dict:
        for p in d["publishers"]:
            if p["type"] == section and p["address"] == address and p["port"] == port:
                return p
        raise AssertionError(f"no publisher {section} {address}:{port} in {d['publishers']}")

    @staticmethod
    def node(d: dict, name: str) -> dict:
        for n in d["nodes"]:
            if n["name"] == name:
                return n
        raise AssertionError(f"no node {name} in {[n['name'] for n in d['nodes']]}")

    # ---- tests ----------------------------------------------------------------------------------------

    def test_ucm_cluster_mixed_mode_then_refresh_adds_node(self):
        doc = demo_cluster()
        doc["nodes"][1]["sip_port"] = 5070  # cucm2: proves getCallManager is read per node
        doc["nodes"][1]["sip_tls_port"] = 5071
        cluster = self.write_cluster(doc)
        for n in ("cucm1.example.com", "cucm2.example.com"):
            self.start_fixture(cluster, n)
        cfg = self.edge_c_config(ucm=[("cucm1.example.com", self.port)])
        self.start_edge_c(cfg)
        d = self.wait_discovery()
        p = self.pub(d, "unified_cm", "cucm1.example.com", self.port)
        self.assertEqual(p["state"], "ok", p)
        self.assertEqual(p["error"], "")
        self.assertEqual(p["cluster"], "cucm-cluster-1")
        self.assertEqual(p["product_version"], "14.0.1.10000-20")
        self.assertTrue(p["mixed_mode"])
        self.assertIsNotNone(p["last_success"])
        self.assertEqual(sorted(p["nodes"]), ["cucm1.example.com", "cucm2.example.com"])
        self.assertFalse(d["serving_last_known_state"])
        c1, c2 = self.node(d, "cucm1.example.com"), self.node(d, "cucm2.example.com")
        for n in (c1, c2):
            self.assertEqual(n["type"], "unified_cm")
            self.assertEqual(n["publisher"], "cucm1.example.com")
            self.assertEqual(n["security_mode"], "mixed")
            self.assertTrue(n["mixed_mode"])
            self.assertEqual(n["status"], "active")  # resolved through dnsmasq
            self.assertEqual(n["https_port"], self.port)
            self.assertFalse(n["stale"])
        self.assertEqual((c1["sip_tcp_port"], c1["sip_tls_port"]), (5060, 5061))
        self.assertEqual((c2["sip_tcp_port"], c2["sip_tls_port"]), (5070, 5071))
        zones = {z["name"]: z for z in d["zones"]}
        self.assertEqual(sorted(zones), ["CEtcp-cucm1.example.com", "CEtcp-cucm2.example.com",
                                         "CEtls-cucm1.example.com", "CEtls-cucm2.example.com"])
        self.assertEqual(zones["CEtls-cucm2.example.com"]["port"], 5071)
        self.assertTrue(zones["CEtls-cucm1.example.com"]["tls_verify"])
        rules = d["search_rules"]
        self.assertEqual(len(rules), 4)
        self.assertTrue(all(r["priority"] == 45 for r in rules), rules)
        self.assertEqual(sorted(r["target_zone"] for r in rules), sorted(zones))
        urls = [r["url"] for r in d["automatic_allow_rules"]]
        self.assertIn(f"https://cucm1.example.com:{self.port}/cucm-uds/", urls)
        self.assertIn(f"https://cucm2.example.com:{self.port}/cucm-uds/", urls)
        # The state file has the nodes.
        with open(d["state_file"], encoding="utf-8") as f:
            state = json.load(f)
        self.assertEqual(sorted(n["name"] for n in state["publishers"][0]["nodes"]),
                         ["cucm1.example.com", "cucm2.example.com"])

        # The cluster grows: discovery is static until a refresh ("Why Should I Refresh").
        doc["nodes"].insert(2, {"name": "cucm3.example.com", "address": "127.0.1.5", "type": "ucm",
                                "publisher": False, "description": "new subscriber"})
        doc["security_mode"] = 0
        self.write_cluster(doc)
        time.sleep(0.5)
        self.assertNotIn("cucm3.example.com", [n["name"] for n in self.status()["discovery"]["nodes"]])
        ans = self.refresh()
        self.assertTrue(ans["accepted"])
        self.assertEqual(ans["publishers"][0]["action"], "started")
        d = self.wait_discovery(lambda d: "cucm3.example.com" in [n["name"] for n in d["nodes"]])
        self.assertEqual(self.node(d, "cucm3.example.com")["publisher"], "cucm1.example.com")
        names = sorted(z["name"] for z in d["zones"])
        # Mixed mode switched off too: only TCP zones remain.
        self.assertEqual(names, ["CEtcp-cucm1.example.com", "CEtcp-cucm2.example.com", "CEtcp-cucm3.example.com"])
        self.assertEqual(d["refreshes"], 2)

    def test_two_ucm_clusters_central_imp_and_unity_connection(self):
        doc = demo_cluster()
        cluster = self.write_cluster(doc)
        doc2 = copy.deepcopy(doc)
        doc2["name"] = "cucm-cluster-2"
        doc2["security_mode"] = 0
        doc2["axl_versions"] = ["12.5", "14.0", "15.0"]  # refuses 11.5 with HTTP 599: negotiated to 15.0
        doc2["nodes"] = [{"name": "cucm9.example.com", "address": "127.0.1.9", "type": "ucm", "publisher": True}]
        cluster2 = self.write_cluster(doc2, "cluster2.json")
        for n in ("cucm1.example.com", "cucm2.example.com", "imp1.example.com", "cuc1.example.com"):
            self.start_fixture(cluster, n)
        # cucm9 has no certificate of its own in the PKI: TLS verify off for that cluster (by IP it would be
        # refused by config validation with verify on), reached by name.
        self.start_fixture(cluster2, "cucm9.example.com", cert="tomcat-cucm1")
        cfg = self.edge_c_config(ucm=[("cucm1.example.com", self.port),
                                      ("cucm9.example.com", self.port, AXL_USER, AXL_PASSWORD, False)],
                                 imp=[("imp1.example.com", self.port)], cuc=[("cuc1.example.com", self.port)])
        self.start_edge_c(cfg)
        d = self.wait_discovery()
        for section, addr in (("unified_cm", "cucm1.example.com"), ("unified_cm", "cucm9.example.com"),
                              ("im_and_presence", "imp1.example.com"), ("unity_connection", "cuc1.example.com")):
            p = self.pub(d, section, addr, self.port)
            self.assertEqual(p["state"], "ok", p)
        self.assertEqual(self.pub(d, "im_and_presence", "imp1.example.com", self.port)["nodes"], ["imp1.example.com"])
        imp = self.node(d, "imp1.example.com")
        self.assertEqual(imp["type"], "imp")
        self.assertEqual(imp["publisher"], "imp1.example.com")
        cuc = self.node(d, "cuc1.example.com")
        self.assertEqual(cuc["type"], "unity_connection")
        self.assertEqual(self.pub(d, "unity_connection", "cuc1.example.com", self.port)["product_version"],
                         "14.0.1.10000-10")
        self.assertEqual(self.pub(d, "unified_cm", "cucm9.example.com", self.port)["axl_version"], "15.0")
        c9 = self.node(d, "cucm9.example.com")
        self.assertEqual((c9["cluster"], c9["mixed_mode"], c9["tls_verify"]), ("cucm-cluster-2", False, False))
        names = sorted(z["name"] for z in d["zones"])
        self.assertEqual(names, ["CEtcp-cucm1.example.com", "CEtcp-cucm2.example.com", "CEtcp-cucm9.example.com",
                                 "CEtls-cucm1.example.com", "CEtls-cucm2.example.com"])
        urls = [r["url"] for r in d["automatic_allow_rules"]]
        self.assertIn(f"https://imp1.example.com:{self.port}/EPASSoap/service/", urls)
        self.assertIn(f"https://cuc1.example.com:{self.port}/vmrest/", urls)
        self.assertIn(f"https://cucm9.example.com:{self.port}/cucm-uds/", urls)

    def test_publisher_added_by_reload_is_discovered(self):
        cluster = self.write_cluster(demo_cluster())
        for n in ("cucm1.example.com", "cucm2.example.com", "imp1.example.com"):
            self.start_fixture(cluster, n)
        cfg = self.edge_c_config(ucm=[("cucm1.example.com", self.port)])
        ec = self.start_edge_c(cfg)
        d = self.wait_discovery()
        self.assertEqual(len(d["publishers"]), 1)
        self.edge_c_config(ucm=[("cucm1.example.com", self.port)], imp=[("imp1.example.com", self.port)])
        ec.send_signal(signal.SIGHUP)
        d = self.wait_discovery(lambda d: len(d["publishers"]) == 2)
        self.assertEqual(self.pub(d, "im_and_presence", "imp1.example.com", self.port)["state"], "ok")
        self.assertIn("imp1.example.com", [n["name"] for n in d["nodes"]])
        # "runs when a publisher is added": the unchanged Unified CM publisher was not run again.
        self.assertEqual(d["refreshes"], 2)
        self.assertEqual(ec.log_text().count("discovering Unified CM publisher"), 1)

    def test_errors_are_clear(self):
        doc = demo_cluster()
        cluster = self.write_cluster(doc)
        p_role = port_free_everywhere(["127.0.1.1"])
        p_mismatch = port_free_everywhere(["127.0.1.2"])
        p_rogue = port_free_everywhere(["127.0.1.2"])
        p_closed = port_free_everywhere(["127.0.1.1"])
        self.start_fixture(cluster, "cucm1.example.com")                 # wrong password, IM&P at a UCM
        self.start_fixture(cluster, "cucm1.example.com", port=p_role)    # user without the AXL role
        # cucm2.example.com serving cucm1's certificate: the name is not in its SANs.
        self.start_fixture(cluster, "cucm2.example.com", port=p_mismatch, cert="tomcat-cucm1")
        # cucm2.example.com with a certificate from the untrusted rogue CA.
        self.start_fixture(cluster, "cucm2.example.com", port=p_rogue, cert="rogue-edge-c")
        cfg = self.edge_c_config(
            ucm=[("cucm1.example.com", self.port, AXL_USER, "wrong-password"),
                 ("cucm1.example.com", p_role, "noaxl", "NoAxl-Passw0rd"),
                 ("cucm2.example.com", p_mismatch),
                 ("cucm2.example.com", p_rogue),
                 ("cucm1.example.com", p_closed)],
            imp=[("cucm1.example.com", self.port)])
        self.start_edge_c(cfg)
        d = self.wait_discovery()
        err = {(p["type"], p["port"]): p["error"] for p in d["publishers"]}
        self.assertTrue(all(p["state"] == "error" for p in d["publishers"]), d["publishers"])
        self.assertEqual(err[("unified_cm", self.port)],
                         "AXL authentication failed for user axladmin on cucm1.example.com: check the username "
                         "and password")
        self.assertIn("user noaxl lacks the Standard AXL API Access role", err[("unified_cm", p_role)])
        self.assertIn("TLS verification of cucm2.example.com failed: hostname mismatch", err[("unified_cm", p_mismatch)])
        # The fixture sends the rogue chain (leaf + rogue CA): OpenSSL names the self-signed root it cannot trust.
        self.assertIn("TLS verification of cucm2.example.com failed: self-signed certificate in certificate chain",
                      err[("unified_cm", p_rogue)])
        self.assertIn("its issuing CA is not in tls.trusted_cas", err[("unified_cm", p_rogue)])
        self.assertIn(f"cannot reach cucm1.example.com:{p_closed}: ", err[("unified_cm", p_closed)])
        self.assertIn("refused", err[("unified_cm", p_closed)].lower())
        self.assertIn("cucm1.example.com is not a IM and Presence server", err[("im_and_presence", self.port)])
        self.assertEqual(d["nodes"], [])
        self.assertEqual(d["zones"], [])
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/ready", timeout=5)
        self.assertEqual(st, 503)

    def test_restart_with_publisher_down_serves_last_known_state(self):
        cluster = self.write_cluster(demo_cluster())
        fx = [self.start_fixture(cluster, n) for n in ("cucm1.example.com", "cucm2.example.com")]
        cfg = self.edge_c_config(ucm=[("cucm1.example.com", self.port)])
        ec = self.start_edge_c(cfg)
        d = self.wait_discovery()
        self.assertEqual(len(d["nodes"]), 2)
        first_success = d["publishers"][0]["last_success"]
        self.assertEqual(ec.stop(), 0)
        for f in fx:
            f.stop()
        self.start_edge_c(cfg)
        # At once: the nodes from the state file serve, and /status says so.
        d = self.status()["discovery"]
        self.assertEqual(sorted(n["name"] for n in d["nodes"]), ["cucm1.example.com", "cucm2.example.com"])
        d = self.wait_discovery()
        p = d["publishers"][0]
        self.assertEqual(p["state"], "error")
        self.assertIn(f"cannot reach cucm1.example.com:{self.port}", p["error"])
        self.assertTrue(p["stale"])
        self.assertTrue(p["from_state_file"])
        self.assertEqual(p["last_success"], first_success)
        self.assertTrue(d["serving_last_known_state"])
        self.assertEqual(d["note"], f"serving last known state from {d['state_file']} (discovered at {first_success})")
        self.assertTrue(all(n["stale"] for n in d["nodes"]))
        self.assertEqual(len(d["zones"]), 4)
        self.assertEqual(len(d["search_rules"]), 4)

    def test_pair_pushes_nodes_to_edge_e(self):
        self.require_binary("edge-e")
        cluster = self.write_cluster(demo_cluster())
        for n in ("cucm1.example.com", "cucm2.example.com"):
            self.start_fixture(cluster, n)
        e_cfg = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        pair.start_edge_e(self, e_cfg, self.ports)
        cfg = self.edge_c_config(ucm=[("cucm1.example.com", self.port)])
        self.start_edge_c(cfg)
        self.wait_discovery()
        deadline = time.monotonic() + 20
        nodes = None
        while time.monotonic() < deadline:
            st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
            snap = json.loads(body).get("snapshot") if st == 200 else None
            nodes = sorted(snap["nodes"]) if snap else None
            if nodes == ["cucm1.example.com", "cucm2.example.com"]:
                break
            time.sleep(0.2)
        self.assertEqual(nodes, ["cucm1.example.com", "cucm2.example.com"])
        # Linked and discovered: edge-c is ready.
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_c}/ready", timeout=15)

    def test_discover_cli(self):
        cluster = self.write_cluster(demo_cluster())
        for n in ("cucm1.example.com", "cucm2.example.com", "imp1.example.com"):
            self.start_fixture(cluster, n)
        cfg = self.edge_c_config(ucm=[("cucm1.example.com", self.port)], imp=[("imp1.example.com", self.port)])
        rc, out = h.run_cmd([self.edge_c_bin, "-c", cfg, "discover"], timeout=60)
        self.assertEqual(rc, 0, out)
        for text in ("Publishers", "Nodes", "Zones", "Search rules", "Automatic allow-list rules",
                     "cucm2.example.com", "CEtls-cucm2.example.com", "mixed mode",
                     f"https://imp1.example.com:{self.port}/EPASSoap/service/"):
            self.assertIn(text, out)
        self.assertRegex(out, r"CEtcp-cucm1\.example\.com\s+45\s")
        state = os.path.join(self.tmp, "edge-c-state.json")
        with open(state, encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)["publishers"]), 2)
        # The same with a wrong password: exit 1, the error printed, the last known nodes kept.
        bad = self.edge_c_config(ucm=[("cucm1.example.com", self.port, AXL_USER, "nope")],
                                 imp=[("imp1.example.com", self.port)], name="edge-c-bad.yaml")
        rc, out = h.run_cmd([self.edge_c_bin, "-c", bad, "--discover"], timeout=60)
        self.assertEqual(rc, 1, out)
        self.assertIn("AXL authentication failed for user axladmin on cucm1.example.com", out)
        self.assertIn("keeping 2 last known nodes", out)
        self.assertIn("CEtcp-cucm2.example.com", out)


if __name__ == "__main__":
    h.run_tests()
