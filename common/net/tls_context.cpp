#include "common/net/tls_context.h"

#include <arpa/inet.h>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/net/x509_check.h"

namespace edgepair::net {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

bool is_ip(std::string_view s) {
    std::string z(s);
    unsigned char b[16];
    return inet_pton(AF_INET, z.c_str(), b) == 1 || inet_pton(AF_INET6, z.c_str(), b) == 1;
}

std::string alpn_wire(const std::vector<std::string>& protos) {
    std::string w;
    for (auto& p : protos) {
        w += char(p.size());
        w += p;
    }
    return w;
}

Result<SSL_CTX*> base_ctx(const SSL_METHOD* method, int min_version, const std::string& ciphers,
                          const std::string& suites) {
    SSL_CTX* ctx = SSL_CTX_new(method);
    if (!ctx) return make_error("SSL_CTX_new: " + last_ssl_error());
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    // Read ahead: one read() takes whatever the socket holds (most often one whole record) instead of one
    // for the 5-byte record header and another for its body (issue 18: system calls per SIP message). The
    // buffer is the same size either way; what it holds beyond a record stays pending (SSL_has_pending).
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    if (!ciphers.empty() && SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
        SSL_CTX_free(ctx);
        return make_error("bad cipher list \"" + ciphers + "\": " + last_ssl_error());
    }
    if (!suites.empty() && SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
        SSL_CTX_free(ctx);
        return make_error("bad TLS 1.3 cipher suites \"" + suites + "\": " + last_ssl_error());
    }
    return ctx;
}

Result<void> load_cert(SSL_CTX* ctx, const CertSpec& spec) {
    if (SSL_CTX_use_certificate_chain_file(ctx, spec.cert.c_str()) != 1)
        return make_error(fmt::format("certificate \"{}\": {}", spec.cert, last_ssl_error()));
    if (SSL_CTX_use_PrivateKey_file(ctx, spec.key.c_str(), SSL_FILETYPE_PEM) != 1)
        return make_error(fmt::format("key \"{}\": {}", spec.key, last_ssl_error()));
    if (SSL_CTX_check_private_key(ctx) != 1)
        return make_error(fmt::format("key \"{}\" does not match \"{}\"", spec.key, spec.cert));
    return {};
}

Result<void> load_cas(SSL_CTX* ctx, const std::string& cafile) {
    if (cafile.empty()) return {};
    if (SSL_CTX_load_verify_locations(ctx, cafile.c_str(), nullptr) != 1)
        return make_error(fmt::format("trusted CAs \"{}\": {}", cafile, last_ssl_error()));
    return {};
}

} // namespace

std::string last_ssl_error() {
    unsigned long e = ERR_get_error();
    std::string out;
    while (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
        e = ERR_get_error();
    }
    return out.empty() ? "unknown TLS error" : out;
}

std::string alpn_of(const SSL* ssl) {
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string();
}

std::string sni_of(const SSL* ssl) {
    const char* n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    return n ? lower(n) : std::string();
}

void SniStore::add(std::string_view pattern, int index) {
    std::string p = lower(pattern);
    if (p.rfind("*.", 0) == 0)
        wildcard_.emplace(p.substr(1), index); // first one configured wins
    else
        exact_.emplace(p, index);
}

int SniStore::find(std::string_view host) const {
    std::string h = lower(host);
    if (auto it = exact_.find(h); it != exact_.end()) return it->second;
    auto dot = h.find('.');
    if (dot != std::string::npos && dot > 0) {
        if (auto it = wildcard_.find(std::string_view(h).substr(dot)); it != wildcard_.end())
            return it->second;
    }
    return -1;
}

std::vector<std::string> SniStore::names() const {
    std::vector<std::string> out;
    for (auto& [k, v] : exact_)
        out.push_back(k);
    for (auto& [k, v] : wildcard_)
        out.push_back("*" + k);
    return out;
}

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::create(const TlsServerOptions& opts) {
    std::shared_ptr<TlsServerContext> self(new TlsServerContext);
    self->alpn_wire_ = alpn_wire(opts.alpn);
    self->ticket_keys_ = opts.ticket_keys;
    auto make = [&](const CertSpec& spec) -> Result<SSL_CTX*> {
        auto ctx = base_ctx(TLS_server_method(), opts.min_version, opts.ciphers, opts.ciphersuites);
        if (!ctx) return ctx.error();
        if (auto r = load_cert(*ctx, spec); !r) {
            SSL_CTX_free(*ctx);
            return r.error();
        }
        if (auto r = load_cas(*ctx, opts.trusted_cas); !r) {
            SSL_CTX_free(*ctx);
            return r.error();
        }
        if (!opts.session_tickets)
            SSL_CTX_set_options(*ctx, SSL_OP_NO_TICKET);
        else if (opts.ticket_keys)
            opts.ticket_keys->install(*ctx);
        // One session-id context for the whole store, so resumption works whichever certificate SNI chose.
        static const unsigned char sid_ctx[] = "edgepair";
        SSL_CTX_set_session_id_context(*ctx, sid_ctx, sizeof sid_ctx - 1);
        if (opts.client_certs != ClientCertMode::None) {
            int mode = SSL_VERIFY_PEER;
            if (opts.client_certs == ClientCertMode::Required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
            SSL_CTX_set_verify(*ctx, mode, nullptr);
        }
        SSL_CTX_set_tlsext_servername_callback(*ctx, &TlsServerContext::on_servername);
        SSL_CTX_set_tlsext_servername_arg(*ctx, self.get());
        if (!self->alpn_wire_.empty())
            SSL_CTX_set_alpn_select_cb(*ctx, &TlsServerContext::on_alpn, self.get());
        return *ctx;
    };
    auto def = make(opts.default_cert);
    if (!def) return def.error();
    self->default_ = *def;
    auto subject = [](const std::string& path) {
        auto info = load_cert_info(path);
        return info ? info->subject_cn : std::string();
    };
    self->subjects_.push_back(subject(opts.default_cert.cert));
    for (const auto& spec : opts.sni_certs) {
        auto ctx = make(spec);
        if (!ctx) return ctx.error();
        int index = int(self->sni_ctx_.size());
        self->sni_ctx_.push_back(*ctx);
        self->subjects_.push_back(subject(spec.cert));
        std::vector<std::string> names = spec.domains;
        if (names.empty()) {
            auto info = load_cert_info(spec.cert);
            if (!info) return info.error();
            names = info->dns_sans;
        }
        for (auto& n : names)
            self->sni_.add(n, index);
    }
    return self;
}

TlsServerContext::~TlsServerContext() {
    SSL_CTX_free(default_);
    for (auto* c : sni_ctx_)
        SSL_CTX_free(c);
}

SSL* TlsServerContext::new_ssl() const {
    return SSL_new(default_);
}

std::string TlsServerContext::cert_subject_for(std::string_view host) const {
    int i = sni_.find(host);
    return subjects_[size_t(i + 1)];
}

int TlsServerContext::on_servername(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<TlsServerContext*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK; // no SNI (old clients, IP dialling): default certificate
    int i = self->sni_.find(name);
    if (i >= 0) SSL_set_SSL_CTX(ssl, self->sni_ctx_[size_t(i)]);
    return SSL_TLSEXT_ERR_OK;
}

int TlsServerContext::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                              unsigned inlen, void* arg) {
    auto* self = static_cast<TlsServerContext*>(arg);
    unsigned char* sel = nullptr;
    if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                              unsigned(self->alpn_wire_.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; // no overlap: carry on without ALPN; the session decides
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

Result<std::shared_ptr<TlsClientContext>> TlsClientContext::create(const TlsClientOptions& opts) {
    std::shared_ptr<TlsClientContext> self(new TlsClientContext);
    auto ctx = base_ctx(TLS_client_method(), opts.min_version, {}, {});
    if (!ctx) return ctx.error();
    self->ctx_ = *ctx;
    self->verify_ = opts.verify;
    if (opts.verify) {
        if (opts.trusted_cas.empty())
            return make_error("TLS verification is on but no trusted CAs are configured");
        if (auto r = load_cas(self->ctx_, opts.trusted_cas); !r) return r.error();
        SSL_CTX_set_verify(self->ctx_, SSL_VERIFY_PEER, nullptr);
    }
    if (!opts.cert.empty()) {
        if (auto r = load_cert(self->ctx_, CertSpec{opts.cert, opts.key, {}}); !r) return r.error();
    }
    if (!opts.alpn.empty()) {
        auto w = alpn_wire(opts.alpn);
        SSL_CTX_set_alpn_protos(self->ctx_, reinterpret_cast<const unsigned char*>(w.data()),
                                unsigned(w.size()));
    }
    return self;
}

TlsClientContext::~TlsClientContext() {
    SSL_CTX_free(ctx_);
}

SSL* TlsClientContext::new_ssl(std::string_view peer_name) const {
    SSL* ssl = SSL_new(ctx_);
    std::string name(peer_name);
    if (!name.empty() && !is_ip(name)) SSL_set_tlsext_host_name(ssl, name.c_str());
    if (verify_ && !name.empty()) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                                   X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip(name))
            X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
        else
            X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    }
    return ssl;
}

} // namespace edgepair::net
