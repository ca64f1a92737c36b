#include "common/net/network.h"

#include <algorithm>
#include <charconv>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace edgepair::net {

Result<Network> Network::parse(std::string_view text) {
    Network n;
    auto slash = text.find('/');
    std::string host(text.substr(0, slash));
    if (inet_pton(AF_INET, host.c_str(), n.bytes_.data()) == 1) {
        n.v6_ = false;
    } else if (inet_pton(AF_INET6, host.c_str(), n.bytes_.data()) == 1) {
        n.v6_ = true;
    } else {
        return make_error("\"" + std::string(text) + "\" is not an IPv4 or IPv6 address or network");
    }
    const unsigned max = n.v6_ ? 128 : 32;
    n.prefix_ = max;
    if (slash != std::string_view::npos) {
        auto len = text.substr(slash + 1);
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), p);
        if (len.empty() || ec != std::errc() || ptr != len.data() + len.size() || p > max)
            return make_error("\"" + std::string(text) + "\": prefix length must be 0.." +
                              std::to_string(max));
        n.prefix_ = p;
    }
    for (unsigned bit = n.prefix_; bit < max; ++bit)
        if (n.bytes_[bit / 8] & (0x80 >> (bit % 8)))
            return make_error("\"" + std::string(text) + "\" has host bits set below the /" +
                              std::to_string(n.prefix_) + " prefix");
    return n;
}

bool Network::matches(const uint8_t* b, bool v6) const {
    if (v6 != v6_) return false;
    unsigned full = prefix_ / 8, rest = prefix_ % 8;
    if (!std::equal(b, b + full, bytes_.begin())) return false;
    if (!rest) return true;
    uint8_t mask = uint8_t(0xff << (8 - rest));
    return (b[full] & mask) == (bytes_[full] & mask);
}

bool Network::contains(const SockAddr& addr) const {
    if (addr.family() == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&addr.ss);
        return matches(reinterpret_cast<const uint8_t*>(&a->sin_addr), false);
    }
    if (addr.family() == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&addr.ss);
        const uint8_t* b = a->sin6_addr.s6_addr;
        static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!v6_ && std::equal(b, b + 12, kMapped)) return matches(b + 12, false);
        return matches(b, true);
    }
    return false;
}

std::string Network::str() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6_ ? AF_INET6 : AF_INET, bytes_.data(), buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(prefix_);
}

} // namespace edgepair::net
