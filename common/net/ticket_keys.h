#pragma once
// TLS session-ticket keys that outlive a configuration generation and rotate.
//
// Without this, OpenSSL makes random ticket keys per SSL_CTX: every reload (which builds new contexts) makes
// every ticket a client holds useless, so a fleet of phones does full handshakes after each config change,
// and the same key encrypts tickets for the whole life of the process (a stolen key would open every recorded
// session). The ring is owned by the edge for its whole life, installed on every client-facing SSL_CTX of
// every generation, and shared by all workers: a ticket issued by any worker, before or after a reload,
// resumes on any other. A new key starts encrypting every `rotation`; the one before it still decrypts (and
// such a ticket is renewed), so a ticket lives between one and two rotations.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include <openssl/ssl.h>

namespace edgepair::net {

class TicketKeyRing {
  public:
    explicit TicketKeyRing(std::chrono::milliseconds rotation);
    TicketKeyRing(const TicketKeyRing&) = delete;
    TicketKeyRing& operator=(const TicketKeyRing&) = delete;

    // Makes ctx encrypt and decrypt its tickets with this ring. The ring must outlive ctx (TlsServerContext
    // holds a reference for that).
    void install(SSL_CTX* ctx);
    // A reload may change the interval; it counts from the next rotation.
    void set_rotation(std::chrono::milliseconds rotation) { rotation_ms_.store(uint64_t(rotation.count())); }
    // Starts a new key at once (the current one becomes the previous one). Tests; an operator's "forget".
    void rotate();
    uint64_t rotations() const { return rotations_.load(std::memory_order_relaxed); }

  private:
    struct Key {
        unsigned char name[16];
        unsigned char aes[32];  // AES-256-CBC, as OpenSSL's own ticket format
        unsigned char hmac[32]; // HMAC-SHA256
    };
    struct Keys {
        Key current{};
        Key previous{};
        bool has_previous = false;
        uint64_t next_rotation_ms = 0; // steady clock
    };
    static int on_ticket(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                         EVP_MAC_CTX* hctx, int enc);
    std::shared_ptr<const Keys> keys_for_use();
    void rotate_locked(uint64_t now_ms);

    std::atomic<uint64_t> rotation_ms_;
    std::atomic<uint64_t> rotations_{0};
    // Read on every handshake that issues or presents a ticket, from every worker; replaced on rotation only.
    std::atomic<std::shared_ptr<const Keys>> keys_;
    std::mutex rotate_mu_; // serialises rotation, never held on the read path
};

} // namespace edgepair::net
