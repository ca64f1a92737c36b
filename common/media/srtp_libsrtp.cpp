// The libsrtp2 backend: the interop reference for srtp_openssl.cpp (see srtp.h).
#include <cstring>
#include <mutex>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <srtp2/srtp.h>

#include "common/media/srtp_impl.h"

namespace edgepair::media::detail {

// srtp_protect_rtcp writes the SRTCP index (4 bytes) on top of tag and MKI, so its worst case is 4 more
// than SRTP_MAX_TRAILER_LEN; kSrtpMaxTrailer covers both calls.
static_assert(kSrtpMaxTrailer >= SRTP_MAX_TRAILER_LEN + 4);
static_assert(kSrtpMaxPacket < size_t(INT32_MAX));

namespace {

std::once_flag g_init_once;
srtp_err_status_t g_init_status = srtp_err_status_ok;

// libsrtp's crypto kernel is process-global. It is initialised once and never shut down: streams may live
// on any worker until exit, and srtp_shutdown under them would free the cipher types they point at.
srtp_err_status_t init_libsrtp() {
    std::call_once(g_init_once, [] { g_init_status = srtp_init(); });
    return g_init_status;
}

SrtpStatus map_status(srtp_err_status_t st) {
    switch (st) {
    case srtp_err_status_ok:
        return SrtpStatus::Ok;
    case srtp_err_status_auth_fail:
        return SrtpStatus::AuthFail;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
    case srtp_err_status_pkt_idx_old:
        return SrtpStatus::ReplayFail;
    case srtp_err_status_bad_param:
    case srtp_err_status_parse_err:
    case srtp_err_status_bad_mki:
    // SRTCP whose E bit disagrees with the policy (unencrypted SRTCP, or noise): the packet, not us.
    case srtp_err_status_cant_check:
        return SrtpStatus::BadPacket;
    default:
        return SrtpStatus::Error;
    }
}

class LibsrtpImpl final : public SrtpImpl {
  public:
    srtp_t session = nullptr;
    ~LibsrtpImpl() override {
        if (session) srtp_dealloc(session);
    }

    SrtpStatus protect_rtp(uint8_t* buf, size_t& len) override { return call(srtp_protect, buf, len); }
    SrtpStatus unprotect_rtp(uint8_t* buf, size_t& len) override { return call(srtp_unprotect, buf, len); }
    SrtpStatus protect_rtcp(uint8_t* buf, size_t& len) override { return call(srtp_protect_rtcp, buf, len); }
    SrtpStatus unprotect_rtcp(uint8_t* buf, size_t& len) override {
        return call(srtp_unprotect_rtcp, buf, len);
    }

  private:
    template <class F> SrtpStatus call(F f, uint8_t* buf, size_t& len) {
        int n = int(len);
        SrtpStatus st = map_status(f(session, buf, &n));
        if (st == SrtpStatus::Ok) len = size_t(n);
        return st;
    }
};

} // namespace

Result<std::unique_ptr<SrtpImpl>> make_libsrtp_srtp(SrtpSuite suite, std::string_view master_key,
                                                    SrtpStream::Direction dir) {
    if (srtp_err_status_t st = init_libsrtp(); st != srtp_err_status_ok)
        return make_error(fmt::format("srtp_init failed ({})", int(st)));

    srtp_policy_t policy;
    std::memset(&policy, 0, sizeof policy);
    if (suite == SrtpSuite::AES_CM_128_HMAC_SHA1_32)
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
    else
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    // RFC 4568 6.2.2 / RFC 3711 7.5: the _32 suite shortens the SRTP tag only; SRTCP keeps 80 bits.
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    const bool inbound = dir == SrtpStream::Direction::Inbound;
    policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    unsigned char key[kSrtpMasterKeyLen];
    std::memcpy(key, master_key.data(), sizeof key);
    policy.key = key;
    policy.window_size = 1024;
    // edge-c is a B2BUA: a packet re-sent by the far end is re-protected with the same index and payload.
    policy.allow_repeat_tx = inbound ? 0 : 1;
    policy.next = nullptr;

    auto impl = std::make_unique<LibsrtpImpl>();
    srtp_err_status_t st = srtp_create(&impl->session, &policy);
    OPENSSL_cleanse(key, sizeof key);
    if (st != srtp_err_status_ok) {
        impl->session = nullptr;
        return make_error(fmt::format("srtp_create failed ({})", int(st)));
    }
    return std::unique_ptr<SrtpImpl>(std::move(impl));
}

} // namespace edgepair::media::detail
