// The OpenSSL SRTP backend against RFC 3711's vectors and against libsrtp2, the reference, both ways.
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/media/srtp.h"
#include "common/media/srtp_impl.h"

using namespace edgepair::media;

namespace {

using Dir = SrtpStream::Direction;
using Bytes = std::vector<uint8_t>;

Bytes unhex(std::string_view h) {
    Bytes out;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
        out.push_back(uint8_t(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return out;
}

const std::string kKey = "\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10"
                         "\x0f\x1e\x2d\x3c\x4b\x5a\x69\x78\x87\x96\xa5\xb4\xc3\xd2";

std::unique_ptr<SrtpStream> make(SrtpSuite s, Dir d, SrtpBackend b) {
    auto r = SrtpStream::create(s, kKey, d, b);
    REQUIRE(r);
    return std::move(*r);
}

// RTP with two CSRCs and a one-byte-header extension of two words, so the encrypted part starts at 32.
Bytes rtp_packet(uint16_t seq, uint32_t ssrc) {
    Bytes p = {0x92, 0x60, uint8_t(seq >> 8), uint8_t(seq)};
    uint32_t ts = uint32_t(seq) * 160u;
    for (uint32_t v : {ts, ssrc, 0x11111111u, 0x22222222u})
        for (int i = 0; i < 4; ++i)
            p.push_back(uint8_t(v >> (24 - 8 * i)));
    for (uint8_t c : {0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa, 0x21, 0xbb, 0xcc, 0x00, 0x00, 0x00})
        p.push_back(c);
    REQUIRE(p.size() == 32);
    for (size_t i = 0; i < 160; ++i)
        p.push_back(uint8_t(i * 13 + seq));
    return p;
}

// A sender report with one report block and an SDES chunk's worth of filler.
Bytes rtcp_packet(uint32_t ssrc, uint8_t salt) {
    Bytes p = {0x81, 200, 0, 12};
    for (int i = 0; i < 4; ++i)
        p.push_back(uint8_t(ssrc >> (24 - 8 * i)));
    for (size_t i = 0; i < 44; ++i)
        p.push_back(uint8_t(i * 5 + salt));
    return p;
}

enum class Kind { Rtp, Rtcp };

// Protects in a buffer with room for the trailer; returns the wire bytes.
Bytes protect(SrtpStream& s, const Bytes& plain, Kind k, SrtpStatus want = SrtpStatus::Ok) {
    Bytes b(plain.size() + kSrtpMaxTrailer);
    std::memcpy(b.data(), plain.data(), plain.size());
    size_t len = plain.size();
    SrtpStatus st =
        k == Kind::Rtp ? s.protect_rtp(b.data(), len, b.size()) : s.protect_rtcp(b.data(), len, b.size());
    REQUIRE(st == want);
    b.resize(len);
    return b;
}

SrtpStatus unprotect(SrtpStream& s, const Bytes& wire, Kind k, Bytes* plain = nullptr) {
    Bytes b = wire;
    size_t len = b.size();
    SrtpStatus st = k == Kind::Rtp ? s.unprotect_rtp(b.data(), len) : s.unprotect_rtcp(b.data(), len);
    if (st == SrtpStatus::Ok && plain) {
        b.resize(len);
        *plain = b;
    }
    return st;
}

SrtpBackend other(SrtpBackend b) {
    return b == SrtpBackend::OpenSSL ? SrtpBackend::Libsrtp2 : SrtpBackend::OpenSSL;
}

} // namespace

TEST_CASE("SRTP OpenSSL: RFC 3711 B.2 AES-CM keystream", "[media][srtp]") {
    const Bytes key = unhex("2B7E151628AED2A6ABF7158809CF4F3C");
    // The session salt F0..FD with SSRC, ROC and SEQ 0: the counter block is the salt shifted by 16.
    const Bytes iv = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
    Bytes ks(65282 * 16, 0);
    REQUIRE(detail::srtp_aes_cm_xor(key.data(), iv.data(), ks.data(), ks.size()));
    CHECK(Bytes(ks.begin(), ks.begin() + 48) == unhex("E03EAD0935C95E80E166B16DD92B4EB4"
                                                      "D23513162B02D0F72A43A2FE4A5F97AB"
                                                      "41E95B3BB0A2E8DD477901E4FCA894C0"));
    CHECK(Bytes(ks.begin() + 0xFEFF * 16, ks.end()) == unhex("EC8CDF7398607CB0F2D21675EA9EA1E4"
                                                             "362B7C3C6773516318A077D7FC5073AE"
                                                             "6A2CC3787889374FBEB4C81B17BA6C44"));
}

TEST_CASE("SRTP OpenSSL: RFC 3711 B.3 key derivation", "[media][srtp]") {
    const Bytes mk = unhex("E1F97A0D3E018BE0D64FA32C06DE4139");
    const Bytes ms = unhex("0EC675AD498AFEEBB6960B3AABE6");
    Bytes k(16), s(14), a(94);
    REQUIRE(detail::srtp_derive(mk.data(), ms.data(), 0, k.data(), k.size()));
    REQUIRE(detail::srtp_derive(mk.data(), ms.data(), 2, s.data(), s.size()));
    REQUIRE(detail::srtp_derive(mk.data(), ms.data(), 1, a.data(), a.size()));
    CHECK(k == unhex("C61E7A93744F39EE10734AFE3FF7A087"));
    CHECK(s == unhex("30CBBC08863D8C85D49DB34A9AE1"));
    CHECK(a == unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE"
                     "E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25"
                     "6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"));
}

TEST_CASE("SRTP OpenSSL: RTP interop with libsrtp2 both ways, across the ROC wrap", "[media][srtp]") {
    auto suite = GENERATE(SrtpSuite::AES_CM_128_HMAC_SHA1_80, SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    auto sender_backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(suite_name(suite), to_string(sender_backend));
    const size_t tag = suite == SrtpSuite::AES_CM_128_HMAC_SHA1_80 ? 10 : 4;
    auto out = make(suite, Dir::Outbound, sender_backend);
    auto ref_out = make(suite, Dir::Outbound, other(sender_backend));
    auto in = make(suite, Dir::Inbound, other(sender_backend));
    const uint32_t ssrc = 0xcafe0042;

    // seq 65530 .. 65535, 0 .. 13: the ROC goes from 0 to 1 at the seventh packet.
    std::vector<Bytes> plain, wire;
    for (int i = 0; i < 20; ++i) {
        plain.push_back(rtp_packet(uint16_t(65530 + i), ssrc));
        wire.push_back(protect(*out, plain.back(), Kind::Rtp));
        // SRTP is deterministic: the other backend must produce the very same bytes.
        CHECK(protect(*ref_out, plain.back(), Kind::Rtp) == wire.back());
        REQUIRE(wire.back().size() == plain.back().size() + tag);
        CHECK(std::memcmp(wire.back().data(), plain.back().data(), 32) == 0);           // header in clear
        CHECK(std::memcmp(wire.back().data() + 32, plain.back().data() + 32, 16) != 0); // payload not
    }

    // seq 0 (ROC 1) arrives before 65535 (ROC 0), 11 before 10, and 3 is held back to the end.
    const std::vector<int> order = {0, 1, 2, 4, 6, 5, 7, 8, 9, 11, 10, 12, 13, 14, 15, 16, 17, 18, 19, 3};
    for (int i : order) {
        CAPTURE(i);
        Bytes got;
        REQUIRE(unprotect(*in, wire[size_t(i)], Kind::Rtp, &got) == SrtpStatus::Ok);
        CHECK(got == plain[size_t(i)]);
    }
    // Each delivered once: again, before and after the wrap, is a replay.
    for (int i : {3, 5, 6, 19}) {
        CAPTURE(i);
        CHECK(unprotect(*in, wire[size_t(i)], Kind::Rtp) == SrtpStatus::ReplayFail);
    }

    // A flipped bit in the header, the payload or the tag; the intact packet still passes afterwards.
    Bytes next_plain = rtp_packet(14, ssrc);
    Bytes next = protect(*out, next_plain, Kind::Rtp);
    for (size_t at : {size_t(1), size_t(20), size_t(100), next.size() - 1}) {
        CAPTURE(at);
        Bytes bad = next;
        bad[at] ^= 0x04;
        CHECK(unprotect(*in, bad, Kind::Rtp) == SrtpStatus::AuthFail);
    }
    Bytes got;
    REQUIRE(unprotect(*in, next, Kind::Rtp, &got) == SrtpStatus::Ok);
    CHECK(got == next_plain);

    // Shorter than a header, and a header whose extension runs past the packet.
    CHECK(unprotect(*in, Bytes(next.begin(), next.begin() + 11), Kind::Rtp) == SrtpStatus::BadPacket);
    Bytes garbled = next;
    garbled[22] = 0xff; // extension length: 0xff.. words
    garbled.resize(60);
    CHECK(unprotect(*in, garbled, Kind::Rtp) == SrtpStatus::BadPacket);
}

TEST_CASE("SRTP OpenSSL: SRTCP interop with libsrtp2 both ways", "[media][srtp]") {
    auto suite = GENERATE(SrtpSuite::AES_CM_128_HMAC_SHA1_80, SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    auto sender_backend = GENERATE(SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2);
    CAPTURE(suite_name(suite), to_string(sender_backend));
    auto out = make(suite, Dir::Outbound, sender_backend);
    auto ref_out = make(suite, Dir::Outbound, other(sender_backend));
    auto in = make(suite, Dir::Inbound, other(sender_backend));
    const uint32_t ssrc = 0x0badf00d;

    // libsrtp numbers its first SRTCP packet 1, the OpenSSL backend 0 (RFC 3711 3.4): one packet more
    // from the OpenSSL side puts both on the same index, so their bytes can be compared.
    SrtpStream& ossl = sender_backend == SrtpBackend::OpenSSL ? *out : *ref_out;
    Bytes first = protect(ossl, rtcp_packet(ssrc, 99), Kind::Rtcp);
    CHECK(Bytes(first.end() - 14, first.end() - 10) == unhex("80000000")); // E bit, index 0

    std::vector<Bytes> plain, wire;
    for (uint8_t i = 0; i < 6; ++i) {
        plain.push_back(rtcp_packet(ssrc, i));
        wire.push_back(protect(*out, plain.back(), Kind::Rtcp));
        CHECK(protect(*ref_out, plain.back(), Kind::Rtcp) == wire.back());
        // E bit and 31-bit index, then an 80-bit tag whatever the RTP suite.
        REQUIRE(wire.back().size() == plain.back().size() + 4 + 10);
        const uint8_t* idx = wire.back().data() + plain.back().size();
        CHECK(idx[0] == 0x80);
        CHECK(idx[3] == i + 1);
        CHECK(std::memcmp(wire.back().data(), plain.back().data(), 8) == 0);
        CHECK(std::memcmp(wire.back().data() + 8, plain.back().data() + 8, 16) != 0);
    }
    for (int i : {0, 2, 1, 3, 5, 4}) {
        CAPTURE(i);
        Bytes got;
        REQUIRE(unprotect(*in, wire[size_t(i)], Kind::Rtcp, &got) == SrtpStatus::Ok);
        CHECK(got == plain[size_t(i)]);
    }
    CHECK(unprotect(*in, wire[2], Kind::Rtcp) == SrtpStatus::ReplayFail);

    Bytes next = protect(*out, rtcp_packet(ssrc, 42), Kind::Rtcp);
    for (size_t at : {size_t(1), size_t(12), next.size() - 12, next.size() - 1}) {
        CAPTURE(at);
        Bytes bad = next;
        bad[at] ^= 0x02;
        CHECK(unprotect(*in, bad, Kind::Rtcp) == SrtpStatus::AuthFail);
    }
    // Clearing the E bit claims an unencrypted packet: refused before the tag.
    Bytes clear_e = next;
    clear_e[next.size() - 14] &= 0x7f;
    CHECK(unprotect(*in, clear_e, Kind::Rtcp) == SrtpStatus::BadPacket);
    CHECK(unprotect(*in, Bytes(next.begin(), next.begin() + 21), Kind::Rtcp) == SrtpStatus::BadPacket);
    CHECK(unprotect(*in, next, Kind::Rtcp) == SrtpStatus::Ok);
}

TEST_CASE("SRTP OpenSSL: late packets, a jump past the window, and a new SSRC mid-stream", "[media][srtp]") {
    // What each backend accepts must be the same, packet by packet. Each packet comes from a sender of its
    // own (ROC 0, no window of its own), so the receivers alone decide what is too old.
    auto lib_in = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, Dir::Inbound, SrtpBackend::Libsrtp2);
    auto ossl_in = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, Dir::Inbound, SrtpBackend::OpenSSL);
    struct Step {
        uint16_t seq;
        uint32_t ssrc;
        SrtpStatus want;
    };
    const std::vector<Step> steps = {
        {100, 1, SrtpStatus::Ok},
        {101, 1, SrtpStatus::Ok},
        {3000, 1, SrtpStatus::Ok},
        {3000 - 1023, 1, SrtpStatus::Ok},         // the oldest the 1024-packet window holds
        {3000 - 1024, 1, SrtpStatus::ReplayFail}, // just past it
        {3000 - 1500, 1, SrtpStatus::ReplayFail},
        {7, 2, SrtpStatus::Ok}, // a second SSRC has a window of its own
        {3001, 1, SrtpStatus::Ok},
        {8, 2, SrtpStatus::Ok},
        {6, 2, SrtpStatus::Ok},
        {40000, 1, SrtpStatus::Ok},
        {39999, 1, SrtpStatus::Ok},
        {40000, 1, SrtpStatus::ReplayFail},
        // Now 100 is nearer ROC 1 than ROC 0: the receivers guess ROC 1, the sender used 0.
        {100, 1, SrtpStatus::AuthFail},
    };
    for (const Step& st : steps) {
        CAPTURE(st.seq, st.ssrc);
        auto out = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, Dir::Outbound, SrtpBackend::Libsrtp2);
        Bytes plain = rtp_packet(st.seq, st.ssrc);
        Bytes wire = protect(*out, plain, Kind::Rtp);
        Bytes got_lib, got_ossl;
        CHECK(unprotect(*lib_in, wire, Kind::Rtp, &got_lib) == st.want);
        CHECK(unprotect(*ossl_in, wire, Kind::Rtp, &got_ossl) == st.want);
        if (st.want == SrtpStatus::Ok) {
            CHECK(got_lib == plain);
            CHECK(got_ossl == plain);
        }
    }
}

TEST_CASE("SRTP OpenSSL: the sender's own window", "[media][srtp]") {
    // A B2BUA forwards the far end's numbering: a late packet is protected with its old index, a repeat
    // with the same index and bytes, and what is older than the window is refused, as libsrtp does.
    for (auto backend : {SrtpBackend::OpenSSL, SrtpBackend::Libsrtp2}) {
        CAPTURE(to_string(backend));
        auto out = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, Dir::Outbound, backend);
        auto ref = make(SrtpSuite::AES_CM_128_HMAC_SHA1_80, Dir::Outbound, other(backend));
        for (uint16_t seq : {uint16_t(5000), uint16_t(4990), uint16_t(5000), uint16_t(5000 - 1023)}) {
            CAPTURE(seq);
            Bytes plain = rtp_packet(seq, 77);
            CHECK(protect(*out, plain, Kind::Rtp) == protect(*ref, plain, Kind::Rtp));
        }
        Bytes plain = rtp_packet(5000 - 1024, 77);
        protect(*out, plain, Kind::Rtp, SrtpStatus::ReplayFail);
    }
}
