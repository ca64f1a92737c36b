#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/http/header_policy.h"

using namespace edgepair::http;

namespace {

struct Row {
    std::string name;
    std::string value;
    // ClientRequest, UpstreamRequest, UpstreamResponse, ClientResponse, LinkFrame, Http1Request
    bool fwd[6];
};

constexpr Hop kHops[] = {Hop::ClientRequest,  Hop::UpstreamRequest, Hop::UpstreamResponse,
                         Hop::ClientResponse, Hop::LinkFrame,       Hop::Http1Request};

} // namespace

TEST_CASE("header policy: which field crosses which hop", "[http][headers]") {
    //                                                     CReq   UReq   UResp  CResp  Link   H1
    const std::vector<Row> rows = {
        {"Accept", "*/*", {true, true, true, true, true, true}},
        {"authorization", "Basic x", {true, true, true, true, true, true}},
        {"Content-Length", "5", {true, true, true, true, true, true}}, // framing: each sender checks it
        {"Connection", "close", {false, false, false, false, false, false}},
        {"keep-alive", "timeout=5", {false, false, false, false, false, false}},
        {"Proxy-Connection", "keep-alive", {false, false, false, false, false, false}},
        {"Proxy-Authorization", "Basic x", {false, false, false, false, false, false}},
        {"proxy-authenticate", "Basic", {false, false, false, false, false, false}},
        {"TE", "gzip", {false, false, false, false, false, false}},
        {"te", "trailers", {false, false, false, false, true, false}}, // RFC 9113 8.2.2: HTTP/2 only
        {"Trailer", "x-checksum", {false, false, false, false, false, false}},
        {"Transfer-Encoding", "chunked", {false, false, false, false, false, false}},
        {"Upgrade", "h2c", {false, false, false, false, false, false}},
        {"HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA", {false, false, false, false, false, false}},
        {"Host", "expe1.example.com", {false, true, true, true, false, true}},
        {"X-Edge-Host", "expe1", {false, false, false, false, true, true}},
        {"x-client-addr", "1.2.3.4", {false, false, false, false, true, true}},
        {"X-Link-User", "u", {false, false, false, false, true, true}},
        {"x-tunnel", "http", {false, false, false, false, true, true}},
        {"X-Original-URL", "/admin", {false, false, true, true, true, true}},
        {"X-Rewrite-URL", "/admin", {false, false, true, true, true, true}},
        {"X-HTTP-Method-Override", "DELETE", {false, false, true, true, true, true}},
        {"x-http-method", "DELETE", {false, false, true, true, true, true}},
        {"X-Method-Override", "DELETE", {false, false, true, true, true, true}},
        {"X-Forwarded-Host", "evil", {false, false, true, true, true, true}},
        {"x-forwarded-server", "evil", {false, false, true, true, true, true}},
        {"X-Forwarded-Prefix", "/evil", {false, false, true, true, true, true}},
        {"Forwarded", "host=evil", {false, false, true, true, true, true}},
        {"X-Forwarded-For", "1.2.3.4", {true, true, true, true, true, true}}, // not a routing override
        {"X-Edgy", "x", {true, true, true, true, true, true}}, // only the x-edge- prefix is private
    };
    for (const auto& r : rows) {
        for (size_t i = 0; i < 6; ++i) {
            INFO(r.name << ": " << r.value << " over hop " << i);
            CHECK(forwards(kHops[i], r.name, r.value) == r.fwd[i]);
        }
    }
}

TEST_CASE("header policy: names listed in Connection are connection-scoped", "[http][headers]") {
    ConnectionTokens t;
    t.add_field_value("close, X-Foo ,\tx-bar\t,,");
    t.add_field_value("Keep-Alive");
    CHECK(t.contains("x-foo"));
    CHECK(t.contains("X-BAR"));
    CHECK(t.contains("keep-alive"));
    CHECK_FALSE(t.contains("x-baz"));
    CHECK_FALSE(t.contains(""));
    for (auto hop : {Hop::ClientRequest, Hop::UpstreamRequest, Hop::UpstreamResponse, Hop::Http1Request}) {
        CHECK_FALSE(forwards(hop, "X-Foo", "1", &t));
        CHECK(forwards(hop, "X-Baz", "1", &t));
    }
    // Bounded: a Connection field listing thousands of names costs at most kMaxTokens strings.
    ConnectionTokens many;
    std::string v;
    for (int i = 0; i < 1000; ++i)
        v += "x-" + std::to_string(i) + ",";
    many.add_field_value(v);
    CHECK(many.contains("x-0"));
    CHECK(many.contains("x-" + std::to_string(ConnectionTokens::kMaxTokens - 1)));
    CHECK_FALSE(many.contains("x-" + std::to_string(ConnectionTokens::kMaxTokens)));
}

TEST_CASE("header policy: look-alike names", "[http][headers]") {
    for (const char* n :
         {"Transfer_Encoding", "content_length", "CONTENT_LENGTH", "Connection_", "_Connection", "Keep_Alive",
          "Proxy_Connection", "proxy_authorization", "X_Edge_Host", "x_client_addr", "X_Link_Password",
          "X_Original_URL", "x_forwarded_host", "X_HTTP_Method_Override", "_host", "Host_", "Authorization_",
          "Content_Type", "TRANSFER_ENCODING_"}) {
        INFO(n);
        CHECK(is_lookalike(n));
    }
    for (const char* n : {"Transfer-Encoding", "Content-Length", "X_Custom", "x_request_id", "X-Edge_", "_",
                          "__", "Transfer_Encodings", "Transfer_Encoding-X", "Transfer__Encoding"}) {
        INFO(n);
        CHECK_FALSE(is_lookalike(n));
    }
}

TEST_CASE("header policy: request field refusals", "[http][headers]") {
    struct C {
        std::vector<std::string> names;
        FieldRefusal refusal;
        std::string field;
    };
    for (const auto& c : std::vector<C>{
             {{":method", ":path", "host", "authorization", "accept"}, FieldRefusal::None, ""},
             {{"Authorization", "Authorization"}, FieldRefusal::DuplicateAuthorization, "Authorization"},
             {{"authorization", "x", "AUTHORIZATION"}, FieldRefusal::DuplicateAuthorization, "AUTHORIZATION"},
             {{"Content-Length", "Content_Length"}, FieldRefusal::Lookalike, "Content_Length"},
             {{"Transfer_Encoding", "Authorization", "Authorization"},
              FieldRefusal::Lookalike,
              "Transfer_Encoding"},
             {{"x_custom", "X-Edge-Host"}, FieldRefusal::None, ""}, // dropped later by the hop, not refused
         }) {
        RequestFieldCheck chk;
        bool ok = true;
        for (const auto& n : c.names)
            ok = chk.add(n) && ok;
        INFO(c.names.size() << " fields");
        CHECK(chk.refusal() == c.refusal);
        CHECK(ok == (c.refusal == FieldRefusal::None));
        CHECK(chk.field() == c.field);
    }
    CHECK(refusal_label(FieldRefusal::Lookalike) == "lookalike_header");
    CHECK(refusal_label(FieldRefusal::DuplicateAuthorization) == "duplicate_authorization");
}

TEST_CASE("header policy: class predicates", "[http][headers]") {
    CHECK(is_framing_field("content-length"));
    CHECK(is_framing_field("Transfer-Encoding"));
    CHECK_FALSE(is_framing_field("content-type"));
    CHECK(is_connection_field("proxy-anything"));
    CHECK_FALSE(is_connection_field("proxy"));
    CHECK(is_link_private("X-EDGE-SIP-PORT"));
    CHECK_FALSE(is_link_private("x-edge"));
    CHECK(is_routing_override("X-FORWARDED-PORT"));
    CHECK_FALSE(is_routing_override("x-forwarded-for"));
}

TEST_CASE("header policy: every fixed name in any case, and near misses", "[http][headers]") {
    auto upper = [](std::string s) {
        for (auto& c : s)
            c = c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c;
        return s;
    };
    for (std::string n : {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
                          "http2-settings", "proxy-authenticate"}) {
        CHECK(is_connection_field(n));
        CHECK(is_connection_field(upper(n)));
        // Every proxy-* name is connection-scoped; the fixed names are exact.
        CHECK(is_connection_field(n + "x") == n.starts_with("proxy-"));
        CHECK_FALSE(is_connection_field(n.substr(1)));
    }
    for (std::string n : {"x-original-url", "x-rewrite-url", "x-http-method-override", "x-http-method",
                          "x-method-override", "x-forwarded-host", "x-forwarded-server", "x-forwarded-prefix",
                          "x-forwarded-proto", "x-forwarded-port", "x-host", "forwarded"}) {
        CHECK(is_routing_override(n));
        CHECK(is_routing_override(upper(n)));
        CHECK_FALSE(is_routing_override(n + "s"));
        CHECK_FALSE(is_routing_override(n.substr(1)));
        CHECK_FALSE(forwards(Hop::ClientRequest, upper(n)));
        CHECK(forwards(Hop::ClientResponse, n));
    }
    for (std::string n :
         {"x-client-addr", "x-tunnel", "x-edge-a-name-far-longer-than-any-fixed-name", "x-link-z"}) {
        CHECK(is_link_private(n));
        CHECK(is_link_private(upper(n)));
        CHECK_FALSE(forwards(Hop::UpstreamResponse, n));
    }
    // Longer than every fixed name, so only the prefixes can match.
    CHECK(is_connection_field("Proxy-" + std::string(100, 'a')));
    CHECK_FALSE(is_connection_field("x-" + std::string(100, 'a')));
    CHECK(forwards(Hop::ClientRequest, "x-" + std::string(100, 'a')));
    CHECK_FALSE(forwards(Hop::ClientRequest, "HOST"));
    CHECK(forwards(Hop::UpstreamRequest, "Host"));
    CHECK(forwards(Hop::LinkFrame, "TE", " trailers "));
    CHECK_FALSE(forwards(Hop::LinkFrame, "TE", "gzip"));
    CHECK(is_lookalike("X_Forwarded_Prefix"));
    CHECK(is_lookalike("_host_"));
    CHECK_FALSE(is_lookalike("x_custom_field"));
}
