#!/usr/bin/python3
"""Federated XMPP messages per CPU-second: through the pair, and Prosody's own server-to-server beside it (issue #19).

Uses the topology of tests/integration/test_federation.py (two Prosody servers, dnsmasq, the pair; root needed
for the DNS servers on port 53). Two runs:

  pair:   alice@example.com -> inside Prosody -> edge-c -> link -> edge-e -> partner Prosody -> bob@partner.test,
          then bob -> alice (inbound: edge-e frames the remote's stream)
  direct: the same two Prosody servers federating with each other directly (their DNS points at each other)

Each run signs alice and bob in (slixmpp, on each server's own c2s port), warms the s2s path with one message,
then alice sends N chat messages and the run waits until bob has them all. CPU is utime+stime from /proc of each
process over that window (all threads). Printed: per process CPU seconds, and messages per CPU-second of the
pair (edge-e + edge-c) and of the two Prosody servers.

  EDGEPAIR_BIN=build/bin /usr/bin/python3 tools/bench_federation.py [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import harness as h  # noqa: E402
import test_federation as tf  # noqa: E402

N = 2000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(p: h.Proc) -> float:
    with open(f"/proc/{p.popen.pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of the line)


class Bench(tf.FederationTest):
    def start_dns_direct(self) -> None:
        self.start_dnsmasq("dns-outside", tf.OUTSIDE_DNS, [
            f"--srv-host=_xmpp-server._tcp.example.com,imp1.example.com,{self.imp_s2s},0,0",
            f"--host-record=imp1.example.com,{tf.IMP_ADDR}",
        ])
        self.start_dnsmasq("dns-inside", tf.INSIDE_DNS, [
            f"--srv-host=_xmpp-server._tcp.partner.test,xmpp.partner.test,{self.partner_s2s},0,0",
            f"--host-record=xmpp.partner.test,{tf.PARTNER_ADDR}",
        ])

    async def flood(self, n: int, reverse: bool = False) -> tuple[float, dict]:
        import slixmpp

        loop = asyncio.get_running_loop()

        def client(user, domain, pw, addr, port):
            c = slixmpp.ClientXMPP(f"{user}@{domain}/bench", pw)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c.ssl_context = ctx
            c.auto_reconnect = False
            c.started = loop.create_future()
            c.got = 0
            c.done = loop.create_future()
            c.want = 1

            async def on_start(_):
                c.send_presence()
                await c.get_roster(timeout=10)
                c.started.set_result(True)

            def on_message(m):
                if m["type"] == "chat":
                    c.got += 1
                    if c.got >= c.want and not c.done.done():
                        c.done.set_result(True)

            c.add_event_handler("session_start", on_start)
            c.add_event_handler("message", on_message)
            c.connect(address=(addr, port), force_starttls=True, disable_starttls=False)
            return c

        alice = client(*tf.ALICE, tf.IMP_ADDR, self.imp_c2s)
        bob = client(*tf.BOB, tf.PARTNER_ADDR, self.partner_c2s)
        # alice -> bob leaves the enterprise (edge-e relays IM&P's side raw); bob -> alice comes in (edge-e frames
        # the remote's side).
        sender, receiver, to = (bob, alice, "alice@example.com") if reverse else (alice, bob, "bob@partner.test")
        try:
            await asyncio.wait_for(asyncio.gather(alice.started, bob.started), 20)
            sender.send_message(mto=to, mbody="warm-up", mtype="chat")
            await asyncio.wait_for(receiver.done, 30)
            receiver.got, receiver.want, receiver.done = 0, n, loop.create_future()
            before = {name: cpu_seconds(p) for name, p in self.watched.items()}
            t0 = time.monotonic()
            for i in range(n):
                sender.send_message(mto=to, mbody=f"message {i} " + "x" * 60, mtype="chat")
                if i % 100 == 99:
                    await asyncio.sleep(0)  # let slixmpp write
            await asyncio.wait_for(receiver.done, 300)
            wall = time.monotonic() - t0
            after = {name: cpu_seconds(p) for name, p in self.watched.items()}
            return wall, {name: after[name] - before[name] for name in after}
        finally:
            for c in (alice, bob):
                try:
                    c.disconnect(wait=0)
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(0.2)

    def report(self, label: str, wall: float, cpu: dict) -> None:
        n = self.n
        print(f"\n{label}: {n} messages in {wall:.2f} s wall ({n / wall:.0f}/s)", flush=True)
        for name, s in cpu.items():
            print(f"  {name:16s} {s:7.2f} CPU-s", flush=True)
        pair = cpu.get("edge-e", 0) + cpu.get("edge-c", 0)
        prosody = cpu["prosody-imp"] + cpu["prosody-partner"]
        if pair:
            print(f"  pair (edge-e + edge-c): {n / pair:,.0f} messages per CPU-second", flush=True)
        print(f"  both Prosody servers:   {n / prosody:,.0f} messages per CPU-second", flush=True)

    def test_bench_pair(self):
        self.start_dns()
        self.start_pair()
        self.watched = {"edge-e": self.edge_e, "edge-c": self.edge_c}
        self.watched["prosody-imp"] = self.start_prosody("prosody-imp", "example.com", tf.IMP_ADDR, self.imp_c2s,
                                                         self.imp_s2s, tf.INSIDE_DNS, "tomcat-imp1", [tf.ALICE])
        self.watched["prosody-partner"] = self.start_prosody(
            "prosody-partner", "partner.test", tf.PARTNER_ADDR, self.partner_c2s, self.partner_s2s, tf.OUTSIDE_DNS,
            "xmpp-partner", [tf.BOB])
        wall, cpu = asyncio.run(self.flood(self.n))
        self.report("through the pair, outbound (security required: TLS on every hop)", wall, cpu)
        wall, cpu = asyncio.run(self.flood(self.n, reverse=True))
        self.report("through the pair, inbound (edge-e frames the remote's side)", wall, cpu)

    def test_bench_direct(self):
        self.start_dns_direct()
        self.watched = {}
        self.watched["prosody-imp"] = self.start_prosody("prosody-imp", "example.com", tf.IMP_ADDR, self.imp_c2s,
                                                         self.imp_s2s, tf.INSIDE_DNS, "tomcat-imp1", [tf.ALICE])
        self.watched["prosody-partner"] = self.start_prosody(
            "prosody-partner", "partner.test", tf.PARTNER_ADDR, self.partner_c2s, self.partner_s2s, tf.OUTSIDE_DNS,
            "xmpp-partner", [tf.BOB])
        wall, cpu = asyncio.run(self.flood(self.n))
        self.report("Prosody to Prosody directly (TLS)", wall, cpu)
        wall, cpu = asyncio.run(self.flood(self.n, reverse=True))
        self.report("Prosody to Prosody directly, reverse (TLS)", wall, cpu)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=N, help="messages per run")
    args = ap.parse_args()
    Bench.n = args.n
    h.run_tests([sys.argv[0], "Bench.test_bench_pair", "Bench.test_bench_direct"])
