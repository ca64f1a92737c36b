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

TEST_CASE("SASL token mechanisms name the identity they sign in", "[edge_c][xmpp_sasl]") {
    auto named = [](const std::string& mech, const std::string& payload) {
        auto a = read_sasl_auth(auth(mech, payload));
        REQUIRE(a);
        return a->named;
    };
    // OAUTHBEARER's gs2 authzid, as Prosody's mod_sasl_oauthbearer requires it.
    auto n = named("OAUTHBEARER", "n,a=Ivy@Example.COM,\x01"
                                  "auth=Bearer t.o.k\x01\x01");
    CHECK(n.named);
    CHECK(n.user == "ivy");
    CHECK(n.domain == "example.com");
    n = named("OAUTHBEARER", "n,a=ivy,\x01"
                             "auth=Bearer t.o.k\x01\x01");
    CHECK(n.user == "ivy");
    CHECK(n.domain.empty());
    // RFC 5801 escapes: =2C is ',' and =3D is '='.
    CHECK(named("OAUTHBEARER", "y,a=a=3Db=2Cc@example.com,\x01"
                               "auth=Bearer t.o.k\x01\x01")
              .user == "a=b,c");
    // No authzid: the message names no one, the token's user signs in.
    CHECK_FALSE(named("OAUTHBEARER", "n,,\x01"
                                     "auth=Bearer t.o.k\x01\x01")
                    .named);
    // Named but unreadable: refused rather than guessed at.
    for (std::string bad : {"n,a=,\x01"s, "n,a=ivy=2x@example.com,\x01"s, "n,a=ivy@,\x01"s,
                            "n,a=ivy@ex@ample.com,\x01"s, "n,a=ivy@example.com/res,\x01"s, "n,b=ivy,\x01"s,
                            "n,a=ivy@example.com\x01"s, "n,a=ivy,extra,\x01"s, "\x01"s}) {
        auto u = named("OAUTHBEARER", bad + "auth=Bearer t.o.k\x01\x01");
        CHECK(u.named);
        CHECK(u.user.empty());
    }
    // X-OAUTH2: the authcid; an authzid beside it must name the same id.
    n = named("X-OAUTH2", "\0Bob@example.com\0t.o.k"s);
    CHECK(n.user == "bob");
    CHECK(n.domain == "example.com");
    CHECK(named("X-OAUTH2", "bob@example.com\0BOB@example.com\0t.o.k"s).user == "bob");
    CHECK(named("X-OAUTH2", "ivy\0bob\0t.o.k"s).user.empty());
    CHECK(named("X-OAUTH2", "ivy\0\0t.o.k"s).user == "ivy");
    CHECK_FALSE(named("X-OAUTH2", "\0\0t.o.k"s).named);
    // Other mechanisms name no token identity.
    CHECK_FALSE(sasl_named_id("PLAIN", "\0ivy\0pw"s).named);
}

TEST_CASE("A token signs in only the identity the message names", "[edge_c][xmpp_sasl]") {
    SaslNamedId none;
    CHECK(named_id_matches(none, "alice", "example.com"));
    SaslNamedId ivy{true, "ivy", ""};
    CHECK(named_id_matches(ivy, "ivy", "example.com"));
    CHECK(named_id_matches(ivy, "IVY", "example.com"));
    CHECK(named_id_matches(ivy, "ivy@example.com", "example.com"));
    CHECK_FALSE(named_id_matches(ivy, "alice", "example.com"));
    CHECK_FALSE(named_id_matches(ivy, "ivyx", "example.com"));
    SaslNamedId ivy_at{true, "ivy", "example.com"};
    CHECK(named_id_matches(ivy_at, "ivy", "Example.com"));
    CHECK_FALSE(named_id_matches(ivy_at, "ivy", "example.org"));
    SaslNamedId unreadable{true, "", ""};
    CHECK_FALSE(named_id_matches(unreadable, "", "example.com"));
    CHECK_FALSE(named_id_matches(unreadable, "ivy", "example.com"));
}
