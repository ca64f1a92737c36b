#pragma once
// The media of one sip-call call, as a Jabber client sends it: SRTP audio (SDES, AES_CM_128_HMAC_SHA1_80)
// at a G.711 pace from a UDP port named in the offer, to the address and port of the answer, and the SRTP
// that comes back decrypted with the answer's key. edge-c turns the client's SRTP into plain RTP for the
// internal endpoint and back, so a packet that comes back has crossed both edges twice and been decrypted
// and re-encrypted by edge-c each way.
//
// The ciphers are libsrtp2's (common/media's SrtpBackend::Libsrtp2) while edge-c uses OpenSSL by default:
// the two ends of the client leg are different SRTP implementations.
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/media/sdp.h"
#include "common/media/srtp.h"
#include "common/media/udp.h"
#include "common/net/address.h"

namespace edgepair::load {

struct MediaCounts {
    uint64_t sent = 0;     // SRTP packets sent
    uint64_t received = 0; // SRTP packets back that authenticated with the answer's key
    uint64_t bad = 0;      // packets back that did not (authentication, replay, malformed, stray source)
};

class CallMedia {
  public:
    // A UDP port on local_ip for the offer, and a fresh SDES key.
    static Result<std::unique_ptr<CallMedia>> open(core::Loop& loop, const std::string& local_ip,
                                                   std::mt19937_64& rng);
    ~CallMedia();
    CallMedia(const CallMedia&) = delete;
    CallMedia& operator=(const CallMedia&) = delete;

    uint16_t port() const { return port_; }
    // The offer's a=crypto value: "1 AES_CM_128_HMAC_SHA1_80 inline:<key>".
    std::string crypto_attr() const;
    // The same with a fresh key, for an offer whose media is never sent.
    static std::string unused_crypto_attr();

    // Sends `seconds` of audio (a packet every 20 ms) to the answer's audio address with our key and
    // reads what comes back; `done` runs once the sending is over and a short grace period for the last
    // packets back has passed (`done` must not destroy this CallMedia). Error (nothing started) when the
    // answer has no usable audio address or key.
    Result<void> start(std::string_view answer_sdp, double seconds, std::function<void()> done);
    const MediaCounts& counts() const { return counts_; }

  private:
    CallMedia(core::Loop& loop, media::UdpSocket sock, std::mt19937_64& rng);
    void tick();
    void on_readable();

    core::Loop& loop_;
    media::UdpSocket sock_;
    uint16_t port_ = 0;
    media::CryptoAttr ours_; // our SDES key
    uint32_t ssrc_;
    uint16_t seq_;
    uint32_t ts_;
    std::unique_ptr<media::SrtpStream> out_, in_;
    net::SockAddr peer_;
    std::unique_ptr<core::IoWatcher> watch_;
    std::unique_ptr<core::Timer> timer_;
    uint64_t to_send_ = 0;
    bool draining_ = false;
    std::function<void()> done_;
    MediaCounts counts_;
};

} // namespace edgepair::load
