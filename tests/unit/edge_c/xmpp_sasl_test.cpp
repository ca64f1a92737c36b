#include <catch2/catch.hpp>

#include <string>

#include "common/http/b64_domain.h"
#include "edge-c/xmpp_sasl.h"

using namespace edgepair;
using namespace edgepair::edge_c;
using namespace std::string_literals;

namespace {

std::string auth(const std::string& mech, const std::string& payload) {
    return "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech + "'>" +
           http::base64_encode(payload) + "</auth>";
}

std::string user_of(const std::string& raw) {
    auto a = read_sasl_auth(raw);
    return a ? a->user : "<unreadable>";
}

} // namespace

TEST_CASE("SASL <auth/> names the user: PLAIN and CISCO-VTG-TOKEN", "[edge_c][xmpp_sasl]") {
    CHECK(user_of(auth("PLAIN", "\0Alice\0secret"s)) == "alice");
    CHECK(user_of(auth("PLAIN", "bob@example.com\0bob\0pw"s)) == "bob");
    CHECK(user_of(auth("CISCO-VTG-TOKEN", "userid=carol@example.com\0token=abc"s)) == "carol");
    auto a = read_sasl_auth(auth("PLAIN", "\0nora\0pw"s));
    REQUIRE(a);
    CHECK(a->mechanism == "PLAIN");
    CHECK(a->token.empty());
    // An authorization identity naming someone else: the policy must not be checked against either alone.
    CHECK(user_of(auth("PLAIN", "mallory\0nora\0pw"s)).empty());
    // Not a user we can read: other mechanisms, broken payloads, empty or odd ids.
    CHECK(user_of(auth("SCRAM-SHA-1", "n,,n=alice,r=x")).empty());
    CHECK(user_of(auth("PLAIN", "no separators")).empty());
    CHECK(user_of(auth("PLAIN", "\0\0pw"s)).empty());
    CHECK(user_of(auth("PLAIN", "\0a/b\0pw"s)).empty());
    CHECK(user_of(auth("PLAIN", "\0a\rb\0pw"s)).empty());
    CHECK(user_of(auth("PLAIN", "\0"s + std::string(257, 'a') + "\0pw"s)).empty());
    CHECK(user_of(auth("CISCO-VTG-TOKEN", "token=abc\0userid=x"s)).empty());
    CHECK(user_of("<auth mechanism='PLAIN'>!!!</auth>") == "<unreadable>");
    CHECK(user_of("<success/>") == "<unreadable>");
    CHECK(user_of("<auth") == "<unreadable>");
}

TEST_CASE("SASL token mechanisms carry a bearer token", "[edge_c][xmpp_sasl]") {
    CHECK(sasl_bearer("OAUTHBEARER", "n,a=ivy@example.com,\x01host=x\x01"
                                     "auth=Bearer abc.def.ghi\x01\x01") == "abc.def.ghi");
    CHECK(sasl_bearer("X-OAUTH2", "\0ivy\0abc.def.ghi"s) == "abc.def.ghi");
    CHECK(sasl_bearer("OAUTHBEARER", "n,,\x01"
                                     "auth=Basic xyz\x01\x01") == "");
    CHECK(sasl_bearer("OAUTHBEARER", "n,,\x01"
                                     "auth=Bearer a b\x01\x01") == "");
    CHECK(sasl_bearer("PLAIN", "\0ivy\0pw"s) == "");
    auto a = read_sasl_auth(auth("X-OAUTH2", "\0ivy\0abc.def.ghi"s));
    REQUIRE(a);
    CHECK(a->token == "abc.def.ghi");
    CHECK(a->user.empty()); // the token's user comes from its validation, not from the payload
}
