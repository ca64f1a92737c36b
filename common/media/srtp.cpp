#include "common/media/srtp.h"

#include <fmt/format.h>

#include "common/media/srtp_impl.h"

namespace edgepair::media {

const char* to_string(SrtpStatus s) {
    switch (s) {
    case SrtpStatus::Ok:
        return "ok";
    case SrtpStatus::AuthFail:
        return "auth_fail";
    case SrtpStatus::ReplayFail:
        return "replay_fail";
    case SrtpStatus::BadPacket:
        return "bad_packet";
    case SrtpStatus::Error:
        return "error";
    }
    return "?";
}

const char* to_string(SrtpBackend b) {
    switch (b) {
    case SrtpBackend::OpenSSL:
        return "openssl";
    case SrtpBackend::Libsrtp2:
        return "libsrtp2";
    }
    return "?";
}

Result<std::unique_ptr<SrtpStream>> SrtpStream::create(SrtpSuite suite, std::string_view master_key,
                                                       Direction dir, SrtpBackend backend) {
    if (master_key.size() != kSrtpMasterKeyLen)
        return make_error(
            fmt::format("SRTP master key is {} bytes, expected {}", master_key.size(), kSrtpMasterKeyLen));
    auto impl = backend == SrtpBackend::Libsrtp2 ? detail::make_libsrtp_srtp(suite, master_key, dir)
                                                 : detail::make_openssl_srtp(suite, master_key, dir);
    if (!impl) return impl.error();
    std::unique_ptr<SrtpStream> s(new SrtpStream());
    s->dir_ = dir;
    s->impl_ = std::move(*impl);
    return s;
}

SrtpStream::~SrtpStream() = default;

SrtpStatus SrtpStream::protect_rtp(uint8_t* buf, size_t& len, size_t cap) {
    if (dir_ != Direction::Outbound) return SrtpStatus::Error;
    if (len > detail::kSrtpMaxPacket) return SrtpStatus::BadPacket;
    if (cap < len + kSrtpMaxTrailer) return SrtpStatus::Error; // the caller's buffer, not the packet
    return impl_->protect_rtp(buf, len);
}

SrtpStatus SrtpStream::unprotect_rtp(uint8_t* buf, size_t& len) {
    if (dir_ != Direction::Inbound) return SrtpStatus::Error;
    if (len > detail::kSrtpMaxPacket) return SrtpStatus::BadPacket;
    return impl_->unprotect_rtp(buf, len);
}

SrtpStatus SrtpStream::protect_rtcp(uint8_t* buf, size_t& len, size_t cap) {
    if (dir_ != Direction::Outbound) return SrtpStatus::Error;
    if (len > detail::kSrtpMaxPacket) return SrtpStatus::BadPacket;
    if (cap < len + kSrtpMaxTrailer) return SrtpStatus::Error; // the caller's buffer, not the packet
    return impl_->protect_rtcp(buf, len);
}

SrtpStatus SrtpStream::unprotect_rtcp(uint8_t* buf, size_t& len) {
    if (dir_ != Direction::Inbound) return SrtpStatus::Error;
    if (len > detail::kSrtpMaxPacket) return SrtpStatus::BadPacket;
    return impl_->unprotect_rtcp(buf, len);
}

} // namespace edgepair::media
