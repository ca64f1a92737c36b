"""SIP dialogs for the media and in-dialog integration tests (test_media_av.py, test_sip_dialogs.py).

- InternalUA: an endpoint on Unified CM's side (the test's own UA over TCP straight to Kamailio, which plays
  Unified CM's SIP side as in sipenv.py). It registers, answers and places calls and sends in-dialog requests.
- Dialog: one side's view of a dialog (RFC 3261 12): Call-ID, tags, remote target and route set, so that
  in-dialog requests of either UA follow the route set (loose routing through Kamailio and the pair) instead of
  relying on the connection they happen to share.
"""

from __future__ import annotations

import re
import socket
import time
import uuid

import harness as h
from sipenv import DOMAIN, SipMsg, SipUA


def uri_of(name_addr: str) -> str:
    m = re.search(r"<([^>]+)>", name_addr)
    return m.group(1) if m else name_addr.split(";")[0].strip()


def route_entries(values: list[str]) -> list[str]:
    """Record-Route / Route header values split into single entries, in order."""
    out = []
    for v in values:
        out += [e.strip() for e in re.findall(r"<[^>]*>[^,]*", v)]
    return out


class InternalUA(SipUA):
    """An internal endpoint over plain TCP to Kamailio (Unified CM's SIP side in these tests)."""

    def __init__(self, host: str, port: int, user: str):  # noqa: super().__init__ would dial TLS
        self.sock = socket.create_connection((host, port), timeout=10)
        self.user = user
        self.buf = b""
        self.local = "%s:%d" % self.sock.getsockname()[:2]
        self.contact = f"<sip:{user}@{self.local};transport=tcp>"
        self.tag = uuid.uuid4().hex[:10]
        self.cseq = 0
        self.transport = "TCP"
        self.server = f"{host}:{port}"

    def recv(self, timeout: float = 10) -> SipMsg | None:
        try:
            return super().recv(timeout)
        except OSError:
            return None

    def register(self, expires: int = 3600, call_id: str | None = None) -> SipMsg:
        self.cseq += 1
        self.reg_call_id = call_id or getattr(self, "reg_call_id", None) or uuid.uuid4().hex
        self.send(f"""
REGISTER sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/TCP {self.local};branch={self.branch()};rport
Max-Forwards: 70
From: <sip:{self.user}@{DOMAIN}>;tag={self.tag}
To: <sip:{self.user}@{DOMAIN}>
Call-ID: {self.reg_call_id}
CSeq: {self.cseq} REGISTER
Contact: {self.contact}
Expires: {expires}
""")
        return self.recv_final("REGISTER")


def transport_of(ua: SipUA) -> str:
    return getattr(ua, "transport", "TLS")


def wait_request(ua: SipUA, method: str, timeout: float = 15, call_id: str | None = None) -> SipMsg:
    """The next request `method` (of call_id when given); anything else in between is skipped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise h.HarnessError(f"{ua.user}: no {method} within {timeout}s")
        m = ua.recv(left)
        if m is None:
            raise h.HarnessError(f"{ua.user}: connection closed waiting for a {method}")
        if m.is_request and m.method == method and (call_id is None or m.get("Call-ID") == call_id):
            return m


def wait_final(ua: SipUA, method: str, call_id: str, cseq: int, timeout: float = 15) -> SipMsg:
    """The final response to the request (method, CSeq number) of call_id."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise h.HarnessError(f"{ua.user}: no final response to {method} {cseq} within {timeout}s")
        m = ua.recv(left)
        if m is None:
            raise h.HarnessError(f"{ua.user}: connection closed waiting for the {method} response")
        if m.is_request or m.get("Call-ID") != call_id or m.status < 200:
            continue
        n, _, meth = m.get("CSeq").partition(" ")
        if meth.strip() == method and int(n) == cseq:
            return m


class Dialog:
    """One UA's side of a dialog; builds in-dialog requests and responses."""

    def __init__(self, ua: SipUA, call_id: str, local: str, remote: str, target: str, routes: list[str],
                 cseq: int):
        self.ua, self.call_id, self.local, self.remote = ua, call_id, local, remote
        self.target, self.routes, self.cseq = target, routes, cseq

    @staticmethod
    def as_uac(ua: SipUA, invite_call_id: str, from_hdr: str, resp: SipMsg, cseq: int = 1) -> "Dialog":
        """The INVITE's sender, from the 2xx: route set = Record-Route reversed, target = its Contact."""
        return Dialog(ua, invite_call_id, from_hdr, resp.get("To"), uri_of(resp.get("Contact")),
                      list(reversed(route_entries(resp.all("Record-Route")))), cseq)

    @staticmethod
    def as_uas(ua: SipUA, inv: SipMsg, to_tag: str) -> "Dialog":
        """The INVITE's receiver: route set = Record-Route as received, target = the INVITE's Contact."""
        to = inv.get("To")
        if "tag=" not in to:
            to += f";tag={to_tag}"
        return Dialog(ua, inv.get("Call-ID"), to, inv.get("From"), uri_of(inv.get("Contact")),
                      route_entries(inv.all("Record-Route")), 100)

    def request(self, method: str, headers: str = "", body: str = "", content_type: str = "") -> int:
        """Sends an in-dialog request; returns its CSeq number. ACK reuses the INVITE's number."""
        if method != "ACK":
            self.cseq += 1
        routes = "".join(f"Route: {r}\n" for r in self.routes)
        ctype = f"Content-Type: {content_type}\n" if content_type else ""
        self.ua.send(f"""
{method} {self.target} SIP/2.0
Via: SIP/2.0/{transport_of(self.ua)} {self.ua.local};branch={self.ua.branch()};rport
{routes}Max-Forwards: 70
From: {self.local}
To: {self.remote}
Call-ID: {self.call_id}
CSeq: {self.cseq} {method}
Contact: {self.ua.contact}
{headers}{ctype}""".replace("\n\n", "\n"), body)
        return self.cseq

    def respond(self, req: SipMsg, status: int, reason: str, headers: str = "", body: str = "",
                content_type: str = "application/sdp"):
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.all("Via")]
        lines += [f"Record-Route: {v}" for v in req.all("Record-Route")]
        lines += [f"From: {req.get('From')}", f"To: {req.get('To') if 'tag=' in req.get('To') else self.local}",
                  f"Call-ID: {req.get('Call-ID')}", f"CSeq: {req.get('CSeq')}", f"Contact: {self.ua.contact}"]
        if headers:
            lines += [ln for ln in headers.strip("\n").split("\n") if ln]
        if body:
            lines.append(f"Content-Type: {content_type}")
        self.ua.send("\n".join(lines), body)
