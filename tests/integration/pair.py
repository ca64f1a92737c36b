"""Configs and start-up of an edgepair pair for integration tests (loopback, free ports)."""

from __future__ import annotations

import os
import shutil

import harness as h

DEMO_LINK_USER = "edgepair-link"
DEMO_LINK_PASSWORD = "demo-link-secret"


class Ports:
    def __init__(self) -> None:
        (self.https, self.sip, self.xmpp, self.link, self.admin_e, self.admin_c) = h.free_ports(6)


def write_auth_db(tc: h.TestCase, user: str = DEMO_LINK_USER, password: str = DEMO_LINK_PASSWORD) -> str:
    rc, out = h.run_cmd([h.bin_path("edge-e"), "--hash-password", user], input=password + "\n", timeout=30)
    if rc != 0:
        raise h.HarnessError(f"edge-e --hash-password failed: {out}")
    line = out.strip().splitlines()[-1]
    path = os.path.join(tc.tmp, "link-users.txt")
    with open(path, "w") as f:
        f.write(line + "\n")
    return path


def edge_e_yaml(tc: h.TestCase, ports: Ports, pki: str, *, sni_cert: str | None = None, sni_key: str | None = None,
                extra: str = "", workers: int = 2, auth_db: str | None = None,
                subject_name: str = "expc1.example.com") -> str:
    sni_cert = sni_cert or f"{pki}/edge-e-alt.crt"
    sni_key = sni_key or f"{pki}/edge-e-alt.key"
    auth_db = auth_db or write_auth_db(tc)
    # Intrusion protection is on by default (issue #17) and many tests send refused requests on purpose from
    # 127.0.0.1: that address is exempt here, unless the test writes its own `protection:` section
    # (test_intrusion.py uses other 127.0.0.x sources, which stay subject to it).
    if "protection:" not in extra:
        extra = "protection: {exempt: [127.0.0.1/32]}\n        " + extra
    return tc.write_yaml("edge-e.yaml", f"""
        node_name: expe1.example.com
        workers: {workers}
        log: {{level: debug}}
        admin: {{listen: 127.0.0.1:{ports.admin_e}}}
        tls:
          default_certificate: {{cert: {pki}/edge-e.crt, key: {pki}/edge-e.key}}
          certificates:
            - {{cert: {sni_cert}, key: {sni_key}}}
          trusted_cas: {pki}/ca.crt
        listeners:
          https: {{listen: 127.0.0.1:{ports.https}}}
          sip_tls: {{listen: 127.0.0.1:{ports.sip}}}
          xmpp: {{listen: 127.0.0.1:{ports.xmpp}}}
        link:
          listen: 127.0.0.1:{ports.link}
          tls_verify_subject_name: {subject_name}
          auth_database: {auth_db}
          ping_interval: 1s
          ping_timeout: 3s
        {extra}
    """)


def edge_c_yaml(tc: h.TestCase, ports: Ports, pki: str, *, cert: str = "edge-c", password: str = DEMO_LINK_PASSWORD,
                peer: str | None = None, extra: str = "", workers: int = 2, discovery: str = "",
                state_file: str | None = None, domains: str = "- {name: example.com}") -> str:
    peer = peer or f"127.0.0.1:{ports.link}"
    # discovery: YAML lines for inside the `discovery:` mapping (unified_cm: [...] etc.), unindented.
    disc = "".join("\n          " + line for line in discovery.strip("\n").splitlines()) if discovery.strip() else ""
    state_file = state_file or f"{tc.tmp}/edge-c-state.json"
    return tc.write_yaml("edge-c.yaml", f"""
        node_name: expc1.example.com
        workers: {workers}
        log: {{level: debug}}
        admin: {{listen: 127.0.0.1:{ports.admin_c}}}
        tls:
          certificate: {{cert: {pki}/{cert}.crt, key: {pki}/{cert}.key}}
          trusted_cas: {pki}/ca.crt
        link:
          peers: [{peer}]
          username: {DEMO_LINK_USER}
          password: "{password}"
          reconnect_min: 200ms
          reconnect_max: 2s
          ping_interval: 1s
          ping_timeout: 3s
        discovery:
          state_file: {state_file}{disc}
        domains:
          {domains}
        {extra}
    """)


def start_edge_e(tc: h.TestCase, cfg: str, ports: Ports) -> h.Proc:
    p = tc.start([tc.require_binary("edge-e"), "-c", cfg], name="edge-e")
    p.wait_http(f"http://127.0.0.1:{ports.admin_e}/health", timeout=15)
    return p


def start_edge_c(tc: h.TestCase, cfg: str, ports: Ports) -> h.Proc:
    p = tc.start([tc.require_binary("edge-c"), "-c", cfg], name="edge-c")
    p.wait_http(f"http://127.0.0.1:{ports.admin_c}/health", timeout=15)
    return p
