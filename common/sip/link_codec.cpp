#include "common/sip/link_codec.h"

namespace edgepair::sip {

void link_encode(std::string& out, std::string_view message) {
    uint32_t n = uint32_t(message.size());
    out.push_back(char(n >> 24));
    out.push_back(char(n >> 16));
    out.push_back(char(n >> 8));
    out.push_back(char(n));
    out.append(message);
}

std::string link_encode(std::string_view message) {
    std::string out;
    out.reserve(message.size() + 4);
    link_encode(out, message);
    return out;
}

void LinkDecoder::feed(std::string_view bytes) {
    if (failed_) return;
    // Compacting per feed, not per message, keeps a read full of small messages linear.
    if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
}

LinkDecoder::Status LinkDecoder::next(std::string_view& out) {
    if (failed_) return Status::error;
    std::string_view d = std::string_view(buf_).substr(pos_);
    if (d.empty()) {
        // All consumed: free the storage (as sip::Framer does, for the same reason: a held flow keeps the
        // largest capacity any read ever needed, about 1 kB on each edge after minutes of refreshes).
        std::string().swap(buf_);
        pos_ = 0;
        return Status::need_more;
    }
    if (d.size() < 4) return Status::need_more;
    auto byte = [&](size_t i) { return uint32_t(uint8_t(d[i])); };
    size_t n = (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
    if (n == 0 || n > max_) {
        failed_ = true;
        buf_.clear();
        pos_ = 0;
        return Status::error;
    }
    if (d.size() < 4 + n) return Status::need_more;
    out = d.substr(4, n);
    pos_ += 4 + n;
    return Status::message;
}

} // namespace edgepair::sip
