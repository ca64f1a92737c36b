#include "common/net/ticket_keys.h"

#include <cstring>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace edgepair::net {
namespace {

int ring_index() {
    // One ex_data slot for the process, registered before any handshake (install runs at start-up).
    static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

uint64_t steady_ms() {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}

bool fresh_key(void* out, size_t n) {
    return RAND_priv_bytes(static_cast<unsigned char*>(out), int(n)) == 1;
}

bool set_mac_key(EVP_MAC_CTX* hctx, const unsigned char* key) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key), 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

} // namespace

TicketKeyRing::TicketKeyRing(std::chrono::milliseconds rotation) : rotation_ms_(uint64_t(rotation.count())) {
    std::lock_guard<std::mutex> lk(rotate_mu_);
    rotate_locked(steady_ms());
    rotations_.store(0);
}

void TicketKeyRing::install(SSL_CTX* ctx) {
    SSL_CTX_set_ex_data(ctx, ring_index(), this);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TicketKeyRing::on_ticket);
}

void TicketKeyRing::rotate() {
    std::lock_guard<std::mutex> lk(rotate_mu_);
    rotate_locked(steady_ms());
}

void TicketKeyRing::rotate_locked(uint64_t now_ms) {
    auto next = std::make_shared<Keys>();
    if (auto cur = keys_.load()) {
        next->previous = cur->current;
        next->has_previous = true;
    }
    // Without randomness there is no safe key: the process cannot serve TLS anyway.
    if (!fresh_key(next->current.name, sizeof next->current.name) ||
        !fresh_key(next->current.aes, sizeof next->current.aes) ||
        !fresh_key(next->current.hmac, sizeof next->current.hmac))
        throw std::runtime_error("TLS ticket keys: RAND_priv_bytes failed");
    next->next_rotation_ms = now_ms + rotation_ms_.load();
    keys_.store(std::move(next));
    rotations_.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<const TicketKeyRing::Keys> TicketKeyRing::keys_for_use() {
    auto k = keys_.load();
    const uint64_t now = steady_ms();
    if (now < k->next_rotation_ms) return k;
    std::lock_guard<std::mutex> lk(rotate_mu_);
    k = keys_.load();
    if (now >= k->next_rotation_ms) rotate_locked(now); // another worker may have rotated meanwhile
    return keys_.load();
}

// OpenSSL's contract (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)): encrypting, fill the name and IV and key both
// contexts, return 1; decrypting, return 0 for an unknown name (full handshake), 1 to accept, 2 to accept and
// issue a new ticket (the key is the previous one, or the session is TLS 1.3), negative on error.
int TicketKeyRing::on_ticket(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                             EVP_MAC_CTX* hctx, int enc) {
    auto* self = static_cast<TicketKeyRing*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
    if (!self) return -1;
    std::shared_ptr<const Keys> keys;
    try {
        keys = self->keys_for_use();
    } catch (const std::exception&) {
        return -1;
    }
    if (enc) {
        const Key& k = keys->current;
        std::memcpy(key_name, k.name, sizeof k.name);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
        if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1) return -1;
        return set_mac_key(hctx, k.hmac) ? 1 : -1;
    }
    const Key* k = nullptr;
    int ok = 1;
    if (std::memcmp(key_name, keys->current.name, sizeof keys->current.name) == 0) {
        k = &keys->current;
    } else if (keys->has_previous &&
               std::memcmp(key_name, keys->previous.name, sizeof keys->previous.name) == 0) {
        k = &keys->previous;
        ok = 2;
    }
    if (!k) return 0;
    // TLS 1.3 tickets are meant for one use (RFC 8446 C.4), and OpenSSL 3.0 sends a new one after a
    // resumption only when asked to: without it a client that never reuses a ticket resumes only every
    // other connection (measured: 10 of 19).
    if (SSL_version(ssl) >= TLS1_3_VERSION) ok = 2;
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, k->aes, iv) != 1) return -1;
    return set_mac_key(hctx, k->hmac) ? ok : -1;
}

} // namespace edgepair::net
