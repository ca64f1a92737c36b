#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

#include "common/link/peer_cert.h"
#include "tests/unit/link/link_test_util.h"

using namespace edgepair;
using namespace edgepair::link;
using namespace edgepair::link::test;

namespace {

// A throw-away PKI made once per test run with the openssl CLI: a CA, edge-e's server certificate, and
// edge-c client certificates that are right, lack clientAuth, or carry the wrong SAN.
struct Pki {
    std::string dir;
    Pki() {
        char tmpl[] = "/tmp/ep-link-pki-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir = tmpl;
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
           "-days 2 -subj /CN=link-test-ca -addext basicConstraints=critical,CA:TRUE "
           "-addext keyUsage=critical,keyCertSign,cRLSign");
        leaf("expe1", "DNS:expe1.example.com,IP:127.0.0.1", "serverAuth");
        leaf("expc1", "DNS:expc1.example.com", "clientAuth");
        leaf("noeku", "DNS:expc1.example.com", "serverAuth");
        leaf("wrongsan", "DNS:other.example.com", "clientAuth");
        leaf("anyeku", "DNS:expc1.example.com", ""); // no EKU: OpenSSL reads "any purpose", we do not
    }
    ~Pki() { sh("rm -rf " + dir); }
    void sh(const std::string& cmd) {
        std::string full = "cd " + dir + " && " + cmd + " >/dev/null 2>&1";
        if (std::system(full.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    }
    void leaf(const std::string& name, const std::string& san, const std::string& eku) {
        std::ofstream ext(dir + "/" + name + ".ext");
        ext << "subjectAltName=" << san << "\nbasicConstraints=CA:FALSE\n";
        if (!eku.empty()) ext << "extendedKeyUsage=" << eku << "\n";
        ext.close();
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name + ".key -out " +
           name + ".csr -subj /CN=" + name);
        sh("openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -set_serial " +
           std::to_string(1000 + name.size() * 7 + name[0]) + " -days 2 -out " + name + ".pem -extfile " +
           name + ".ext");
    }
    std::string f(const std::string& n) const { return dir + "/" + n; }
};

Pki& pki() {
    static Pki p;
    return p;
}

void setup_tls(LinkPair& p, const std::string& client,
               net::ClientCertMode mode = net::ClientCertMode::Required) {
    auto& k = pki();
    net::TlsServerOptions so;
    so.default_cert = {k.f("expe1.pem"), k.f("expe1.key"), {}};
    so.trusted_cas = k.f("ca.pem");
    so.client_certs = mode;
    so.alpn = {std::string(kAlpn)};
    so.min_version = TLS1_2_VERSION;
    auto s = net::TlsServerContext::create(so);
    REQUIRE(s);
    p.sctx = *s;
    net::TlsClientOptions co;
    co.trusted_cas = k.f("ca.pem");
    if (!client.empty()) {
        co.cert = k.f(client + ".pem");
        co.key = k.f(client + ".key");
    }
    co.alpn = {std::string(kAlpn)};
    auto c = net::TlsClientContext::create(co);
    REQUIRE(c);
    p.cctx = *c;
    p.eo.required_san = "expc1.example.com";
}

struct Sink : StreamHandler {
    void on_data(LinkStream& s, const char* d, size_t n) override {
        s.write(std::string_view(d, n));
        s.consumed(n);
    }
    void on_end(LinkStream& s) override { s.end(); }
    void on_close(LinkStream&, const core::Failure&) override {}
};

} // namespace

TEST_CASE("link tls: mutual authentication, ALPN and a stream over TLS", "[link][tls]") {
    Sink sink;
    LinkPair p;
    setup_tls(p, "expc1");
    p.dial_name = "expe1.example.com";
    p.on_stream = [&](LinkStream* s, const Headers&) {
        s->set_handler(&sink);
        s->send_headers({{":status", "200"}});
    };
    p.start();
    REQUIRE(p.wait_up());
    auto st = p.c->status();
    CHECK(st.alpn == "edgepair-link/1");
    CHECK(st.tls_version == "TLSv1.3");
    CHECK(p.e->status().peer_node == "expc1");
    Recorder r;
    auto* s = p.e->open_stream(StreamKind::Xmpp, {{"x-domain", "example.com"}}, &r);
    REQUIRE(s);
    s->write("<stream:stream to='example.com'>");
    s->end();
    REQUIRE(run_until(p.loop, [&] { return r.closed; }));
    CHECK(r.body == "<stream:stream to='example.com'>");
}

TEST_CASE("link tls: dialling an IP literal works only when the IP is in the SAN", "[link][tls]") {
    LinkPair p;
    setup_tls(p, "expc1");
    p.dial_name = "127.0.0.1"; // in expe1's IP SANs
    p.start();
    REQUIRE(p.wait_up());
}

TEST_CASE("link tls: edge-c refuses an edge-e certificate that does not name what it dialled",
          "[link][tls]") {
    LinkPair p;
    setup_tls(p, "expc1");
    p.dial_name = "expe2.example.com";
    p.start();
    REQUIRE(run_until(p.loop, [&] { return p.c_closed && p.e_closed; }));
    CHECK_FALSE(p.c_up);
    CHECK(p.c->last_error().find("certificate verify failed") != std::string::npos);
    CHECK(p.reg_c.counter_value("edgepair_link_auth_failures_total", {{"reason", "tls_handshake"}}) == 1);
}

TEST_CASE("link tls: client certificate without clientAuth is refused with the reason", "[link][tls]") {
    SECTION("an EKU without clientAuth: OpenSSL's purpose check fails the handshake") {
        LinkPair p;
        setup_tls(p, "noeku");
        p.start();
        REQUIRE(run_until(p.loop, [&] { return p.c_closed && p.e_closed; }));
        CHECK_FALSE(p.e_up);
        CHECK(p.e->last_error().find("unsuitable certificate purpose") != std::string::npos);
        CHECK(p.c->last_error().find("unsupported certificate") != std::string::npos); // the TLS alert
        CHECK(p.reg_e.counter_value("edgepair_link_auth_failures_total",
                                    {{"reason", "no_client_auth_eku"}}) == 1);
    }
    SECTION("no EKU at all: OpenSSL accepts it, the link check does not") {
        LinkPair p;
        setup_tls(p, "anyeku");
        p.start();
        REQUIRE(run_until(p.loop, [&] { return p.c_closed && p.e_closed; }));
        CHECK_FALSE(p.e_up);
        CHECK(p.c->last_error() ==
              "refused by peer: auth failed: certificate lacks the clientAuth extended key usage");
        CHECK(p.reg_e.counter_value("edgepair_link_auth_failures_total",
                                    {{"reason", "no_client_auth_eku"}}) == 1);
        CHECK(p.reg_c.counter_value("edgepair_link_refused_total") == 1);
    }
}

TEST_CASE("link tls: client certificate whose SAN lacks tls_verify_subject_name is refused", "[link][tls]") {
    LinkPair p;
    setup_tls(p, "wrongsan");
    p.start();
    REQUIRE(run_until(p.loop, [&] { return p.c_closed && p.e_closed; }));
    CHECK(p.c->last_error().find("does not contain \"expc1.example.com\"") != std::string::npos);
    CHECK(p.reg_e.counter_value("edgepair_link_auth_failures_total", {{"reason", "wrong_san"}}) == 1);
}

TEST_CASE("link tls: no client certificate", "[link][tls]") {
    SECTION("optional at the TLS layer: the link check names it") {
        LinkPair p;
        setup_tls(p, "", net::ClientCertMode::Optional);
        p.start();
        REQUIRE(run_until(p.loop, [&] { return p.c_closed && p.e_closed; }));
        CHECK(p.c->last_error().find("no client certificate") != std::string::npos);
        CHECK(p.reg_e.counter_value("edgepair_link_auth_failures_total", {{"reason", "no_client_cert"}}) ==
              1);
    }
    SECTION("required at the TLS layer: the handshake fails and is counted") {
        LinkPair p;
        setup_tls(p, "", net::ClientCertMode::Required);
        p.start();
        REQUIRE(run_until(p.loop, [&] { return p.c_closed && p.e_closed; }));
        CHECK_FALSE(p.c_up);
        CHECK(p.reg_e.counter_value("edgepair_link_auth_failures_total", {{"reason", "no_client_cert"}}) ==
              1);
        CHECK_FALSE(p.c->last_error().empty());
    }
}

TEST_CASE("link tls: peer certificate check on a live connection", "[link][tls]") {
    std::string label;
    CHECK(check_link_peer_cert(nullptr, "x", &label) != "");
    CHECK(label == "no_client_cert");
}
