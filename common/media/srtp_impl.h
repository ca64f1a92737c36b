#pragma once
// The backends behind SrtpStream (srtp_openssl.cpp, srtp_libsrtp.cpp). Not for use outside common/media
// and its tests: SrtpStream has already checked the direction, the length and the caller's room.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/core/result.h"
#include "common/media/srtp.h"

namespace edgepair::media::detail {

// Beyond this, a length is not a datagram (and libsrtp takes int lengths).
inline constexpr size_t kSrtpMaxPacket = 65536;

class SrtpImpl {
  public:
    virtual ~SrtpImpl() = default;
    virtual SrtpStatus protect_rtp(uint8_t* buf, size_t& len) = 0;
    virtual SrtpStatus unprotect_rtp(uint8_t* buf, size_t& len) = 0;
    virtual SrtpStatus protect_rtcp(uint8_t* buf, size_t& len) = 0;
    virtual SrtpStatus unprotect_rtcp(uint8_t* buf, size_t& len) = 0;
};

Result<std::unique_ptr<SrtpImpl>> make_openssl_srtp(SrtpSuite suite, std::string_view master_key,
                                                    SrtpStream::Direction dir);
Result<std::unique_ptr<SrtpImpl>> make_libsrtp_srtp(SrtpSuite suite, std::string_view master_key,
                                                    SrtpStream::Direction dir);

// The OpenSSL backend's building blocks, exposed for the RFC 3711 Appendix B vectors.
// XORs n bytes of the AES-128 counter-mode keystream that starts at iv into data.
bool srtp_aes_cm_xor(const uint8_t key[16], const uint8_t iv[16], uint8_t* data, size_t n);
// RFC 3711 4.3.1 with key_derivation_rate 0: n bytes of the session key with this label.
bool srtp_derive(const uint8_t master_key[16], const uint8_t master_salt[14], uint8_t label, uint8_t* out,
                 size_t n);

} // namespace edgepair::media::detail
