#include "tools/edge-load/call_media.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>

namespace edgepair::load {

namespace {

constexpr media::SrtpSuite kSuite = media::SrtpSuite::AES_CM_128_HMAC_SHA1_80;
constexpr size_t kRtpHeader = 12;
constexpr unsigned kIntervalMs = 20; // one packet per 20 ms, as a G.711 call sends
constexpr size_t kPayload = 160;     // 20 ms of G.711 at 8 kHz
constexpr unsigned kGraceMs = 300;   // after the last packet, for the last ones to come back
constexpr size_t kBuf = 2048;        // a packet back larger than this is not ours
constexpr uint8_t kPayloadType = 0;  // PCMU, the offer's first format
constexpr media::SrtpBackend kClientCipher = media::SrtpBackend::Libsrtp2;

} // namespace

Result<std::unique_ptr<CallMedia>> CallMedia::open(core::Loop& loop, const std::string& local_ip,
                                                   std::mt19937_64& rng) {
    auto addr = net::numeric_addr(local_ip, 0);
    if (!addr) return make_error(fmt::format("media socket on {}: {}", local_ip, addr.error().message));
    auto sock = media::UdpSocket::bind(*addr);
    if (!sock) return make_error(fmt::format("media socket on {}: {}", local_ip, sock.error().message));
    auto m = std::unique_ptr<CallMedia>(new CallMedia(loop, std::move(*sock), rng));
    auto out = media::SrtpStream::create(kSuite, m->ours_.master_key, media::SrtpStream::Direction::Outbound,
                                         kClientCipher);
    if (!out) return make_error(fmt::format("SRTP (our key): {}", out.error().message));
    m->out_ = std::move(*out);
    return m;
}

CallMedia::CallMedia(core::Loop& loop, media::UdpSocket sock, std::mt19937_64& rng)
    : loop_(loop), sock_(std::move(sock)), port_(sock_.local_port()),
      ours_(media::CryptoAttr::random(1, kSuite)), ssrc_(uint32_t(rng())), seq_(uint16_t(rng())),
      ts_(uint32_t(rng())) {}

CallMedia::~CallMedia() = default;

std::string CallMedia::crypto_attr() const {
    return ours_.format();
}

std::string CallMedia::unused_crypto_attr() {
    return media::CryptoAttr::random(1, kSuite).format();
}

Result<void> CallMedia::start(std::string_view answer_sdp, double seconds, std::function<void()> done) {
    auto sdp = media::Sdp::parse(answer_sdp);
    if (!sdp) return make_error(fmt::format("answer SDP: {}", sdp.error().message));
    size_t i = 0;
    while (i < sdp->media.size() && sdp->media[i].media != "audio")
        ++i;
    if (i == sdp->media.size() || sdp->media[i].port == 0) return make_error("answer without audio");
    auto ip = sdp->address_of(i);
    if (!ip) return make_error("answer without a connection address for audio");
    auto peer = net::numeric_addr(*ip, sdp->media[i].port);
    if (!peer) return make_error(fmt::format("answer's audio address {}: {}", *ip, peer.error().message));
    std::optional<media::CryptoAttr> crypto;
    for (auto v : sdp->media[i].attributes("crypto"))
        if ((crypto = media::CryptoAttr::parse(v)) && crypto->suite == kSuite) break;
    if (!crypto || crypto->suite != kSuite)
        return make_error("answer without an AES_CM_128_HMAC_SHA1_80 key");
    auto in = media::SrtpStream::create(kSuite, crypto->master_key, media::SrtpStream::Direction::Inbound,
                                        kClientCipher);
    if (!in) return make_error(fmt::format("SRTP (the answer's key): {}", in.error().message));
    in_ = std::move(*in);
    peer_ = *peer;
    to_send_ = std::max<uint64_t>(1, uint64_t(seconds * 1000.0 / kIntervalMs + 0.5));
    done_ = std::move(done);
    watch_ = std::make_unique<core::IoWatcher>(loop_, sock_.fd(), core::IoWatcher::Interest::ReadLevel,
                                               [this](short) { on_readable(); });
    timer_ = std::make_unique<core::Timer>(loop_, [this] { tick(); });
    tick();
    return {};
}

void CallMedia::tick() {
    if (draining_) {
        watch_.reset(); // packets later than the grace period are not counted
        auto done = std::move(done_);
        if (done) done(); // must not destroy this: we are inside timer_'s callback
        return;
    }
    std::array<uint8_t, kRtpHeader + kPayload + media::kSrtpMaxTrailer> pkt{};
    pkt[0] = 0x80; // version 2, no padding, no extension, no CSRC
    pkt[1] = kPayloadType;
    pkt[2] = uint8_t(seq_ >> 8);
    pkt[3] = uint8_t(seq_);
    for (int b = 0; b < 4; ++b) {
        pkt[4 + b] = uint8_t(ts_ >> (24 - 8 * b));
        pkt[8 + b] = uint8_t(ssrc_ >> (24 - 8 * b));
    }
    std::memset(pkt.data() + kRtpHeader, 0xff, kPayload); // PCMU silence
    size_t len = kRtpHeader + kPayload;
    if (out_->protect_rtp(pkt.data(), len, pkt.size()) == media::SrtpStatus::Ok &&
        sock_.send_to(pkt.data(), len, peer_))
        ++counts_.sent;
    ++seq_;
    ts_ += kPayload;
    if (--to_send_ == 0) {
        draining_ = true;
        timer_->arm(kGraceMs);
    } else {
        timer_->arm(kIntervalMs);
    }
}

void CallMedia::on_readable() {
    std::array<uint8_t, kBuf> buf;
    net::SockAddr from;
    // Level-triggered: what is left after a bounded number of reads comes with the next event.
    for (int n = 0; n < 64; ++n) {
        ssize_t r = sock_.recv_from(buf.data(), buf.size(), from);
        if (r < 0) return;
        size_t len = size_t(r);
        if (len > buf.size() || !net::same_host(from, peer_) || from.port() != peer_.port()) {
            ++counts_.bad;
            continue;
        }
        if (in_->unprotect_rtp(buf.data(), len) == media::SrtpStatus::Ok)
            ++counts_.received;
        else
            ++counts_.bad;
    }
}

} // namespace edgepair::load
