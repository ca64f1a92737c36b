#!/usr/bin/python3
"""The access log for SIP (issue #20): one `sip-flow` open/close pair per client SIP/TLS connection and one
`sip` line per transaction (method, direction, final status, duration, a hash of the Call-ID), under the
flow's request id with a `.<n>` suffix; the flow id is the one edge-e sent to edge-c (x-edge-request-id).

Real peers: Kamailio as Unified CM's registrar and record-routing proxy, the UCM fixture for discovery,
dnsmasq, the pair; the client is the minimal TLS UA of sipenv.py. What the log says is checked against what
Kamailio stored (the REGISTER that the log calls 200 really created the binding) and against what the UA saw.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_access_log_sip.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from sipenv import DOMAIN, SipEnv, SipUA  # noqa: E402
from test_access_log import parse_text_line  # noqa: E402


class SipAccessLog(SipEnv):
    def test_flow_and_transaction_lines(self):
        self.start_kamailio()
        self.start_dns()
        self.start_fixture()
        self.e_log = os.path.join(self.tmp, "access-e.log")
        # Both edges append to the one file (O_APPEND, whole lines); each line names its side.
        self.start_pair(log_level=f"debug, access: {{file: {self.e_log}, format: text}}")

        ua = SipUA(self.ports.sip, "alice", self.ca)
        call_id = "secret-call-id-4b1f7e@client"
        try:
            r = ua.register(call_id=call_id)
            self.assertEqual(r.status, 200, r.start)
            self.wait_bindings("alice", lambda b: len(b) == 1, timeout=10)
            # A request edge-e answers itself (an unsupported Proxy-Require): logged with reason=edge.
            ua.send(f"""
OPTIONS sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
Max-Forwards: 70
From: <sip:alice@{DOMAIN}>;tag={ua.tag}
To: <sip:{DOMAIN}>
Call-ID: other-call@client
CSeq: 7 OPTIONS
Proxy-Require: x-not-supported
""")
            self.assertEqual(ua.recv_final("OPTIONS").status, 420)
            r = ua.register(expires=0)
            self.assertEqual(r.status, 200, r.start)
            self.wait_bindings("alice", lambda b: len(b) == 0, timeout=10)
        finally:
            ua.close()

        def lines():
            with open(self.e_log) as f:
                return [parse_text_line(x.rstrip("\n")) for x in f if x.strip()]

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the close line follows the TCP close
            got = lines()
            if sum(l["kind"] == "sip-flow" and l.get("event") == "close" for l in got) == 2:
                break
            time.sleep(0.1)
        got = lines()
        flows = [l for l in got if l["kind"] == "sip-flow" and l["side"] == "edge-e"]
        self.assertEqual([l["event"] for l in flows], ["open", "close"], got)
        flow_id = flows[0]["id"]
        self.assertEqual(flows[1]["id"], flow_id)
        self.assertEqual(flows[1]["reason"], "client_closed")
        self.assertGreater(int(flows[1]["in"]), 0)
        self.assertGreater(int(flows[1]["out"]), 0)

        txns = [l for l in got if l["kind"] == "sip" and l["side"] == "edge-e"]
        self.assertEqual([(l["method"], l["dir"], l["status"]) for l in txns],
                         [("REGISTER", "in", "200"), ("OPTIONS", "in", "420"), ("REGISTER", "in", "200")], txns)
        self.assertEqual([l["id"] for l in txns], [f"{flow_id}.1", f"{flow_id}.2", f"{flow_id}.3"])
        self.assertEqual([l["reason"] for l in txns], ["-", "edge", "-"])
        # One Call-ID, one tag; the Call-ID itself is never written.
        self.assertEqual(txns[0]["call"], txns[2]["call"])
        self.assertNotEqual(txns[0]["call"], txns[1]["call"])
        with open(self.e_log) as f:
            self.assertNotIn("secret-call-id", f.read())
        # edge-c logged the flow under the id edge-e made (its link stream header), opened and closed.
        c_flows = [l for l in got if l["kind"] == "sip-flow" and l["side"] == "edge-c"]
        self.assertEqual([(l["id"], l["event"]) for l in c_flows], [(flow_id, "open"), (flow_id, "close")], got)


if __name__ == "__main__":
    h.run_tests()
