#pragma once
// TLS contexts are built once per configuration load (never per connection: ANCHORS B7) and shared
// read-only by every worker. A reload builds new contexts and swaps the shared_ptr; connections that
// are already established keep the SSL_CTX they started with (OpenSSL reference-counts it).
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/ssl.h>

#include "common/net/ticket_keys.h"

#include "common/core/result.h"

namespace edgepair::net {

struct CertSpec {
    std::string cert; // PEM: leaf then chain
    std::string key;
    std::vector<std::string> domains; // SNI names ("a.example.com", "*.example.com"); empty = the cert's SANs
};

enum class ClientCertMode { None, Optional, Required };

struct TlsServerOptions {
    CertSpec default_cert;
    std::vector<CertSpec> sni_certs;
    std::string trusted_cas; // for client certificates
    ClientCertMode client_certs = ClientCertMode::None;
    int min_version = TLS1_2_VERSION;
    bool session_tickets = true;
    // Ticket keys shared across generations and workers (common/net/ticket_keys.h); null = OpenSSL's own
    // per-context keys, which a reload replaces.
    std::shared_ptr<TicketKeyRing> ticket_keys;
    std::vector<std::string> alpn; // server preference order; empty = no ALPN
    std::string ciphers, ciphersuites;
};

// Maps SNI host names to certificate contexts: exact names first, then a wildcard for the left-most label.
class SniStore {
  public:
    void add(std::string_view pattern, int index);
    // -1 when nothing matches (the default certificate is used).
    int find(std::string_view host) const;
    std::vector<std::string> names() const;

  private:
    std::map<std::string, int, std::less<>> exact_;
    std::map<std::string, int, std::less<>> wildcard_; // key: ".example.com"
};

class TlsServerContext {
  public:
    static Result<std::shared_ptr<TlsServerContext>> create(const TlsServerOptions& opts);
    ~TlsServerContext();
    SSL* new_ssl() const;
    const SniStore& sni() const { return sni_; }
    // Subject CN of the certificate chosen for a name (tests, /status).
    std::string cert_subject_for(std::string_view host) const;

  private:
    TlsServerContext() = default;
    static int on_servername(SSL* ssl, int* alert, void* arg);
    static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                       unsigned inlen, void* arg);
    SSL_CTX* default_ = nullptr;
    std::vector<SSL_CTX*> sni_ctx_;
    std::vector<std::string> subjects_; // [0] default, [i+1] sni_ctx_[i]
    SniStore sni_;
    std::string alpn_wire_;
    std::shared_ptr<TicketKeyRing> ticket_keys_; // outlives the contexts it is installed on
};

struct TlsClientOptions {
    std::string trusted_cas;
    std::string cert, key; // optional client certificate
    int min_version = TLS1_2_VERSION;
    std::vector<std::string> alpn;
    bool verify = true;
};

class TlsClientContext {
  public:
    static Result<std::shared_ptr<TlsClientContext>> create(const TlsClientOptions& opts);
    ~TlsClientContext();
    // `peer_name` is what we dialled: a DNS name is sent as SNI and must be in the certificate's DNS SANs;
    // an IP literal must be in its IP SANs (never the CN).
    SSL* new_ssl(std::string_view peer_name) const;

  private:
    TlsClientContext() = default;
    SSL_CTX* ctx_ = nullptr;
    bool verify_ = true;
};

std::string last_ssl_error();
std::string alpn_of(const SSL* ssl);
std::string sni_of(const SSL* ssl);

} // namespace edgepair::net
