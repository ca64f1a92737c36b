#include "common/link/control.h"

#include <algorithm>

#include <fmt/format.h>

namespace edgepair::link {

std::string frame_control(std::string_view payload) {
    std::string out;
    out.reserve(4 + payload.size());
    auto n = uint32_t(payload.size());
    out += char((n >> 24) & 0xff);
    out += char((n >> 16) & 0xff);
    out += char((n >> 8) & 0xff);
    out += char(n & 0xff);
    out.append(payload);
    return out;
}

size_t json_nesting_depth(std::string_view text, size_t limit) {
    size_t depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

bool ControlDecoder::feed(const char* data, size_t len,
                          const std::function<void(std::string_view)>& on_message) {
    if (!error_.empty()) return false;
    buf_.append(data, len);
    for (;;) {
        size_t avail = buf_.size() - off_;
        if (avail < 4) break;
        auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + off_);
        size_t n = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | size_t(p[3]);
        if (n > max_) {
            error_ = fmt::format("control message of {} bytes exceeds the {} byte limit", n, max_);
            return false;
        }
        if (avail < 4 + n) break;
        std::string_view msg(buf_.data() + off_ + 4, n);
        if (json_nesting_depth(msg, max_depth_) > max_depth_) {
            error_ = fmt::format("control message of {} bytes nests deeper than {} levels", n, max_depth_);
            return false;
        }
        on_message(msg);
        off_ += 4 + n;
    }
    // Compact only when the consumed prefix dominates, so a large message is not memmoved per DATA frame.
    if (off_ == buf_.size()) {
        buf_.clear();
        off_ = 0;
    } else if (off_ > buf_.size() / 2) {
        buf_.erase(0, off_);
        off_ = 0;
    }
    return true;
}

} // namespace edgepair::link
