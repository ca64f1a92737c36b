#!/usr/bin/python3
"""Self-test of tools/fixtures/ucm_fixture.py (the Unified CM / IM&P / Unity Connection stand-in).

Run by ctest with /usr/bin/python3 (EDGEPAIR_SRC = repo root; falls back to this file's location). It makes a
throwaway self-signed certificate with openssl, starts four fixture processes on free 127.0.0.1 ports (a Unified
CM publisher and subscriber, an IM&P node and a Unity Connection node, all reading one JSON cluster file in a
temp dir) and checks the AXL, UDS and CUPI answers over real TLS with that certificate as the only CA. Every
network call has a timeout; the fixtures are stopped with SIGTERM (and must exit 0) at the end.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

SRC = os.environ.get("EDGEPAIR_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(SRC, "tools", "fixtures", "ucm_fixture.py")
DEMO_YAML = os.path.join(SRC, "tools", "fixtures", "cluster-demo.yaml")
DEMO_JSON = os.path.join(SRC, "tools", "fixtures", "cluster-demo.json")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
TIMEOUT = 5.0

AXL_USER = ("axladmin", "Axl-Passw0rd")
NOROLE_USER = ("noaxl", "NoAxl-Passw0rd")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def envelope(op: str, inner: str = "", ver: str = "14.0") -> bytes:
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:ns="http://www.cisco.com/AXL/API/{ver}">'
        f"<soapenv:Header/><soapenv:Body><ns:{op}>{inner}</ns:{op}></soapenv:Body></soapenv:Envelope>"
    ).encode()


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


class Node:
    def __init__(self, name: str, port: int, proc: subprocess.Popen, state: str):
        self.name, self.port, self.proc, self.state = name, port, proc, state


class UcmFixtureTest(unittest.TestCase):
    tmp = ""
    nodes: dict[str, Node] = {}
    ctx: ssl.SSLContext

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ucmfx-")
        cls.cert = os.path.join(cls.tmp, "tomcat.crt")
        cls.key = os.path.join(cls.tmp, "tomcat.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", cls.key, "-out", cls.cert, "-days", "1", "-subj", "/CN=cucm1.example.com",
             "-addext", "subjectAltName=DNS:cucm1.example.com,DNS:localhost,IP:127.0.0.1"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30,
        )
        with open(DEMO_JSON, encoding="utf-8") as f:
            cls.cluster_doc = json.load(f)
        cls.cluster = os.path.join(cls.tmp, "cluster.json")
        cls.write_cluster(cls.cluster_doc)
        cls.ctx = ssl.create_default_context(cafile=cls.cert)
        cls.nodes = {}
        try:
            for short, name in [("cucm1", "cucm1.example.com"), ("cucm2", "cucm2.example.com"),
                                ("imp1", "imp1.example.com"), ("cuc1", "cuc1.example.com")]:
                cls.nodes[short] = cls.start(name)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def write_cluster(cls, doc):
        tmp = cls.cluster + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, cls.cluster)

    @classmethod
    def start(cls, name: str) -> Node:
        port = free_port()
        state = os.path.join(cls.tmp, f"{name}.state.json")
        errlog = open(os.path.join(cls.tmp, f"{name}.log"), "wb")
        proc = subprocess.Popen(
            [PY, FIXTURE, "--cluster", cls.cluster, "--node", name, "--listen", f"127.0.0.1:{port}",
             "--cert", cls.cert, "--key", cls.key, "--state-file", state],
            stdout=subprocess.PIPE, stderr=errlog, stdin=subprocess.DEVNULL,
        )
        errlog.close()
        deadline = time.monotonic() + 15
        line = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if r:
                line = proc.stdout.readline()
                break
            if proc.poll() is not None:
                break
        if line.strip() != b"READY":
            proc.kill()
            proc.wait(5)
            with open(os.path.join(cls.tmp, f"{name}.log"), encoding="utf-8", errors="replace") as f:
                raise RuntimeError(f"fixture {name} did not become ready: {line!r}\n{f.read()}")
        return Node(name, port, proc, state)

    @classmethod
    def tearDownClass(cls):
        cls.exit_codes = {}
        for short, n in cls.nodes.items():
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
            try:
                cls.exit_codes[short] = n.proc.wait(10)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(5)
                cls.exit_codes[short] = "killed"
            if n.proc.stdout:
                n.proc.stdout.close()
        if os.environ.get("UCMFX_KEEP"):
            print(f"kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        bad = {k: v for k, v in cls.exit_codes.items() if v != 0}
        if bad:
            raise AssertionError(f"fixtures did not exit 0 on SIGTERM: {bad}")

    # --- helpers --------------------------------------------------------------------------------------------
    def request(self, node: str, method: str, path: str, body: bytes | None = None, headers=None):
        n = self.nodes[node]
        conn = http.client.HTTPSConnection("127.0.0.1", n.port, context=self.ctx, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            conn.close()

    def axl(self, node: str, op: str, inner: str = "", user=AXL_USER, ver: str = "14.0", action: str | None = None):
        hdr = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action or f"CUCM:DB ver={ver} {op}"}"'}
        if user:
            hdr["Authorization"] = basic(*user)
        return self.request(node, "POST", "/axl/", envelope(op, inner, ver), hdr)

    def axl_ok(self, node: str, op: str, inner: str = "", ver: str = "14.0") -> ET.Element:
        st, hdr, body = self.axl(node, op, inner, ver=ver)
        self.assertEqual(st, 200, body)
        self.assertTrue(hdr["content-type"].startswith("text/xml"))
        root = ET.fromstring(body)
        resp = root.find(f"{{{SOAPENV}}}Body/{{http://www.cisco.com/AXL/API/{ver}}}{op}Response")
        self.assertIsNotNone(resp, body)
        ret = resp.find("return")
        self.assertIsNotNone(ret, body)
        return ret

    def axl_fault(self, node: str, op: str, inner: str = "") -> tuple[str, str, str]:
        st, hdr, body = self.axl(node, op, inner)
        self.assertEqual(st, 500, body)
        fault = ET.fromstring(body).find(f"{{{SOAPENV}}}Body/{{{SOAPENV}}}Fault")
        self.assertIsNotNone(fault, body)
        return fault.findtext("faultstring"), fault.findtext("detail/axlError/axlcode"), fault.findtext("detail/axlError/request")

    def sql(self, node: str, q: str) -> list[dict]:
        ret = self.axl_ok(node, "executeSQLQuery", f"<sql>{q}</sql>")
        return [{c.tag: (c.text or "") for c in row} for row in ret.findall("row")]

    def uds(self, node: str, path: str, user=None):
        hdr = {"Accept": "application/xml"}
        if user:
            hdr["Authorization"] = basic(*user)
        return self.request(node, "GET", path, None, hdr)

    # --- AXL ------------------------------------------------------------------------------------------------
    def test_get_ccm_version(self):
        ret = self.axl_ok("cucm1", "getCCMVersion")
        self.assertEqual(ret.findtext("componentVersion/version"), "14.0.1.10000-20")
        ret = self.axl_ok("cucm2", "getCCMVersion", ver="12.5")  # an older schema the node still supports
        self.assertEqual(ret.findtext("componentVersion/version"), "14.0.1.10000-20")
        ret = self.axl_ok("imp1", "getCCMVersion")
        self.assertEqual(ret.findtext("componentVersion/version"), "14.0.1.10000-8")

    def test_list_process_node(self):
        ret = self.axl_ok("cucm1", "listProcessNode",
                          "<searchCriteria><name>%</name></searchCriteria>"
                          "<returnedTags><name/><processNodeRole/><nodeUsage/><description/></returnedTags>")
        pns = ret.findall("processNode")
        names = [p.findtext("name") for p in pns]
        self.assertEqual(names, ["EnterpriseWideData", "cucm1.example.com", "cucm2.example.com", "imp1.example.com"])
        self.assertEqual(pns[0].get("uuid"), "{00000000-1111-0000-0000-000000000000}")
        by = {p.findtext("name"): p for p in pns}
        self.assertEqual(by["cucm1.example.com"].findtext("nodeUsage"), "Publisher")
        self.assertEqual(by["cucm2.example.com"].findtext("nodeUsage"), "Subscriber")
        self.assertEqual(by["cucm1.example.com"].findtext("processNodeRole"), "CUCM Voice/Video")
        self.assertEqual(by["imp1.example.com"].findtext("processNodeRole"), "CUCM IM and Presence")
        self.assertIsNone(by["cucm1.example.com"].find("mac"), "returnedTags must limit the tags")
        # the role filter, as Expressway-style discovery uses it
        ret = self.axl_ok("cucm2", "listProcessNode",
                          "<searchCriteria><name>%</name><processNodeRole>CUCM IM and Presence</processNodeRole>"
                          "</searchCriteria><returnedTags><name/></returnedTags>")
        self.assertEqual([p.findtext("name") for p in ret.findall("processNode")], ["imp1.example.com"])
        ret = self.axl_ok("cucm1", "getProcessNode", "<name>cucm2.example.com</name>")
        self.assertEqual(ret.findtext("processNode/nodeUsage"), "Subscriber")

    def test_call_managers(self):
        ret = self.axl_ok("cucm1", "listCallManager",
                          "<searchCriteria><name>%</name></searchCriteria>"
                          "<returnedTags><name/><ports/><processNodeName/></returnedTags>")
        cms = {c.findtext("processNodeName"): c for c in ret.findall("callManager")}
        self.assertEqual(sorted(cms), ["cucm1.example.com", "cucm2.example.com"])
        # AXLSoap.xsd's LCallManager has no ports: asking for them in a list gets nothing.
        self.assertIsNone(cms["cucm1.example.com"].find("ports"))
        self.assertEqual(cms["cucm2.example.com"].findtext("name"), "CM_cucm2")
        self.assertTrue(cms["cucm1.example.com"].get("uuid"))
        ret = self.axl_ok("cucm1", "getCallManager", "<name>CM_cucm1</name>")
        self.assertEqual(ret.findtext("callManager/ports/sipPort"), "5060")
        self.assertEqual(ret.findtext("callManager/ports/securedSipPort"), "5061")
        uid = cms["cucm2.example.com"].get("uuid")
        ret = self.axl_ok("cucm1", "getCallManager", f"<uuid>{uid}</uuid>")
        self.assertEqual(ret.findtext("callManager/processNodeName"), "cucm2.example.com")
        msg, code, req = self.axl_fault("cucm1", "getCallManager", "<name>CM_nosuch</name>")
        self.assertEqual((code, req), ("5007", "getCallManager"))
        self.assertIn("not found", msg)

    def test_security_mode(self):
        rows = self.sql("cucm1", "select paramname,paramvalue from processconfig where paramname='ClusterSecurityMode'")
        self.assertEqual(rows, [{"paramname": "ClusterSecurityMode", "paramvalue": "1"}])
        ret = self.axl_ok("cucm2", "getServiceParameter",
                          "<processNodeName>EnterpriseWideData</processNodeName><name>ClusterSecurityMode</name>"
                          "<service>Enterprise Wide</service>")
        self.assertEqual(ret.findtext("serviceParameter/value"), "1")

    def test_sql(self):
        rows = self.sql("cucm1", "select name, tkprocessnoderole, tknodeusage from processnode "
                                 "where name != 'EnterpriseWideData' order by name")
        self.assertEqual([r["name"] for r in rows], ["cucm1.example.com", "cucm2.example.com", "imp1.example.com"])
        self.assertEqual([r["tkprocessnoderole"] for r in rows], ["1", "1", "2"])
        self.assertEqual([r["tknodeusage"] for r in rows], ["0", "1", "0"])
        rows = self.sql("cucm1", "select pn.name as host from processnode pn where pn.tkprocessnoderole = 2")
        self.assertEqual(rows, [{"host": "imp1.example.com"}])
        _, code, _ = self.axl_fault("cucm1", "executeSQLQuery", "<sql>selec name frm processnode</sql>")
        self.assertEqual(code, "-201")
        _, code, _ = self.axl_fault("cucm1", "executeSQLQuery", "<sql>select nosuch from processnode</sql>")
        self.assertEqual(code, "-217")

    def test_imp_check(self):
        # A Unified CM node has no IM&P tables; an IM&P node has them.
        msg, code, req = self.axl_fault("cucm1", "executeSQLQuery", "<sql>select * from xmpps2snodes</sql>")
        self.assertEqual((code, req), ("-206", "executeSQLQuery"))
        self.assertIn("xmpps2snodes", msg)
        self.assertEqual(self.sql("imp1", "select * from xmpps2snodes"), [])
        # IM&P is not a UDS server; Unity Connection answers neither AXL nor UDS.
        self.assertEqual(self.uds("imp1", "/cucm-uds/version")[0], 404)
        self.assertEqual(self.axl("cuc1", "getCCMVersion")[0], 404)

    def test_auth_errors(self):
        st, hdr, _ = self.axl("cucm1", "getCCMVersion", user=("axladmin", "wrong"))
        self.assertEqual(st, 401)
        self.assertTrue(hdr.get("www-authenticate", "").startswith("Basic"))
        st, _, _ = self.axl("cucm1", "getCCMVersion", user=None)
        self.assertEqual(st, 401)
        st, hdr, body = self.axl("cucm1", "getCCMVersion", user=NOROLE_USER)
        self.assertEqual(st, 403)
        self.assertNotIn(b"Envelope", body)
        self.assertTrue(hdr["content-type"].startswith("text/html"))

    def test_unknown_operation_and_version(self):
        st, _, body = self.axl("cucm1", "getNoSuchThing")
        self.assertEqual(st, 500)
        fault = ET.fromstring(body).find(f"{{{SOAPENV}}}Body/{{{SOAPENV}}}Fault")
        self.assertIsNotNone(fault)
        self.assertIn("Operation not found", fault.findtext("faultstring"))
        self.assertIn("CUCM:DB ver=14.0 getNoSuchThing", fault.findtext("faultstring"))
        st, _, body = self.axl("cucm1", "getCCMVersion", ver="9.1")
        self.assertEqual(st, 599)
        self.assertIn(b"Incorrect axl version", body)
        st, _, body = self.request("cucm1", "GET", "/axl/", None, {"Authorization": basic(*AXL_USER)})
        self.assertEqual(st, 200)
        self.assertIn(b"AXL Web Service", body)

    # --- UDS ------------------------------------------------------------------------------------------------
    def test_uds_system(self):
        st, hdr, body = self.uds("cucm2", "/cucm-uds/version")
        self.assertEqual(st, 200)
        self.assertEqual(ET.fromstring(body).findtext("version"), "14.0.1")
        st, _, body = self.uds("cucm2", "/cucm-uds/servers")
        self.assertEqual(st, 200)
        self.assertEqual([s.text for s in ET.fromstring(body).findall("server")],
                         ["cucm1.example.com", "cucm2.example.com"])

    def test_uds_cluster_user(self):
        st, _, body = self.uds("cucm2", "/cucm-uds/clusterUser?username=alice")
        self.assertEqual(st, 200)
        root = ET.fromstring(body)
        self.assertEqual(root.find("result").get("found"), "true")
        self.assertEqual(root.findtext("homeCluster"), "cucm1.example.com")  # the home cluster's publisher
        st, _, body = self.uds("cucm1", "/cucm-uds/clusterUser?username=carol")
        self.assertEqual(ET.fromstring(body).findtext("homeCluster"), "cucm9.example.com")
        st, _, body = self.uds("cucm1", "/cucm-uds/clusterUser?username=nobody")
        self.assertEqual(st, 200)
        self.assertEqual(ET.fromstring(body).find("result").get("found"), "false")
        st, _, body = self.uds("cucm1", "/cucm-uds/clusterUser?email=bob@example.com")
        self.assertEqual(ET.fromstring(body).find("result").get("found"), "true")

    def test_uds_user(self):
        st, _, body = self.uds("cucm1", "/cucm-uds/user/alice", ("alice", "Alice-Passw0rd"))
        self.assertEqual(st, 200, body)
        root = ET.fromstring(body)
        self.assertEqual(root.findtext("userName"), "alice")
        self.assertEqual(root.findtext("homeCluster"), "true")
        st, hdr, _ = self.uds("cucm2", "/cucm-uds/user/alice", ("alice", "wrong"))
        self.assertEqual(st, 401)
        self.assertTrue(hdr.get("www-authenticate", "").startswith("Basic"))
        self.assertEqual(self.uds("cucm1", "/cucm-uds/user/alice")[0], 401)
        self.assertEqual(self.uds("cucm1", "/cucm-uds/user/alice", ("bob", "Bob-Passw0rd"))[0], 401)
        self.assertEqual(self.uds("cucm1", "/cucm-uds/user/alice", AXL_USER)[0], 401)
        self.assertEqual(self.uds("cucm1", "/cucm-uds/nosuch")[0], 404)

    # --- CUPI -----------------------------------------------------------------------------------------------
    def test_cupi(self):
        st, _, body = self.uds("cuc1", "/vmrest/cluster", AXL_USER)
        self.assertEqual(st, 200, body)
        root = ET.fromstring(body)
        self.assertEqual(root.get("total"), "1")
        self.assertEqual(root.findtext("VmsServer/HostName"), "cuc1.example.com")
        st, _, body = self.uds("cuc1", "/vmrest/version", AXL_USER)
        self.assertEqual(ET.fromstring(body).findtext("version"), "14.0.1.10000-10")
        self.assertEqual(self.uds("cuc1", "/vmrest/cluster")[0], 401)
        self.assertEqual(self.uds("cucm1", "/vmrest/cluster", AXL_USER)[0], 404)

    # --- live changes (run last: zz) ------------------------------------------------------------------------
    def test_zz_reload(self):
        doc = json.loads(json.dumps(self.cluster_doc))
        doc["nodes"].insert(2, {"name": "cucm3.example.com", "address": "127.0.1.5", "type": "ucm",
                                "publisher": False, "sip_port": 5070, "sip_tls_port": 5071})
        doc["security_mode"] = 0
        try:
            self.write_cluster(doc)
            ret = self.axl_ok("cucm1", "listProcessNode", "<searchCriteria><name>%</name></searchCriteria>"
                                                          "<returnedTags><name/></returnedTags>")
            self.assertIn("cucm3.example.com", [p.findtext("name") for p in ret.findall("processNode")])
            ret = self.axl_ok("cucm1", "getCallManager", "<name>CM_cucm3</name>")
            self.assertEqual(ret.findtext("callManager/ports/securedSipPort"), "5071")
            rows = self.sql("cucm2", "select paramvalue from processconfig where paramname='ClusterSecurityMode'")
            self.assertEqual(rows, [{"paramvalue": "0"}])
            st, _, body = self.uds("cucm2", "/cucm-uds/servers")
            self.assertIn("cucm3.example.com", [s.text for s in ET.fromstring(body).findall("server")])
            # a broken file keeps the last good one
            with open(self.cluster, "w", encoding="utf-8") as f:
                f.write("{ not json")
            self.assertEqual(self.axl("cucm1", "getCCMVersion")[0], 200)
            # SIGHUP is accepted (forces a re-read on the next request)
            self.write_cluster(self.cluster_doc)
            self.nodes["cucm1"].proc.send_signal(signal.SIGHUP)
            time.sleep(0.2)
            rows = self.sql("cucm1", "select paramvalue from processconfig where paramname='ClusterSecurityMode'")
            self.assertEqual(rows, [{"paramvalue": "1"}])
        finally:
            self.write_cluster(self.cluster_doc)

    def test_zz_state_file(self):
        self.axl_ok("cucm2", "getCCMVersion")
        with open(self.nodes["cucm2"].state, encoding="utf-8") as f:
            st = json.load(f)
        self.assertEqual(st["node"], "cucm2.example.com")
        self.assertEqual(st["pid"], self.nodes["cucm2"].proc.pid)
        self.assertGreaterEqual(st["requests"].get("axl:getCCMVersion", 0), 1)

    def test_demo_twins_agree(self):
        try:
            import yaml  # noqa: F401
        except ImportError:
            self.skipTest("PyYAML not installed")
        with open(DEMO_YAML, encoding="utf-8") as f:
            y = yaml.safe_load(f)
        self.assertEqual(y, self.cluster_doc, "cluster-demo.yaml and cluster-demo.json differ")

    def test_concurrent(self):
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(lambda i: self.axl("cucm1", "getCCMVersion")[0], range(64)))
        self.assertEqual(res, [200] * 64)


if __name__ == "__main__":
    unittest.main(verbosity=2)
