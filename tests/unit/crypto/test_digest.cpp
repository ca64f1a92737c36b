#include <catch2/catch.hpp>

#include <string>

#include "common/crypto/digest.h"

using namespace edgepair::crypto;

namespace {
std::string hex(const Sha256Digest& d) {
    static const char* k = "0123456789abcdef";
    std::string s;
    for (uint8_t b : d) {
        s.push_back(k[b >> 4]);
        s.push_back(k[b & 15]);
    }
    return s;
}
} // namespace

TEST_CASE("SHA-256 matches the FIPS 180-2 example") {
    Sha256 sha;
    CHECK(hex(sha(std::string_view("abc"))) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex(sha(std::string_view(""))) ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("HMAC-SHA256 matches RFC 4231 test cases 1 and 2, in one part or several") {
    std::string key1(20, '\x0b');
    auto h1 = HmacSha256::create(bytes(key1));
    REQUIRE(h1);
    CHECK(hex((**h1)(bytes("Hi There"))) ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    auto h2 = HmacSha256::create(bytes("Jefe"));
    REQUIRE(h2);
    const char* want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    CHECK(hex((**h2)(bytes("what do ya want for nothing?"))) == want);
    CHECK(hex((**h2)({bytes("what do ya "), bytes(""), bytes("want for nothing?")})) == want);
    // The keyed template is never consumed: the same object gives the same answer again.
    CHECK(hex((**h2)(bytes("what do ya want for nothing?"))) == want);
}

TEST_CASE("HMAC-SHA256 with a key longer than the block size (RFC 4231 test case 6)") {
    std::string key(131, '\xaa');
    auto h = HmacSha256::create(bytes(key));
    REQUIRE(h);
    CHECK(hex((**h)(bytes("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("to_hex: lower case, two digits a byte", "[crypto]") {
    const uint8_t b[] = {0x00, 0x0f, 0xa0, 0xff};
    CHECK(edgepair::crypto::to_hex(b) == "000fa0ff");
    CHECK(edgepair::crypto::to_hex({}).empty());
}
