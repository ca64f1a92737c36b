#include "common/sip/flow_token.h"
#include "common/sip/uri.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace edgepair::sip;

namespace {

std::vector<uint8_t> key_of(uint8_t fill, size_t n = 32) {
    return std::vector<uint8_t>(n, fill);
}

FlowTokenCodec codec(uint8_t fill = 0x42, size_t mac = 12) {
    auto key = key_of(fill);
    auto c = FlowTokenCodec::create(key, mac);
    REQUIRE(c);
    return std::move(*c);
}

} // namespace

TEST_CASE("flow tokens round-trip", "[sip][flow]") {
    auto c = codec();
    constexpr uint64_t max = std::numeric_limits<uint64_t>::max();
    for (FlowId id : {FlowId{0, 0}, FlowId{1, 2}, FlowId{127, 128}, FlowId{0x1234, 0xdeadbeef},
                      FlowId{max, max}, FlowId{max, 0}}) {
        std::string t = c.encode(id);
        INFO(t);
        auto back = c.decode(t);
        REQUIRE(back);
        CHECK(*back == id);
        CHECK(t.size() <= 60);
        // Usable as-is as the user part of a SIP URI.
        auto u = Uri::parse("sip:" + t + "@expe1.example.com;lr");
        REQUIRE(u);
        CHECK(u->user == t);
    }
    CHECK(c.encode({1, 2}).size() < c.encode({max, max}).size()); // small ids give short tokens
    CHECK(c.encode({1, 2}) != c.encode({2, 1}));
}

TEST_CASE("flow tokens are case-insensitive but otherwise exact", "[sip][flow]") {
    auto c = codec();
    std::string t = c.encode({5, 6});
    std::string upper = t;
    for (char& ch : upper)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    CHECK(c.decode(upper) == FlowId{5, 6});
}

TEST_CASE("tampered flow tokens are rejected", "[sip][flow]") {
    auto c = codec();
    std::string t = c.encode({77, 99});
    const std::string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    for (size_t i = 0; i < t.size(); ++i) {
        for (char repl : {'a', 'q', '7'}) {
            if (repl == t[i]) continue;
            std::string bad = t;
            bad[i] = repl;
            auto r = c.decode(bad);
            // Changing only the zero padding bits of the last character cannot happen: those are
            // required to be zero, so any edit must fail.
            INFO(bad);
            CHECK_FALSE(r);
        }
    }
    CHECK_FALSE(c.decode(t.substr(0, t.size() - 1)));
    CHECK_FALSE(c.decode(t.substr(1)));
    CHECK_FALSE(c.decode(t + "a"));
    CHECK_FALSE(c.decode(t + "aaaaaaaa"));
    CHECK_FALSE(c.decode(""));
    CHECK_FALSE(c.decode("not-base32!"));
    CHECK_FALSE(c.decode(std::string(200, 'a')));
}

TEST_CASE("flow tokens do not verify under another key or MAC length", "[sip][flow]") {
    auto a = codec(0x42);
    auto b = codec(0x43);
    auto a16 = codec(0x42, 16);
    std::string t = a.encode({1, 1});
    CHECK(a.decode(t));
    CHECK_FALSE(b.decode(t));
    CHECK_FALSE(a16.decode(t));
    CHECK(a16.decode(a16.encode({1, 1})) == FlowId{1, 1});
    CHECK(a16.encode({1, 1}).size() > t.size());
}

TEST_CASE("flow token codec parameters are checked", "[sip][flow]") {
    auto short_key = key_of(1, 15);
    CHECK_FALSE(FlowTokenCodec::create(short_key));
    auto key = key_of(1, 16);
    CHECK(FlowTokenCodec::create(key, 10));
    CHECK(FlowTokenCodec::create(key, 16));
    CHECK_FALSE(FlowTokenCodec::create(key, 9));
    CHECK_FALSE(FlowTokenCodec::create(key, 17));
}

TEST_CASE("a flow token memo answers as its codec does, remembered or not", "[sip][flow]") {
    FlowTokenMemo memo(codec(), 4);
    FlowTokenCodec plain = codec();
    const std::string t = memo.encode({1, 7});
    CHECK(t == plain.encode({1, 7})); // the same token: other workers and restarts still decode it
    CHECK(memo.encode({1, 7}) == t);
    CHECK(memo.size() == 1);
    CHECK(memo.decode(t) == FlowId{1, 7});
    // Not produced by this memo: decoded by the codec, so a forged or edited token is still refused.
    CHECK(memo.decode(plain.encode({2, 9})) == FlowId{2, 9});
    std::string edited = t;
    edited.back() = edited.back() == 'a' ? 'b' : 'a';
    CHECK_FALSE(memo.decode(edited));
    CHECK_FALSE(FlowTokenMemo(codec(0x17), 4).decode(t)); // another key
    // Forgotten (the flow closed): a late message with the token still decodes, through the MAC.
    memo.forget({1, 7});
    CHECK(memo.size() == 0);
    CHECK(memo.decode(t) == FlowId{1, 7});
    // Bounded: past the limit everything is dropped at once, and the answers do not change.
    for (uint64_t c = 0; c < 10; ++c)
        CHECK(memo.decode(memo.encode({1, c})) == FlowId{1, c});
    CHECK(memo.size() <= 4);
}
