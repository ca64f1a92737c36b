// The OpenSSL backend (srtp.h says why): RFC 3711 SRTP and SRTCP with AES_CM_128 and HMAC-SHA1, an SDES
// master key without MKI, key_derivation_rate 0. Only EVP does cryptography here; this file does the
// framing, the index and the replay bookkeeping, and keeps every OpenSSL context for the stream's life so
// that a packet costs no allocation and no key schedule.
#include <array>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/media/srtp_impl.h"

namespace edgepair::media::detail {

namespace {

constexpr size_t kKeyLen = 16, kSaltLen = 14, kAuthKeyLen = 20, kSha1Len = 20;
constexpr size_t kRtpHeaderLen = 12, kRtcpHeaderLen = 8, kSrtcpIndexLen = 4, kSrtcpTagLen = 10;
constexpr uint32_t kSrtcpEBit = 0x80000000u, kSrtcpMaxIndex = 0x7fffffffu;
constexpr uint64_t kMaxIndex = uint64_t(1) << 48; // RFC 3711 9.2: a key protects at most 2^48 packets
enum : uint8_t {
    kLabelRtpKey = 0,
    kLabelRtpAuth = 1,
    kLabelRtpSalt = 2,
    kLabelRtcpKey = 3,
    kLabelRtcpAuth = 4,
    kLabelRtcpSalt = 5,
};
// The windows of libsrtp as srtp_libsrtp.cpp configures it (window_size 1024; SRTCP's is fixed at 128), so
// switching backends does not change which late packets a call loses.
constexpr uint64_t kRtpWindow = 1024, kRtcpWindow = 128;

// Fetched once per process and never freed: streams live on any worker until exit.
EVP_CIPHER* aes_128_ctr() {
    static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", nullptr);
    return c;
}
EVP_MAC* hmac() {
    static EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    return m;
}

uint16_t load16(const uint8_t* p) {
    return uint16_t((p[0] << 8) | p[1]);
}
uint32_t load32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
void store32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24);
    p[1] = uint8_t(v >> 16);
    p[2] = uint8_t(v >> 8);
    p[3] = uint8_t(v);
}

// One AES-128 key. Re-initialising with only an IV keeps the expanded key, so a packet costs the counter
// blocks and nothing else.
class Cipher {
  public:
    Cipher() = default;
    Cipher(const Cipher&) = delete;
    Cipher& operator=(const Cipher&) = delete;
    ~Cipher() { EVP_CIPHER_CTX_free(ctx_); }
    bool init(const uint8_t key[kKeyLen]) {
        ctx_ = EVP_CIPHER_CTX_new();
        return ctx_ && aes_128_ctr() && EVP_EncryptInit_ex2(ctx_, aes_128_ctr(), key, nullptr, nullptr) == 1;
    }
    // Counter mode is its own inverse: the same call encrypts and decrypts. SRTP's counter is the IV's low
    // 16 bits and a datagram is far below 2^16 blocks, so OpenSSL's 128-bit increment never carries out.
    bool xor_keystream(const uint8_t iv[16], uint8_t* p, size_t n) {
        if (EVP_EncryptInit_ex2(ctx_, nullptr, nullptr, iv, nullptr) != 1) return false;
        int out = 0;
        return n == 0 || (EVP_EncryptUpdate(ctx_, p, &out, p, int(n)) == 1 && size_t(out) == n);
    }

  private:
    EVP_CIPHER_CTX* ctx_ = nullptr;
};

// HMAC-SHA1 under one key. EVP_MAC_init without a key restarts from the keyed inner and outer states
// instead of hashing the key again. (OpenSSL 3.0 does that by duplicating a digest context, so libcrypto
// still allocates once per packet inside; this code does not.)
class Mac {
  public:
    Mac() = default;
    Mac(const Mac&) = delete;
    Mac& operator=(const Mac&) = delete;
    ~Mac() { EVP_MAC_CTX_free(ctx_); }
    bool init(const uint8_t key[kAuthKeyLen]) {
        if (!hmac()) return false;
        ctx_ = EVP_MAC_CTX_new(hmac());
        char digest[] = "SHA1";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
        return ctx_ && EVP_MAC_init(ctx_, key, kAuthKeyLen, params) == 1;
    }
    bool tag(const uint8_t* a, size_t an, const uint8_t* b, size_t bn, uint8_t out[kSha1Len]) {
        size_t n = 0;
        return EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1 && EVP_MAC_update(ctx_, a, an) == 1 &&
               (bn == 0 || EVP_MAC_update(ctx_, b, bn) == 1) && EVP_MAC_final(ctx_, out, &n, kSha1Len) == 1 &&
               n == kSha1Len;
    }

  private:
    EVP_MAC_CTX* ctx_ = nullptr;
};

enum class Seen { New, Repeat, TooOld };

// The last N indices: the highest accepted and one bit per index, kept modulo N. A fresh window has
// "highest" 0 with no bit set, as libsrtp starts, so index 0 is still accepted once.
template <uint64_t N> struct ReplayWindow {
    static_assert(N % 64 == 0);
    uint64_t top = 0;
    std::array<uint64_t, N / 64> bits{};

    Seen check(uint64_t idx) const {
        if (idx > top) return Seen::New;
        if (top - idx >= N) return Seen::TooOld;
        return get(idx) ? Seen::Repeat : Seen::New;
    }
    void add(uint64_t idx) {
        if (idx > top) {
            // The slots of the indices skipped over still hold indices that have now left the window.
            if (idx - top >= N)
                bits.fill(0);
            else
                for (uint64_t i = top + 1; i < idx; ++i)
                    bits[(i % N) / 64] &= ~(uint64_t(1) << (i % 64));
            top = idx;
        }
        bits[(idx % N) / 64] |= uint64_t(1) << (idx % 64);
    }

  private:
    bool get(uint64_t idx) const { return (bits[(idx % N) / 64] >> (idx % 64)) & 1; }
};

struct SsrcState {
    uint32_t ssrc = 0;
    ReplayWindow<kRtpWindow> rtp;   // packet indices (ROC << 16 | SEQ), both directions
    ReplayWindow<kRtcpWindow> rtcp; // SRTCP indices received
    uint32_t rtcp_next = 0;         // the next SRTCP index to send (RFC 3711 3.4: from 0)
};

// RFC 3711 3.3.1: the index with sequence number seq nearest the highest one seen. Until that passes
// 2^15 the ROC is taken as 0, as libsrtp does, so a stream's first packets are never pushed to ROC -1.
uint64_t estimate_index(uint64_t top, uint16_t seq) {
    int64_t delta = int64_t(seq) - int64_t(top & 0xffff);
    if (top > 0x8000) {
        if (delta > 0x8000)
            delta -= 0x10000;
        else if (delta < -0x8000)
            delta += 0x10000;
    }
    return uint64_t(int64_t(top) + delta);
}

// RFC 3711 4.1.1: the counter block is the session salt XOR SSRC at bit 64 XOR the index at bit 16.
void make_iv(uint8_t iv[16], const uint8_t salt[kSaltLen], uint32_t ssrc, uint64_t index) {
    std::memcpy(iv, salt, kSaltLen);
    iv[14] = iv[15] = 0;
    for (int i = 0; i < 4; ++i)
        iv[4 + i] ^= uint8_t(ssrc >> (24 - 8 * i));
    for (int i = 0; i < 6; ++i)
        iv[8 + i] ^= uint8_t(index >> (40 - 8 * i));
}

// The RTP header with its CSRCs and extension: its length, or 0 if it does not fit in n bytes.
size_t rtp_header_len(const uint8_t* p, size_t n) {
    if (n < kRtpHeaderLen) return 0;
    size_t h = kRtpHeaderLen + 4 * size_t(p[0] & 0x0f);
    if (p[0] & 0x10) {
        if (n < h + 4) return 0;
        h += 4 + 4 * size_t(load16(p + h + 2));
    }
    return h <= n ? h : 0;
}

class OpensslImpl final : public SrtpImpl {
  public:
    explicit OpensslImpl(size_t rtp_tag_len) : rtp_tag_len_(rtp_tag_len) {}
    ~OpensslImpl() override {
        OPENSSL_cleanse(rtp_salt_, sizeof rtp_salt_);
        OPENSSL_cleanse(rtcp_salt_, sizeof rtcp_salt_);
    }

    bool init(const uint8_t* master) {
        const uint8_t* salt = master + kKeyLen;
        uint8_t key[kKeyLen], auth[kAuthKeyLen];
        bool ok = srtp_derive(master, salt, kLabelRtpKey, key, sizeof key) && rtp_cipher_.init(key) &&
                  srtp_derive(master, salt, kLabelRtpAuth, auth, sizeof auth) && rtp_mac_.init(auth) &&
                  srtp_derive(master, salt, kLabelRtpSalt, rtp_salt_, sizeof rtp_salt_) &&
                  srtp_derive(master, salt, kLabelRtcpKey, key, sizeof key) && rtcp_cipher_.init(key) &&
                  srtp_derive(master, salt, kLabelRtcpAuth, auth, sizeof auth) && rtcp_mac_.init(auth) &&
                  srtp_derive(master, salt, kLabelRtcpSalt, rtcp_salt_, sizeof rtcp_salt_);
        OPENSSL_cleanse(key, sizeof key);
        OPENSSL_cleanse(auth, sizeof auth);
        return ok;
    }

    SrtpStatus protect_rtp(uint8_t* buf, size_t& len) override {
        size_t hdr = rtp_header_len(buf, len);
        if (hdr == 0) return SrtpStatus::BadPacket;
        const uint32_t ssrc = load32(buf + 8);
        SsrcState* st = find_or_add(ssrc);
        if (!st) return SrtpStatus::BadPacket;
        // The sender estimates its index from the sequence number too: edge-c forwards the far end's
        // numbering, reordering included, rather than numbering packets itself.
        uint64_t idx = estimate_index(st->rtp.top, load16(buf + 2));
        if (idx >= kMaxIndex) return SrtpStatus::Error;
        switch (st->rtp.check(idx)) {
        case Seen::TooOld:
            return SrtpStatus::ReplayFail;
        case Seen::Repeat:
            // A packet the far end re-sent, re-protected with the same index (libsrtp's allow_repeat_tx).
            break;
        case Seen::New:
            st->rtp.add(idx);
            break;
        }
        uint8_t iv[16], mac[kSha1Len], roc[4];
        make_iv(iv, rtp_salt_, ssrc, idx);
        if (!rtp_cipher_.xor_keystream(iv, buf + hdr, len - hdr)) return SrtpStatus::Error;
        store32(roc, uint32_t(idx >> 16));
        if (!rtp_mac_.tag(buf, len, roc, sizeof roc, mac)) return SrtpStatus::Error;
        std::memcpy(buf + len, mac, rtp_tag_len_);
        len += rtp_tag_len_;
        return SrtpStatus::Ok;
    }

    SrtpStatus unprotect_rtp(uint8_t* buf, size_t& len) override {
        if (len < rtp_tag_len_) return SrtpStatus::BadPacket;
        const size_t body = len - rtp_tag_len_;
        size_t hdr = rtp_header_len(buf, body);
        if (hdr == 0) return SrtpStatus::BadPacket;
        const uint32_t ssrc = load32(buf + 8);
        const uint16_t seq = load16(buf + 2);
        SsrcState* st = find(ssrc);
        if (!st && count_ == states_.size()) return SrtpStatus::BadPacket;
        // A new SSRC starts at ROC 0 with this sequence number; it gets state only once authenticated, so
        // forged packets cannot fill the table.
        uint64_t idx = st ? estimate_index(st->rtp.top, seq) : seq;
        if (idx >= kMaxIndex) return SrtpStatus::BadPacket;
        if (st && st->rtp.check(idx) != Seen::New) return SrtpStatus::ReplayFail;
        uint8_t iv[16], mac[kSha1Len], roc[4];
        store32(roc, uint32_t(idx >> 16));
        if (!rtp_mac_.tag(buf, body, roc, sizeof roc, mac)) return SrtpStatus::Error;
        if (CRYPTO_memcmp(mac, buf + body, rtp_tag_len_) != 0) return SrtpStatus::AuthFail;
        make_iv(iv, rtp_salt_, ssrc, idx);
        if (!rtp_cipher_.xor_keystream(iv, buf + hdr, body - hdr)) return SrtpStatus::Error;
        if (!st) st = add(ssrc);
        st->rtp.add(idx);
        len = body;
        return SrtpStatus::Ok;
    }

    SrtpStatus protect_rtcp(uint8_t* buf, size_t& len) override {
        if (len < kRtcpHeaderLen) return SrtpStatus::BadPacket;
        const uint32_t ssrc = load32(buf + 4);
        SsrcState* st = find_or_add(ssrc);
        if (!st) return SrtpStatus::BadPacket;
        // RFC 3711 9.2: the SRTCP index must not wrap under one key.
        if (st->rtcp_next > kSrtcpMaxIndex) return SrtpStatus::Error;
        const uint32_t idx = st->rtcp_next++;
        uint8_t iv[16], mac[kSha1Len];
        make_iv(iv, rtcp_salt_, ssrc, idx);
        if (!rtcp_cipher_.xor_keystream(iv, buf + kRtcpHeaderLen, len - kRtcpHeaderLen))
            return SrtpStatus::Error;
        store32(buf + len, kSrtcpEBit | idx);
        len += kSrtcpIndexLen;
        if (!rtcp_mac_.tag(buf, len, nullptr, 0, mac)) return SrtpStatus::Error;
        std::memcpy(buf + len, mac, kSrtcpTagLen);
        len += kSrtcpTagLen;
        return SrtpStatus::Ok;
    }

    SrtpStatus unprotect_rtcp(uint8_t* buf, size_t& len) override {
        if (len < kRtcpHeaderLen + kSrtcpIndexLen + kSrtcpTagLen) return SrtpStatus::BadPacket;
        const size_t body = len - kSrtcpTagLen;
        const uint32_t trailer = load32(buf + body - kSrtcpIndexLen);
        // Unencrypted SRTCP (E = 0) is not what these suites send; libsrtp refuses it before the tag too.
        if (!(trailer & kSrtcpEBit)) return SrtpStatus::BadPacket;
        const uint32_t idx = trailer & kSrtcpMaxIndex;
        const uint32_t ssrc = load32(buf + 4);
        SsrcState* st = find(ssrc);
        if (!st && count_ == states_.size()) return SrtpStatus::BadPacket;
        if (st && st->rtcp.check(idx) != Seen::New) return SrtpStatus::ReplayFail;
        uint8_t iv[16], mac[kSha1Len];
        if (!rtcp_mac_.tag(buf, body, nullptr, 0, mac)) return SrtpStatus::Error;
        if (CRYPTO_memcmp(mac, buf + body, kSrtcpTagLen) != 0) return SrtpStatus::AuthFail;
        make_iv(iv, rtcp_salt_, ssrc, idx);
        if (!rtcp_cipher_.xor_keystream(iv, buf + kRtcpHeaderLen, body - kSrtcpIndexLen - kRtcpHeaderLen))
            return SrtpStatus::Error;
        if (!st) st = add(ssrc);
        st->rtcp.add(idx);
        len = body - kSrtcpIndexLen;
        return SrtpStatus::Ok;
    }

  private:
    SsrcState* find(uint32_t ssrc) {
        if (count_ && states_[last_].ssrc == ssrc) return &states_[last_];
        for (size_t i = 0; i < count_; ++i)
            if (states_[i].ssrc == ssrc) {
                last_ = i;
                return &states_[i];
            }
        return nullptr;
    }
    SsrcState* add(uint32_t ssrc) {
        if (count_ == states_.size()) return nullptr;
        last_ = count_++;
        states_[last_] = SsrcState{};
        states_[last_].ssrc = ssrc;
        return &states_[last_];
    }
    SsrcState* find_or_add(uint32_t ssrc) {
        SsrcState* st = find(ssrc);
        return st ? st : add(ssrc);
    }

    const size_t rtp_tag_len_;
    Cipher rtp_cipher_, rtcp_cipher_;
    Mac rtp_mac_, rtcp_mac_;
    uint8_t rtp_salt_[kSaltLen] = {}, rtcp_salt_[kSaltLen] = {};
    // State per SSRC, at most kSrtpMaxSsrcs: a call has one or a few SSRCs per direction, and a fixed table
    // keeps the per-packet path free of allocation and its memory bounded whatever a peer sends. A new
    // SSRC beyond it is refused (BadPacket) rather than evicting one: an evicted receiver would accept
    // that SSRC's old packets again, and an evicted sender would restart its index and reuse keystream.
    // libsrtp2 has no such bound. Inbound, only an authenticated packet takes a slot.
    std::array<SsrcState, kSrtpMaxSsrcs> states_{};
    size_t count_ = 0, last_ = 0;
};

} // namespace

bool srtp_aes_cm_xor(const uint8_t key[16], const uint8_t iv[16], uint8_t* data, size_t n) {
    Cipher c;
    return c.init(key) && c.xor_keystream(iv, data, n);
}

bool srtp_derive(const uint8_t master_key[16], const uint8_t master_salt[14], uint8_t label, uint8_t* out,
                 size_t n) {
    // x = (label || index DIV kdr) XOR master salt, the 56-bit key_id right-aligned; with kdr 0 the index
    // part is zero, so only the label's byte changes. The session key is AES-CM(master key, x * 2^16).
    uint8_t iv[16] = {};
    std::memcpy(iv, master_salt, kSaltLen);
    iv[7] ^= label;
    std::memset(out, 0, n);
    return srtp_aes_cm_xor(master_key, iv, out, n);
}

Result<std::unique_ptr<SrtpImpl>> make_openssl_srtp(SrtpSuite suite, std::string_view master_key,
                                                    SrtpStream::Direction) {
    // RFC 4568 6.2.2 / RFC 3711 7.5: the _32 suite shortens the SRTP tag only; SRTCP keeps 80 bits.
    auto impl = std::make_unique<OpensslImpl>(suite == SrtpSuite::AES_CM_128_HMAC_SHA1_32 ? 4 : 10);
    if (!impl->init(reinterpret_cast<const uint8_t*>(master_key.data())))
        return make_error("SRTP: OpenSSL AES-128-CTR / HMAC-SHA1 context set-up failed");
    return std::unique_ptr<SrtpImpl>(std::move(impl));
}

} // namespace edgepair::media::detail
