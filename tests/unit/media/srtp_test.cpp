#include "common/media/srtp.h"

#include <array>
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>

using namespace edgepair::media;

namespace {

using Dir = SrtpStream::Direction;
using Buf = std::array<uint8_t, 1500>;

const std::string kKeyA = "123456789ABCDE0123456789ABcdef";
const std::string kKeyB = "ABcdef123456789ABCDE0123456789";

std::unique_ptr<SrtpStream> make(SrtpSuite s, const std::string& key, Dir d, SrtpBackend b) {
    auto r = SrtpStream::create(s, key, d, b);
    REQUIRE(r);
    return std::move(*r);
}

size_t rtp_packet(Buf& b, uint16_t seq, uint32_t ssrc, size_t payload = 160) {
    b.fill(0);
    b[0] = 0x80;
    b[1] = 0; // PCMU
    b[2] = uint8_t(seq >> 8);
    b[3] = uint8_t(seq);
    uint32_t ts = uint32_t(seq) * 160;
    for (int i = 0; i < 4; ++i) {
        b[4 + size_t(i)] = uint8_t(ts >> (24 - 8 * i));
        b[8 + size_t(i)] = uint8_t(ssrc >> (24 - 8 * i));
    }
    for (size_t i = 0; i < payload; ++i)
        b[12 + i] = uint8_t(i * 7 + seq);
    return 12 + payload;
}

// A sender report with no report blocks: 28 bytes.
size_t rtcp_packet(Buf& b, uint32_t ssrc) {
    b.fill(0);
    b[0] = 0x80;
    b[1] = 200;
    b[2] = 0;
    b[3] = 6;
    for (int i = 0; i < 4; ++i)
        b[4 + size_t(i)] = uint8_t(ssrc >> (24 - 8 * i));
    for (size_t i = 8; i < 28; ++i)
        b[i] = uint8_t(i);
    return 28;
}

} // namespace

TEST_CASE("SRTP: RTP and RTCP round trip for both suites", "[media][srtp]") {
    auto backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(to_string(backend));
    auto suite = GENERATE(SrtpSuite::AES_CM_128_HMAC_SHA1_80, SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    CAPTURE(suite_name(suite));
    size_t rtp_tag = suite == SrtpSuite::AES_CM_128_HMAC_SHA1_80 ? 10 : 4;
    auto out = make(suite, kKeyA, Dir::Outbound, backend);
    auto in = make(suite, kKeyA, Dir::Inbound, backend);

    for (uint16_t seq = 1000; seq < 1010; ++seq) {
        Buf plain, b;
        size_t n = rtp_packet(plain, seq, 0x11223344);
        b = plain;
        size_t len = n;
        REQUIRE(out->protect_rtp(b.data(), len, b.size()) == SrtpStatus::Ok);
        CHECK(len == n + rtp_tag);
        CHECK(std::memcmp(b.data(), plain.data(), 12) == 0); // header stays clear
        CHECK(std::memcmp(b.data() + 12, plain.data() + 12, n - 12) != 0);
        REQUIRE(in->unprotect_rtp(b.data(), len) == SrtpStatus::Ok);
        REQUIRE(len == n);
        CHECK(std::memcmp(b.data(), plain.data(), n) == 0);
    }

    for (int i = 0; i < 3; ++i) {
        Buf plain, b;
        size_t n = rtcp_packet(plain, 0x11223344);
        b = plain;
        size_t len = n;
        REQUIRE(out->protect_rtcp(b.data(), len, b.size()) == SrtpStatus::Ok);
        // E flag + SRTCP index, then an 80-bit tag whatever the RTP suite.
        CHECK(len == n + 4 + 10);
        REQUIRE(in->unprotect_rtcp(b.data(), len) == SrtpStatus::Ok);
        REQUIRE(len == n);
        CHECK(std::memcmp(b.data(), plain.data(), n) == 0);
    }
}

TEST_CASE("SRTP: wrong key, replay and tampering are caught", "[media][srtp]") {
    auto backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(to_string(backend));
    auto suite = GENERATE(SrtpSuite::AES_CM_128_HMAC_SHA1_80, SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    CAPTURE(suite_name(suite));
    auto out = make(suite, kKeyA, Dir::Outbound, backend);
    auto in = make(suite, kKeyA, Dir::Inbound, backend);
    auto wrong = make(suite, kKeyB, Dir::Inbound, backend);

    Buf b;
    size_t len = rtp_packet(b, 1, 0xdeadbeef);
    REQUIRE(out->protect_rtp(b.data(), len, b.size()) == SrtpStatus::Ok);
    const Buf wire = b;
    const size_t wire_len = len;

    size_t l = wire_len;
    Buf c = wire;
    CHECK(wrong->unprotect_rtp(c.data(), l) == SrtpStatus::AuthFail);

    for (size_t at : {size_t(1), size_t(12), size_t(100), wire_len - 1}) {
        CAPTURE(at);
        c = wire;
        l = wire_len;
        c[at] ^= 0x01;
        CHECK(in->unprotect_rtp(c.data(), l) == SrtpStatus::AuthFail);
    }

    c = wire;
    l = wire_len;
    REQUIRE(in->unprotect_rtp(c.data(), l) == SrtpStatus::Ok);
    c = wire;
    l = wire_len;
    CHECK(in->unprotect_rtp(c.data(), l) == SrtpStatus::ReplayFail);

    // The same for SRTCP.
    len = rtcp_packet(b, 0xdeadbeef);
    REQUIRE(out->protect_rtcp(b.data(), len, b.size()) == SrtpStatus::Ok);
    const Buf rwire = b;
    const size_t rlen = len;
    c = rwire;
    l = rlen;
    CHECK(wrong->unprotect_rtcp(c.data(), l) == SrtpStatus::AuthFail);
    c = rwire;
    l = rlen;
    c[10] ^= 0x80;
    CHECK(in->unprotect_rtcp(c.data(), l) == SrtpStatus::AuthFail);
    c = rwire;
    l = rlen;
    REQUIRE(in->unprotect_rtcp(c.data(), l) == SrtpStatus::Ok);
    c = rwire;
    l = rlen;
    CHECK(in->unprotect_rtcp(c.data(), l) == SrtpStatus::ReplayFail);

    // A packet from the other suite has a tag of the wrong length.
    auto other = make(suite == SrtpSuite::AES_CM_128_HMAC_SHA1_80 ? SrtpSuite::AES_CM_128_HMAC_SHA1_32
                                                                  : SrtpSuite::AES_CM_128_HMAC_SHA1_80,
                      kKeyA, Dir::Outbound, backend);
    len = rtp_packet(b, 2, 0xdeadbeef);
    REQUIRE(other->protect_rtp(b.data(), len, b.size()) == SrtpStatus::Ok);
    CHECK(in->unprotect_rtp(b.data(), len) == SrtpStatus::AuthFail);
}

TEST_CASE("SRTP: garbage and short packets fail cleanly", "[media][srtp]") {
    auto backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(to_string(backend));
    auto in = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Inbound, backend);
    auto ok_or_expected = [](SrtpStatus s) {
        return s == SrtpStatus::BadPacket || s == SrtpStatus::AuthFail;
    };
    Buf b{};
    for (size_t n :
         {size_t(0), size_t(1), size_t(3), size_t(11), size_t(12), size_t(13), size_t(21), size_t(40)}) {
        CAPTURE(n);
        for (uint8_t fill : {uint8_t(0x00), uint8_t(0x80), uint8_t(0xff)}) {
            b.fill(fill);
            size_t l = n;
            CHECK(ok_or_expected(in->unprotect_rtp(b.data(), l)));
            b.fill(fill);
            l = n;
            CHECK(ok_or_expected(in->unprotect_rtcp(b.data(), l)));
        }
    }
    // A header claiming more CSRCs and an extension than the packet holds.
    b.fill(0);
    b[0] = 0x9f;
    size_t l = 20;
    CHECK(ok_or_expected(in->unprotect_rtp(b.data(), l)));

    auto out = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Outbound, backend);
    b.fill(0);
    l = 5;
    CHECK(out->protect_rtp(b.data(), l, b.size()) == SrtpStatus::BadPacket);
    l = 3;
    CHECK(out->protect_rtcp(b.data(), l, b.size()) == SrtpStatus::BadPacket);
}

TEST_CASE("SRTP: one stream object serves many SSRCs", "[media][srtp]") {
    auto backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(to_string(backend));
    auto out = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Outbound, backend);
    auto in = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Inbound, backend);
    // libsrtp2 takes any number; the OpenSSL backend keeps kSrtpMaxSsrcs and refuses the next.
    const uint32_t served = backend == SrtpBackend::Libsrtp2 ? 200 : uint32_t(kSrtpMaxSsrcs);
    for (uint16_t seq = 0; seq < 5; ++seq) {
        for (uint32_t ssrc = 1; ssrc <= served; ++ssrc) {
            Buf plain, b;
            size_t n = rtp_packet(plain, uint16_t(seq + ssrc), ssrc * 0x01010101u);
            b = plain;
            size_t len = n;
            REQUIRE(out->protect_rtp(b.data(), len, b.size()) == SrtpStatus::Ok);
            REQUIRE(in->unprotect_rtp(b.data(), len) == SrtpStatus::Ok);
            REQUIRE(std::memcmp(b.data(), plain.data(), n) == 0);
        }
    }
    if (backend == SrtpBackend::OpenSSL) {
        Buf b;
        size_t len = rtp_packet(b, 9, 0xabcdef01);
        CHECK(out->protect_rtp(b.data(), len, b.size()) == SrtpStatus::BadPacket);
        len = rtcp_packet(b, 0xabcdef01);
        CHECK(out->protect_rtcp(b.data(), len, b.size()) == SrtpStatus::BadPacket);
        // The same from a sender with room: the receiver's table is full too.
        auto other = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Outbound, backend);
        len = rtp_packet(b, 9, 0xabcdef01);
        REQUIRE(other->protect_rtp(b.data(), len, b.size()) == SrtpStatus::Ok);
        CHECK(in->unprotect_rtp(b.data(), len) == SrtpStatus::BadPacket);
    }
}

TEST_CASE("SRTP: a B2BUA may re-send, a receiver may not replay", "[media][srtp]") {
    auto backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(to_string(backend));
    auto out = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Outbound, backend);
    Buf b1, b2;
    size_t l1 = rtp_packet(b1, 77, 42), l2 = rtp_packet(b2, 77, 42);
    REQUIRE(out->protect_rtp(b1.data(), l1, b1.size()) == SrtpStatus::Ok);
    REQUIRE(out->protect_rtp(b2.data(), l2, b2.size()) == SrtpStatus::Ok);
    CHECK(l1 == l2);
    CHECK(std::memcmp(b1.data(), b2.data(), l1) == 0);
}

TEST_CASE("SRTP: misuse is refused", "[media][srtp]") {
    auto backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(to_string(backend));
    CHECK_FALSE(SrtpStream::create(SrtpSuite::AES_CM_128_HMAC_SHA1_80, "short", Dir::Inbound, backend));
    CHECK_FALSE(SrtpStream::create(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA + "x", Dir::Inbound, backend));
    auto out = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Outbound, backend);
    auto in = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, kKeyA, Dir::Inbound, backend);
    Buf b;
    size_t len = rtp_packet(b, 1, 1);
    // Too little room for the trailer: refused before libsrtp could write past the buffer.
    CHECK(out->protect_rtp(b.data(), len, len + kSrtpMaxTrailer - 1) == SrtpStatus::Error);
    CHECK(out->protect_rtcp(b.data(), len, len + 10) == SrtpStatus::Error);
    CHECK(in->protect_rtp(b.data(), len, b.size()) == SrtpStatus::Error);
    CHECK(out->unprotect_rtp(b.data(), len) == SrtpStatus::Error);
    CHECK(std::string(to_string(SrtpStatus::ReplayFail)) == "replay_fail");
}
