"""Issue 18: TLS session resumption on edge-e's client listeners, with ticket keys that survive a reload and are
shared by all workers (common/net/ticket_keys.h), but not across listeners.

The client is CPython's ssl module (OpenSSL underneath); what it proves is that a real TLS client resumes the
session edge-e's ticket carries. Rotation is covered by tests/unit/net/ticket_keys_test.cpp (the shortest
rotation the config accepts is a minute)."""

from __future__ import annotations

import signal
import socket
import ssl

import harness as h
import pair

REQUEST = b"GET /ZXhhbXBsZS5jb20/get_edge_config/ HTTP/1.1\r\nHost: expe1.example.com\r\nConnection: close\r\n\r\n"


class TlsResumption(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pki_dir = self.pki()
        self.ports = pair.Ports()
        self.ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        self.ctx.set_alpn_protocols(["http/1.1"])

    def connect(self, port: int, session: ssl.SSLSession | None = None) -> tuple[ssl.SSLSession, bool]:
        """One connection with one request; returns the session to resume next and whether this one resumed.
        TLS 1.3 tickets arrive after the handshake: reading the response is what makes the client take them."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with self.ctx.wrap_socket(raw, server_hostname="expe1.example.com", session=session) as s:
            reused = s.session_reused
            s.sendall(REQUEST)
            while s.recv(4096):
                pass
            return s.session, reused

    def test_tickets_resume_across_workers_and_reloads_not_listeners(self) -> None:
        cfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, workers=2)
        e = pair.start_edge_e(self, cfg, self.ports)

        sess, reused = self.connect(self.ports.https)
        self.assertFalse(reused, "the first connection cannot resume anything")
        self.assertTrue(sess.has_ticket, "edge-e issued no session ticket")
        # Connections are spread over both workers: every one must resume, whichever worker issued the ticket.
        for i in range(8):
            nxt, reused = self.connect(self.ports.https, sess)
            self.assertTrue(reused, f"connection {i + 2} did a full handshake")
        sess = nxt

        # A client that uses each ticket once (RFC 8446 C.4) offers the ticket the last resumption gave it: a
        # resumed TLS 1.3 handshake must carry a new ticket, or every other connection is a full one.
        chain = sess
        for i in range(6):
            nxt, reused = self.connect(self.ports.https, chain)
            self.assertTrue(reused, f"chained connection {i + 1} did a full handshake")
            self.assertIsNot(nxt, chain)
            self.assertTrue(nxt.has_ticket, f"chained connection {i + 1} got no new ticket")
            self.assertNotEqual(nxt.id, chain.id, f"chained connection {i + 1} got the same session back")
            chain = nxt

        # A reload builds new TLS contexts; the ticket keys are the process's, so the ticket still resumes.
        mark = len(e.log_text())
        e.send_signal(signal.SIGHUP)
        e.wait_log(r"reload applied on every worker", timeout=10, start=mark)
        _, reused = self.connect(self.ports.https, sess)
        self.assertTrue(reused, "a reload made the client's ticket useless")

        # A ticket of the HTTPS listener does not resume on the SIP listener (its own keys).
        raw = socket.create_connection(("127.0.0.1", self.ports.sip), timeout=10)
        with self.ctx.wrap_socket(raw, server_hostname="expe1.example.com", session=sess) as s:
            self.assertFalse(s.session_reused, "an HTTPS ticket resumed a session on the SIP listener")


if __name__ == "__main__":
    h.run_tests()
