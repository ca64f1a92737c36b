#pragma once
// An IP network in CIDR form ("192.0.2.0/24", "2001:db8::/32", a bare address is /32 or /128), for lists of
// addresses that a policy treats apart (intrusion-protection exemptions). An IPv4 network also matches the
// IPv4-mapped IPv6 form of its addresses, which is how a dual-stack listener sees IPv4 clients.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/core/result.h"
#include "common/net/address.h"

namespace edgepair::net {

class Network {
  public:
    // Host bits set below the prefix ("192.0.2.1/24") are an error: the writer likely meant something else.
    static Result<Network> parse(std::string_view text);
    bool contains(const SockAddr& addr) const;
    std::string str() const;
    bool v6() const { return v6_; }
    unsigned prefix() const { return prefix_; }

  private:
    bool matches(const uint8_t* bytes, bool v6) const;
    std::array<uint8_t, 16> bytes_{};
    bool v6_ = false;
    unsigned prefix_ = 0;
};

} // namespace edgepair::net
