// TicketKeyRing: tickets resume across server contexts that share the ring (a reload, another worker), the
// previous key still resumes after one rotation, nothing resumes after two. Real OpenSSL handshakes over
// memory BIOs, TLS 1.2 and 1.3.
#include "common/net/ticket_keys.h"

#include <memory>
#include <thread>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

using namespace edgepair::net;

namespace {

struct Identity {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    Identity() {
        key = EVP_EC_gen("P-256");
        REQUIRE(key);
        cert = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, key);
        X509_NAME* n = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("t"), -1, -1,
                                   0);
        X509_set_issuer_name(cert, n);
        REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
    }
    ~Identity() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
};

SSL_CTX* server_ctx(const Identity& id, TicketKeyRing* ring) {
    SSL_CTX* c = SSL_CTX_new(TLS_server_method());
    REQUIRE(SSL_CTX_use_certificate(c, id.cert) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(c, id.key) == 1);
    static const unsigned char sid[] = "edgepair";
    SSL_CTX_set_session_id_context(c, sid, sizeof sid - 1);
    // Stateless only: what resumes must be the ticket, not the server's session cache.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    if (ring) ring->install(c);
    return c;
}

// One handshake (and, for TLS 1.3, the tickets after it); returns the client's session and whether it
// resumed.
std::pair<SSL_SESSION*, bool> handshake(SSL_CTX* server, SSL_CTX* client, SSL_SESSION* resume) {
    SSL* s = SSL_new(server);
    SSL* c = SSL_new(client);
    BIO *cb = nullptr, *sb = nullptr;
    REQUIRE(BIO_new_bio_pair(&cb, 0, &sb, 0) == 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (resume) REQUIRE(SSL_set_session(c, resume) == 1);
    bool cdone = false, sdone = false;
    for (int i = 0; i < 100 && !(cdone && sdone); ++i) {
        if (!cdone) cdone = SSL_do_handshake(c) == 1;
        if (!sdone) sdone = SSL_do_handshake(s) == 1;
    }
    REQUIRE(cdone);
    REQUIRE(sdone);
    // TLS 1.3 tickets follow the handshake: one application byte each way makes both sides process them.
    char b = 'x';
    REQUIRE(SSL_write(s, &b, 1) == 1);
    REQUIRE(SSL_read(c, &b, 1) == 1);
    bool reused = SSL_session_reused(c) == 1;
    SSL_SESSION* sess = SSL_get1_session(c);
    // A connection freed without a shutdown marks its session not resumable (OpenSSL's
    // ssl_clear_bad_session).
    SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c);
    SSL_free(s);
    return {sess, reused};
}

} // namespace

TEST_CASE("ticket keys: shared across contexts, previous key resumes, two rotations forget", "[net][tls]") {
    Identity id;
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        INFO("TLS version " << std::hex << version);
        SSL_CTX* client = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(client, version);
        SSL_CTX_set_max_proto_version(client, version);
        SSL_CTX_set_session_cache_mode(client, SSL_SESS_CACHE_CLIENT);
        TicketKeyRing ring(std::chrono::hours(1));
        SSL_CTX* gen1 = server_ctx(id, &ring);
        SSL_CTX* gen2 = server_ctx(id, &ring);  // a reload, or another worker's context
        SSL_CTX* own = server_ctx(id, nullptr); // OpenSSL's own keys

        // Each resumption below offers a session no earlier handshake offered (a TLS 1.3 client drops a
        // ticket the server refused, and a resumed TLS 1.3 handshake here brings no new one). sa-sd: tickets
        // under the first key.
        auto [sd, rd] = handshake(gen1, client, nullptr);
        CHECK_FALSE(rd);
        auto [sa, ra] = handshake(gen1, client, nullptr);
        auto [sb, rb] = handshake(gen1, client, nullptr);
        auto [sc, rc] = handshake(gen1, client, nullptr);
        CHECK_FALSE(ra);
        CHECK_FALSE(rb);
        CHECK_FALSE(rc);
        auto [s2, r2] = handshake(gen2, client, sa);
        CHECK(r2);
        auto [s3, r3] = handshake(own, client, sc);
        CHECK_FALSE(r3); // the ring's ticket means nothing to other keys

        CHECK(ring.rotations() == 0);
        ring.rotate();
        CHECK(ring.rotations() == 1);
        auto [s4, r4] = handshake(gen1, client, sd);
        CHECK(r4); // the previous key still decrypts (and a new ticket is issued under the current one)
        ring.rotate();
        auto [s5, r5] = handshake(gen2, client, sb);
        CHECK_FALSE(r5); // two rotations: the first key is gone
        auto [s6, r6] = handshake(gen2, client, s4);
        CHECK(r6); // s4 was issued after the first rotation: its key is now the previous one

        for (SSL_SESSION* s : {sa, sb, sc, sd, s2, s3, s4, s5, s6})
            SSL_SESSION_free(s);
        SSL_CTX_free(gen1);
        SSL_CTX_free(gen2);
        SSL_CTX_free(own);
        SSL_CTX_free(client);
    }
}

TEST_CASE("ticket keys: rotation happens by itself once due", "[net][tls]") {
    Identity id;
    TicketKeyRing ring(std::chrono::milliseconds(1));
    SSL_CTX* server = server_ctx(id, &ring);
    SSL_CTX* client = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(client, TLS1_2_VERSION);
    auto [s1, r1] = handshake(server, client, nullptr);
    CHECK_FALSE(r1);
    const auto before = ring.rotations();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto [s2, r2] = handshake(server, client, s1);
    CHECK(ring.rotations() > before);
    SSL_SESSION_free(s1);
    SSL_SESSION_free(s2);
    SSL_CTX_free(server);
    SSL_CTX_free(client);
}
