// The parts of edge-c's SAML service provider that are edgepair's own code (edge-c/saml_sp.h): the POST form,
// xs:dateTime, the replay memory, the uid names, the guide's wording, and the SSO flag of edge tokens. The
// XML and signature work is liblasso's; it is exercised end to end by tests/integration/test_saml_sso.py.
#include <catch2/catch.hpp>

#include <variant>

#include "edge-c/edge_token.h"
#include "edge-c/saml_sp.h"

using namespace edgepair::edge_c;

TEST_CASE("saml: the HTTP-POST binding's form", "[edge_c][saml]") {
    auto f = parse_saml_post_form("SAMLResponse=PHNhbWw%2BYQ%3D%3D&RelayState=a+b%21");
    REQUIRE(f);
    CHECK(f->saml_response == "PHNhbWw+YQ==");
    CHECK(f->relay_state == "a b!");
    CHECK(parse_saml_post_form("RelayState=x&SAMLResponse=eA==&extra=1"));
    CHECK_FALSE(parse_saml_post_form("RelayState=x"));                  // no Response
    CHECK_FALSE(parse_saml_post_form("SAMLResponse="));                 // empty
    CHECK_FALSE(parse_saml_post_form("SAMLResponse=a&SAMLResponse=b")); // twice: which one was checked?
    CHECK_FALSE(parse_saml_post_form("SAMLResponse=a%2"));              // truncated escape
    CHECK_FALSE(parse_saml_post_form("SAMLResponse=a%zz"));             // not hex
    CHECK_FALSE(parse_saml_post_form(std::string(300 * 1024, 'a')));    // over the bound
}

TEST_CASE("saml: xs:dateTime as SAML writes it", "[edge_c][saml]") {
    CHECK(parse_saml_time("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_saml_time("2026-12-05T11:44:35Z") == 1796471075);
    CHECK(parse_saml_time("2026-12-05T11:44:35.123456Z") == 1796471075);
    CHECK(parse_saml_time("2026-12-05T11:44:35") == 1796471075);
    CHECK_FALSE(parse_saml_time("2026-12-05 11:44:35Z"));
    CHECK_FALSE(parse_saml_time("2026-13-05T11:44:35Z"));
    CHECK_FALSE(parse_saml_time("2026-12-05T11:44:35+02:00")); // SAML times are UTC (core 1.3.3)
    CHECK_FALSE(parse_saml_time("2026-12-05T11:44:35.Z"));
    CHECK_FALSE(parse_saml_time(""));
}

TEST_CASE("saml: replay memory and open requests", "[edge_c][saml]") {
    SamlReplayCache c(4);
    c.remember_request("_r1", "example.com", 1000);
    CHECK_FALSE(c.take_request("_r1", "other.example.com", 10)); // for another domain: refused and forgotten
    CHECK_FALSE(c.take_request("_r1", "example.com", 10));
    c.remember_request("_r2", "example.com", 1000);
    CHECK_FALSE(c.take_request("_r2", "example.com", 1000)); // expired
    c.remember_request("_r3", "example.com", 1000);
    CHECK(c.take_request("_r3", "example.com", 999));
    CHECK_FALSE(c.take_request("_r3", "example.com", 999)); // answered once
    CHECK(c.first_use("a1", 100, 10));
    CHECK_FALSE(c.first_use("a1", 100, 50));
    CHECK(c.first_use("a1", 200, 100)); // its validity ended: the IdP's ID may come round again
    for (int i = 0; i < 10; ++i)        // bounded
        CHECK(c.first_use("b" + std::to_string(i), 1000, 150));
}

TEST_CASE("saml: admit checks replay first, then the open request", "[edge_c][saml]") {
    SamlReplayCache c;
    SamlIdentity id;
    id.uid = "alice";
    id.assertion_id = "_a1";
    id.in_response_to = "_r1";
    id.expires_s = 500;
    std::string detail;
    CHECK(c.admit(id, "example.com", 100, detail) == SamlRefusal::Unsolicited); // no such request
    c.remember_request("_r1", "example.com", 1000);
    id.assertion_id = "_a2";
    CHECK_FALSE(c.admit(id, "example.com", 100, detail).has_value());
    // The same Response posted again: a replay (not "unsolicited", although its request is used up too).
    CHECK(c.admit(id, "example.com", 101, detail) == SamlRefusal::Replay);
    CHECK(detail.find("_a2") != std::string::npos);
    // A fresh assertion for the answered request: unsolicited.
    id.assertion_id = "_a3";
    CHECK(c.admit(id, "example.com", 102, detail) == SamlRefusal::Unsolicited);
    // IdP-initiated (no InResponseTo): never accepted.
    id.assertion_id = "_a4";
    id.in_response_to.clear();
    CHECK(c.admit(id, "example.com", 103, detail) == SamlRefusal::Unsolicited);
}

TEST_CASE("saml: uid attribute names and the guide's wording", "[edge_c][saml]") {
    CHECK(is_uid_attribute("uid", ""));
    CHECK(is_uid_attribute("urn:oid:0.9.2342.19200300.100.1.1", ""));
    CHECK(is_uid_attribute("http://example/claims/x", "uid"));
    CHECK_FALSE(is_uid_attribute("mail", "mail"));
    CHECK(std::string(refusal_message(SamlRefusal::NoUid)) == "No uid Attribute in Assertion from IdP");
    CHECK(std::string(refusal_message(SamlRefusal::Signature)) == "Invalid SAML Response");
    CHECK(std::string(refusal_label(SamlRefusal::Replay)) == "replay");
}

TEST_CASE("edge tokens: an SSO token carries no password stamp", "[edge_c][saml][token]") {
    EdgeTokenSealer s(std::string(32, 'k'));
    EdgeTokenClaims c{"alice", "default", "cucm1.example.com", 1'000'000, true};
    auto tok = s.issue(c, "");
    // alice then signs in with a password: password tokens from before are stale, the SSO token is not.
    CredentialStamps seen;
    seen.note("default", "alice", s.stamp_of("default", "alice", "Alice-Passw0rd"), 1'000'100, 3'600'000);
    auto r = s.open(tok, "default", 1'000'200, 3'600'000, seen);
    REQUIRE(std::holds_alternative<EdgeTokenClaims>(r));
    CHECK(std::get<EdgeTokenClaims>(r).sso);
    CHECK(std::get<EdgeTokenClaims>(r).node == "cucm1.example.com");
    EdgeTokenClaims p{"alice", "default", "cucm1.example.com", 1'000'000, false};
    auto old = s.issue(p, "old-password");
    auto r2 = s.open(old, "default", 1'000'200, 3'600'000, seen);
    REQUIRE(std::holds_alternative<EdgeTokenRefusal>(r2));
    CHECK(std::get<EdgeTokenRefusal>(r2) == EdgeTokenRefusal::StaleCredentials);
    auto r3 = s.open(s.issue(p, "Alice-Passw0rd"), "default", 1'000'200, 3'600'000, seen);
    REQUIRE(std::holds_alternative<EdgeTokenClaims>(r3));
    CHECK_FALSE(std::get<EdgeTokenClaims>(r3).sso);
}

TEST_CASE("saml: the OAuth client id rides in the AuthnRequest ID", "[edge_c][saml]") {
    const std::string id = request_id_with_client("_8F3A2C", "jabber-test");
    CHECK(id == "_8F3A2C.c" + std::string("6a61626265722d74657374"));
    CHECK(client_id_of_request(id) == "jabber-test");
    // An ID is an xs:ID: the hex keeps it one, whatever the client id.
    CHECK(id.find_first_not_of("_.-0123456789ABCDEFabcdef") == std::string::npos);
    CHECK(client_id_of_request("_8F3A2C").empty());       // no client id carried
    CHECK(client_id_of_request("_8F3A2C.c6a6").empty());  // odd length
    CHECK(client_id_of_request("_8F3A2C.c6a7z").empty()); // not hex
    CHECK(client_id_of_request("_8F3A2C.c6a20").empty()); // "j " is not a client id
    CHECK(request_id_with_client("_8F3A2C", "with space").empty());
    CHECK(request_id_with_client("_8F3A2C", std::string(65, 'a')).empty());
}

TEST_CASE("saml: the Assertion alone, as the IdP signed it", "[edge_c][saml]") {
    // The xs prefix is declared on the Response only (an exclusive-c14n InclusiveNamespaces may name it):
    // the standalone Assertion must declare it itself, and keep every byte inside unchanged.
    const std::string resp =
        R"(<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" )"
        R"(xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="r1">)"
        R"(<saml:Issuer>https://idp</saml:Issuer>)"
        R"(<saml:Assertion ID="a1" Version="2.0"><saml:Issuer>https://idp</saml:Issuer>)"
        R"(<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>)"
        R"(<saml:AttributeStatement><saml:Attribute Name="uid"><saml:AttributeValue>alice </saml:AttributeValue>)"
        R"(</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>)";
    auto a = standalone_assertion(resp, "a1");
    REQUIRE(a);
    CHECK(a->find("<saml:Assertion") != std::string::npos);
    CHECK(a->find("xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"") != std::string::npos);
    CHECK(a->find("xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"") != std::string::npos);
    CHECK(a->find("<saml:AttributeValue>alice </saml:AttributeValue>") != std::string::npos);
    CHECK(a->find("samlp:Response") == std::string::npos);
    CHECK(a->find("xmlns:samlp") != std::string::npos); // in scope, declared: harmless to c14n
    // Not the assertion lasso checked, or none signed on its own: no grant.
    CHECK_FALSE(standalone_assertion(resp, "a2"));
    std::string unsigned_resp = resp;
    const auto s = unsigned_resp.find("<ds:Signature");
    unsigned_resp.erase(s, unsigned_resp.find("</ds:Signature>") + 15 - s);
    auto u = standalone_assertion(unsigned_resp, "a1");
    REQUIRE_FALSE(u);
    CHECK(u.error().message.starts_with("unsigned:"));
    CHECK_FALSE(standalone_assertion("<not-xml", "a1"));
}
