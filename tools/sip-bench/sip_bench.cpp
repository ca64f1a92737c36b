// SIP message work per REGISTER transaction, without sockets (issue 18): the calls into common/sip that
// edge-e and edge-c make for one Jabber-shaped REGISTER and Unified CM's 200 OK, in the order the edges
// make them (edge-e/sip_session.cpp on_message; edge-c/sip_router.cpp from_client, forward_request,
// SipUpstream::send_from_client and from_upstream). The routers themselves need a loop, a link and a
// snapshot; what they add beyond these calls (flow tables, the link's HTTP/2 framing) is measured by the
// pair rows of tools/bench.sh. Prints transactions per CPU-second of this process (getrusage) for each
// part; run it under `valgrind --tool=callgrind` for instructions per transaction.
//
//   sip-bench [transactions]      (default 200000)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/sip/message.h"
#include "common/sip/mra_policy.h"
#include "common/sip/proxy.h"
#include "tools/cpu_seconds.h"

using namespace edgepair::sip;

namespace {

using edgepair::tools::cpu_seconds;

// As Jabber for Windows 14 sends it (header set and Contact parameters from MRA-PROTOCOL.md's REGISTER),
// with the values edge-load uses.
constexpr std::string_view kRegister =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 127.0.2.17:51234;branch=z9hG4bKQ6DLX3PRM2XZR4YMFXKJ2H7A3Q;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:user17@example.com>;tag=8d2c46e1d2a9\r\n"
    "To: <sip:user17@example.com>\r\n"
    "Call-ID: 2c56f3e8-94a1b7d0-7f3e21c4@127.0.2.17\r\n"
    "CSeq: 12 REGISTER\r\n"
    "Contact: <sip:6f8e7c2a-1b3d-4e5f-9a8b-7c6d5e4f3a2b@127.0.2.17:51234;transport=tls>;"
    "+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-0050568a1b2c>\";"
    "+u.sip!devicename.ccm.cisco.com=\"CSFUSER17\";+u.sip!model.ccm.cisco.com=\"503\";video;bfcp\r\n"
    "Expires: 3600\r\n"
    "Supported: replaces,join,sdp-anat,norefersub,resource-priority,extended-refer,X-cisco-callinfo\r\n"
    "User-Agent: Cisco-UCCLIENT/14.1.0\r\n"
    "Allow: ACK,BYE,CANCEL,INVITE,NOTIFY,OPTIONS,REFER,REGISTER,UPDATE,SUBSCRIBE,INFO\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

constexpr std::string_view kEdgeC = "127.0.1.23";
constexpr uint16_t kEdgeCPort = 5061;
constexpr std::string_view kToken = "AAAAAQAAAAAAAAARrq6BYQhqUGxdbZ_pn7aD0A";

Uri edge_c_base() {
    Uri base;
    base.scheme = "sip";
    base.host = std::string(kEdgeC);
    base.port = kEdgeCPort;
    base.params.set("transport", "tls");
    return base;
}

// edge-e: a request from the client is parsed and validated, then relayed as received (answers from edge-c
// go to the client unparsed, but for a prefix check).
bool edge_e(std::string_view wire) {
    auto m = Message::parse(wire);
    if (!m) return false;
    RoutingInfo info;
    if (!validate(*m, {}, &info).ok()) return false;
    return unsupported_proxy_require(*m, mra_supported_proxy_extensions()).empty();
}

// edge-c, client to Unified CM: validation, rport, Max-Forwards, Route policy, zone choice, Contact
// rewriting, our Via. Returns the wire form sent to the node.
std::string edge_c_request(std::string_view wire, ContactTable& contacts) {
    auto m = Message::parse(wire);
    RoutingInfo info;
    if (!m || !validate(*m, {}, &info).ok()) return {};
    fill_received_rport(*m, std::move(info.top_via), "127.0.2.17", 51234);
    if (decrement_max_forwards(*m) != MaxForwardsResult::ok) return {};
    auto rv = apply_client_route_policy(
        *m, [](const Uri&) { return false; }, [](const Uri&) { return true; });
    if (!rv.ok) return {};
    if (auto ru = Uri::parse(m->request_uri()); !ru || !ru->is_sip()) return {};
    auto v = rewrite_client_contacts(*m, contacts, [](size_t idx, const Uri& orig) {
        return mra_contact(orig, edge_c_base(), kToken, idx, "127.0.2.17:51234");
    });
    if (v != ContactVerdict::ok) return {};
    auto top = m->top_via();
    std::string prev = top && top->branch() ? std::string(*top->branch()) : std::string();
    push_via(*m, {"TLS", std::string(kEdgeC), kEdgeCPort,
                  std::string(kMagicCookie) + std::string(kToken) + "." + prev, true});
    return m->serialize();
}

// What the registrar answers: both Vias back (ours with received), the binding with its expiry.
std::string registrar_ok(const std::string& request) {
    auto req = Message::parse(request);
    if (!req) return {};
    Message r = make_response(*req, 200, "OK", "a6c85cf");
    for (const auto& h : req->headers())
        if (h.id == HeaderId::contact) r.append_header("Contact", h.value + ";expires=3600");
    r.append_header("Server", "kamailio (5.6.3 (x86_64/linux))");
    return r.serialize();
}

// edge-c, Unified CM to client: validation, our Via off, the client's Contact put back.
std::string edge_c_response(std::string_view wire, const ContactTable& contacts) {
    auto m = Message::parse(wire);
    RoutingInfo info;
    if (!m || !validate(*m, {}, &info).ok()) return {};
    if (!info.top_via.branch()) return {};
    pop_via(*m);
    if (info.cseq.method == "REGISTER") {
        (void)rewrite_contacts(*m, [&](const Uri& uri) -> std::optional<std::string> {
            auto epc = uri.params.get("epc");
            if (!epc) return std::nullopt;
            const std::string* o = contacts.lookup(*epc);
            if (!o) return std::nullopt;
            return *o;
        });
    }
    return m->serialize();
}

template <class F> double per_cpu_second(long n, F&& f) {
    const double t0 = cpu_seconds();
    for (long i = 0; i < n; ++i)
        if (!f()) return -1;
    const double dt = cpu_seconds() - t0;
    return dt > 0 ? double(n) / dt : 0;
}

} // namespace

int main(int argc, char** argv) {
    long n = argc > 1 ? std::atol(argv[1]) : 200000;
    if (n <= 0) {
        std::fprintf(stderr, "usage: sip-bench [transactions]\n");
        return 2;
    }
    ContactTable contacts;
    const std::string to_node = edge_c_request(kRegister, contacts);
    const std::string ok = to_node.empty() ? std::string() : registrar_ok(to_node);
    const std::string to_client = ok.empty() ? std::string() : edge_c_response(ok, contacts);
    // The round trip must give the client its own Contact back, or the figures measure a failure path.
    if (to_client.empty() ||
        to_client.find("sip:6f8e7c2a-1b3d-4e5f-9a8b-7c6d5e4f3a2b@127.0.2.17:51234") == std::string::npos) {
        std::fprintf(stderr, "sip-bench: the REGISTER did not survive the round trip\n");
        return 1;
    }
    double e_req = per_cpu_second(n, [] { return edge_e(kRegister); });
    double c_req = per_cpu_second(n, [&] { return !edge_c_request(kRegister, contacts).empty(); });
    double c_resp = per_cpu_second(n, [&] { return !edge_c_response(ok, contacts).empty(); });
    if (e_req < 0 || c_req < 0 || c_resp < 0) {
        std::fprintf(stderr, "sip-bench: a message failed inside the loop\n");
        return 1;
    }
    std::printf("part                     per CPU-second\n");
    std::printf("edge-e REGISTER          %10.0f\n", e_req);
    std::printf("edge-c REGISTER          %10.0f\n", c_req);
    std::printf("edge-c 200 OK            %10.0f\n", c_resp);
    double per_txn = 1 / e_req + 1 / c_req + 1 / c_resp;
    std::printf("REGISTER transaction     %10.0f  (%.2f us of CPU)\n", 1 / per_txn, per_txn * 1e6);
    return 0;
}
