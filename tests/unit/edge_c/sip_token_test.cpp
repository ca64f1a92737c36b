#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "edge-c/edge_token.h"
#include "edge-c/sip_access.h"

using namespace edgepair;
using namespace edgepair::edge_c;

namespace {

constexpr uint64_t kMin = 60 * 1000;
const std::string kKey(32, 's');
constexpr uint64_t kNow = 1'800'000'000'000;
const CredentialStamps kNone;

sip::Message register_with(std::string_view extra) {
    std::string wire =
        "REGISTER sip:example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK1\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:alice@example.com>\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Contact: <sip:u@192.0.2.7:5061;transport=tls>;+u.sip!devicename.ccm.cisco.com=\"CSFALICE\"\r\n";
    wire += extra;
    wire += "Content-Length: 0\r\n\r\n";
    auto m = sip::Message::parse(wire);
    REQUIRE(m);
    return std::move(*m);
}

std::string reason_of(const std::variant<EdgeTokenClaims, std::string>& r) {
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string("accepted");
}

} // namespace

TEST_CASE("sip token: required with SIP OAuth or in an Exclusive SSO domain only", "[edge_c][sip_token]") {
    using config::SsoMode;
    CHECK(sip_token_required(true, SsoMode::Off));
    CHECK(sip_token_required(true, SsoMode::On));
    CHECK(sip_token_required(false, SsoMode::Exclusive));
    CHECK_FALSE(sip_token_required(false, SsoMode::On));
    CHECK_FALSE(sip_token_required(false, SsoMode::Off));
}

TEST_CASE("sip token: the edge token is found and removed, other credentials stay", "[edge_c][sip_token]") {
    SECTION("Bearer edge token in Authorization") {
        auto m = register_with("Authorization: Bearer ept1.AAAA\r\nX-Other: keep\r\n");
        auto t = sip_edge_token(m);
        REQUIRE(t);
        CHECK(*t == "ept1.AAAA");
        CHECK(strip_sip_edge_tokens(m) == 1);
        CHECK_FALSE(sip_edge_token(m));
        CHECK(m.find("Authorization") == nullptr);
        CHECK(m.find("X-Other") != nullptr);
        CHECK(m.serialize().find("ept1.") == std::string::npos);
    }
    SECTION("any case, and in Proxy-Authorization too") {
        auto m =
            register_with("authorization: bearer ept1.AAAA\r\nProxy-Authorization: Bearer ept1.BBBB\r\n");
        CHECK(sip_edge_token(m));
        CHECK(strip_sip_edge_tokens(m) == 2);
        CHECK(m.serialize().find("ept1.") == std::string::npos);
    }
    SECTION("an OAuth token or digest credentials are not the edge's") {
        auto m = register_with("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln\r\n"
                               "Proxy-Authorization: Digest username=\"alice\", realm=\"x\"\r\n");
        CHECK_FALSE(sip_edge_token(m));
        CHECK(strip_sip_edge_tokens(m) == 0);
        CHECK(m.find("Authorization") != nullptr);
        CHECK(m.find("Proxy-Authorization") != nullptr);
    }
    SECTION("none") {
        auto m = register_with("");
        CHECK_FALSE(sip_edge_token(m));
        CHECK(strip_sip_edge_tokens(m) == 0);
    }
}

TEST_CASE("sip token: an edge token opens with lifetime, extra TTL, deployment and SSO mode",
          "[edge_c][sip_token]") {
    using config::SsoMode;
    EdgeTokenSealer s(kKey);
    const uint64_t life = 480 * kMin;
    EdgeTokenClaims sso{"alice", "default", "cucm1.example.com", kNow, true};
    EdgeTokenClaims pw{"alice", "default", "cucm1.example.com", kNow, false};
    const auto sso_tok = s.issue(sso, "");
    const auto pw_tok = s.issue(pw, "Alice-Passw0rd");

    SECTION("an SSO token is accepted in every mode, and names its user") {
        for (auto mode : {SsoMode::Off, SsoMode::On, SsoMode::Exclusive}) {
            auto r = open_sip_edge_token(s, sso_tok, "default", mode, kNow + kMin, life, 0, kNone);
            REQUIRE(std::holds_alternative<EdgeTokenClaims>(r));
            CHECK(std::get<EdgeTokenClaims>(r).user == "alice");
            CHECK(std::get<EdgeTokenClaims>(r).sso);
        }
    }
    SECTION("a password-bought token is refused in Exclusive only") {
        CHECK(reason_of(open_sip_edge_token(s, pw_tok, "default", SsoMode::On, kNow, life, 0, kNone)) ==
              "accepted");
        CHECK(reason_of(open_sip_edge_token(s, pw_tok, "default", SsoMode::Off, kNow, life, 0, kNone)) ==
              "accepted");
        CHECK(reason_of(open_sip_edge_token(s, pw_tok, "default", SsoMode::Exclusive, kNow, life, 0,
                                            kNone)) == "sso_exclusive");
    }
    SECTION("a password change seen by this worker makes a password-bought token stale, not an SSO one") {
        CredentialStamps seen;
        seen.note("default", "alice", s.stamp_of("default", "alice", "New-Passw0rd"), kNow + 1, life);
        CHECK(reason_of(open_sip_edge_token(s, pw_tok, "default", SsoMode::On, kNow + 2, life, 0, seen)) ==
              "stale_credentials");
        CHECK(reason_of(open_sip_edge_token(s, sso_tok, "default", SsoMode::On, kNow + 2, life, 0, seen)) ==
              "accepted");
    }
    SECTION("the SIP extra time-to-live extends the lifetime, and only by itself") {
        const uint64_t after = kNow + life + 5 * kMin;
        CHECK(reason_of(open_sip_edge_token(s, sso_tok, "default", SsoMode::On, after, life, 0, kNone)) ==
              "expired");
        CHECK(reason_of(open_sip_edge_token(s, sso_tok, "default", SsoMode::On, after, life, 10 * kMin,
                                            kNone)) == "accepted");
        CHECK(reason_of(open_sip_edge_token(s, sso_tok, "default", SsoMode::On, after + 5 * kMin, life,
                                            10 * kMin, kNone)) == "expired");
    }
    SECTION("another deployment, another key, a changed byte") {
        CHECK(reason_of(open_sip_edge_token(s, sso_tok, "lab", SsoMode::On, kNow, life, 0, kNone)) ==
              "wrong_deployment");
        EdgeTokenSealer other(std::string(32, 'o'));
        CHECK(reason_of(open_sip_edge_token(other, sso_tok, "default", SsoMode::On, kNow, life, 0, kNone)) ==
              "bad_seal");
        std::string bad = sso_tok;
        bad[bad.size() - 3] = bad[bad.size() - 3] == 'A' ? 'B' : 'A';
        CHECK(reason_of(open_sip_edge_token(s, bad, "default", SsoMode::On, kNow, life, 0, kNone)) ==
              "bad_seal");
        CHECK(reason_of(open_sip_edge_token(s, "ept1.!!", "default", SsoMode::On, kNow, life, 0, kNone)) ==
              "malformed");
    }
}
