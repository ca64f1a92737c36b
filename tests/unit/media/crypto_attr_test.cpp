#include "common/media/sdp.h"

#include <catch2/catch.hpp>

using namespace edgepair::media;

TEST_CASE("a=crypto: RFC 4568 examples", "[media][crypto]") {
    auto a = CryptoAttr::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32");
    REQUIRE(a);
    CHECK(a->tag == 1);
    CHECK(a->suite == SrtpSuite::AES_CM_128_HMAC_SHA1_80);
    CHECK(a->master_key.size() == kSrtpMasterKeyLen);
    CHECK(a->master_key == std::string("=-n@%^x!Bjufr9)?,#5h\\`=&]{qiPQ"));
    CHECK(a->has_lifetime_or_mki);
    CHECK(a->has_mki);
    CHECK(a->session_params.empty());

    auto b = CryptoAttr::parse(
        "1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32");
    REQUIRE(b);
    CHECK(b->suite == SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    CHECK(b->has_lifetime_or_mki);

    auto c = CryptoAttr::parse("1 AES_CM_128_HMAC_SHA1_80 "
                               "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP");
    REQUIRE(c);
    CHECK(c->session_params == std::vector<std::string>{"FEC_ORDER=FEC_SRTP"});

    auto d = CryptoAttr::parse(
        "2 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;"
        "inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 KDR=1 UNENCRYPTED_SRTCP");
    REQUIRE(d);
    CHECK(d->tag == 2);
    CHECK(d->master_key == "123456789ABCDE0123456789ABcdef");
    CHECK(d->has_lifetime_or_mki);
    CHECK(d->has_mki);
    CHECK(d->session_params == std::vector<std::string>{"KDR=1", "UNENCRYPTED_SRTCP"});

    // RFC 4568's F8 example: a suite we do not do.
    CHECK_FALSE(
        CryptoAttr::parse("2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4"));
}

TEST_CASE("a=crypto: plain key, as Jabber and CUCM send it", "[media][crypto]") {
    const char* v = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    auto a = CryptoAttr::parse(v);
    REQUIRE(a);
    CHECK_FALSE(a->has_lifetime_or_mki);
    CHECK(a->format() == v);
    auto lc = CryptoAttr::parse("7 aes_cm_128_hmac_sha1_32 INLINE:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR");
    REQUIRE(lc);
    CHECK(lc->tag == 7);
    CHECK(lc->format() == "7 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR");
    CHECK_FALSE(a->has_mki);
    // Jabber's keys carry a lifetime: usable (a lifetime is not an MKI).
    auto jl =
        CryptoAttr::parse("0 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31");
    REQUIRE(jl);
    CHECK(jl->has_lifetime_or_mki);
    CHECK_FALSE(jl->has_mki);
    auto mki =
        CryptoAttr::parse("0 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:4");
    REQUIRE(mki);
    CHECK(mki->has_mki);
}

TEST_CASE("a=crypto: rejected values", "[media][crypto]") {
    for (const char* bad : {
             "",
             "1",
             "1 AES_CM_128_HMAC_SHA1_80",
             "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
             "1234567890 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
             "1 AES_256_CM_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
             "1 AEAD_AES_128_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
             "1 AES_CM_128_HMAC_SHA1_80 PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
             "1 AES_CM_128_HMAC_SHA1_80 uri:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
             // 21 and 33 bytes: wrong key||salt length
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhc",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBRAAAA",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV==",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB!",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywj-WhcYD0mXXtxaVBR",
             "1 AES_CM_128_HMAC_SHA1_80 inline:",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^x",
             "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:",
         }) {
        CAPTURE(bad);
        CHECK_FALSE(CryptoAttr::parse(bad));
    }
}

TEST_CASE("a=crypto: suites by name", "[media][crypto]") {
    CHECK(suite_from_name("AES_CM_128_HMAC_SHA1_80") == SrtpSuite::AES_CM_128_HMAC_SHA1_80);
    CHECK(suite_from_name("AES_CM_128_HMAC_SHA1_32") == SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    CHECK_FALSE(suite_from_name("AES_CM_128_HMAC_SHA1_8"));
    CHECK_FALSE(suite_from_name(""));
    CHECK(std::string(suite_name(SrtpSuite::AES_CM_128_HMAC_SHA1_32)) == "AES_CM_128_HMAC_SHA1_32");
}

TEST_CASE("a=crypto: random keys", "[media][crypto]") {
    auto a = CryptoAttr::random(1, SrtpSuite::AES_CM_128_HMAC_SHA1_80);
    auto b = CryptoAttr::random(1, SrtpSuite::AES_CM_128_HMAC_SHA1_80);
    CHECK(a.master_key.size() == kSrtpMasterKeyLen);
    CHECK(a.master_key != b.master_key);
    CHECK_FALSE(a.has_lifetime_or_mki);
    auto c = CryptoAttr::random(3, SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    auto text = c.format();
    CHECK(text.rfind("3 AES_CM_128_HMAC_SHA1_32 inline:", 0) == 0);
    CHECK(text.size() == std::string("3 AES_CM_128_HMAC_SHA1_32 inline:").size() + 40);
    auto back = CryptoAttr::parse(text);
    REQUIRE(back);
    CHECK(back->tag == 3);
    CHECK(back->suite == SrtpSuite::AES_CM_128_HMAC_SHA1_32);
    CHECK(back->master_key == c.master_key);
    CHECK(back->format() == text);
}
