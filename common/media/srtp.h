#pragma once
// One direction of SRTP/SRTCP with an SDES master key. edge-c keeps one per direction per leg: keys never
// cross legs, so each packet is decrypted with the sender's key and re-encrypted with the key the next
// receiver was given. Any SSRC is accepted, as SDES does not announce SSRCs.
//
// Two backends do the work (SrtpBackend). OpenSSL is the default: Debian's libsrtp2 is built against NSS,
// whose per-call overhead cost about 21 % of edge-c's CPU in the media relay (issue 18), where OpenSSL's
// EVP AES-CTR and HMAC-SHA1 run with AES-NI and no per-packet set-up. libsrtp2 stays as the interop
// reference: the tests check each backend against the other, both ways, and it can be chosen per stream.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/core/result.h"
#include "common/media/sdp.h"

namespace edgepair::media {

// What protect/unprotect may append: room a caller's buffer must have past the packet.
inline constexpr size_t kSrtpMaxTrailer = 148; // libsrtp 2.x SRTP_MAX_TRAILER_LEN (144) + 4-byte SRTCP index

// The OpenSSL backend keeps state for at most this many SSRCs per stream (see srtp_openssl.cpp).
inline constexpr size_t kSrtpMaxSsrcs = 16;

enum class SrtpStatus { Ok, AuthFail, ReplayFail, BadPacket, Error };
const char* to_string(SrtpStatus s);

enum class SrtpBackend { OpenSSL, Libsrtp2 };
inline constexpr SrtpBackend kDefaultSrtpBackend = SrtpBackend::OpenSSL;
const char* to_string(SrtpBackend b);

namespace detail {
class SrtpImpl;
}

class SrtpStream {
  public:
    enum class Direction { Inbound, Outbound };
    // master_key: kSrtpMasterKeyLen bytes.
    static Result<std::unique_ptr<SrtpStream>> create(SrtpSuite suite, std::string_view master_key,
                                                      Direction dir,
                                                      SrtpBackend backend = kDefaultSrtpBackend);
    ~SrtpStream();
    SrtpStream(const SrtpStream&) = delete;
    SrtpStream& operator=(const SrtpStream&) = delete;

    // In place. len is updated. protect_* needs cap >= len + kSrtpMaxTrailer.
    SrtpStatus protect_rtp(uint8_t* buf, size_t& len, size_t cap);
    SrtpStatus unprotect_rtp(uint8_t* buf, size_t& len);
    SrtpStatus protect_rtcp(uint8_t* buf, size_t& len, size_t cap);
    SrtpStatus unprotect_rtcp(uint8_t* buf, size_t& len);

  private:
    SrtpStream() = default;
    Direction dir_ = Direction::Inbound;
    std::unique_ptr<detail::SrtpImpl> impl_;
};

} // namespace edgepair::media
