#pragma once
// One direction of SRTP/SRTCP with an SDES master key (libsrtp2). edge-c keeps one per direction per leg:
// keys never cross legs, so each packet is decrypted with the sender's key and re-encrypted with the key
// the next receiver was given. Any SSRC is accepted (ssrc_any_inbound / ssrc_any_outbound), as SDES does not
// announce SSRCs.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/core/result.h"
#include "common/media/sdp.h"

namespace edgepair::media {

// What protect/unprotect may append: room a caller's buffer must have past the packet.
inline constexpr size_t kSrtpMaxTrailer = 148; // libsrtp 2.x SRTP_MAX_TRAILER_LEN (144) + 4-byte SRTCP index

enum class SrtpStatus { Ok, AuthFail, ReplayFail, BadPacket, Error };
const char* to_string(SrtpStatus s);

class SrtpStream {
  public:
    enum class Direction { Inbound, Outbound };
    // master_key: kSrtpMasterKeyLen bytes. Initialises libsrtp once per process (thread-safe).
    static Result<std::unique_ptr<SrtpStream>> create(SrtpSuite suite, std::string_view master_key,
                                                      Direction dir);
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
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace edgepair::media
