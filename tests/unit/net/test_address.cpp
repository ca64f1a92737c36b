#include <catch2/catch.hpp>

#include "common/net/address.h"

using namespace edgepair;

namespace {
net::SockAddr addr(const char* host, uint16_t port) {
    auto a = net::numeric_addr(host, port);
    REQUIRE(a);
    return *a;
}
} // namespace

TEST_CASE("SockAddr text: IPv4 edge values, IPv6 in brackets") {
    CHECK(addr("0.0.0.0", 0).str() == "0.0.0.0:0");
    CHECK(addr("255.255.255.255", 65535).str() == "255.255.255.255:65535");
    CHECK(addr("10.0.100.7", 5061).ip() == "10.0.100.7");
    CHECK(addr("127.0.0.1", 8443).str() == "127.0.0.1:8443");
    CHECK(addr("::1", 80).str() == "[::1]:80");
    CHECK(addr("[2001:db8::5]", 5222).ip() == "2001:db8::5");
}
