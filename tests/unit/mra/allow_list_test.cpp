#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "common/mra/allow_list.h"
#include "common/mra/snapshot.h"

using namespace edgepair::mra;

namespace {

UcNode node(std::string name, NodeType t, std::string deployment = "", bool tftp = false) {
    UcNode n;
    n.name = std::move(name);
    n.type = t;
    n.publisher = n.name;
    n.deployment = std::move(deployment);
    n.tftp = tftp;
    return n;
}

RequestTarget req(Scheme s, std::string_view host, std::uint16_t port, std::string_view path,
                  std::string_view method = "GET", std::string_view deployment = "default") {
    RequestTarget r;
    r.scheme = s;
    r.host = host;
    r.port = port;
    r.path = path;
    r.method = method;
    r.deployment = deployment;
    return r;
}

AllowRule editable(std::string_view url, MatchType m, std::optional<MethodSet> methods = std::nullopt,
                   std::string deployment = "") {
    auto u = parse_rule_url(url);
    REQUIRE(u.ok());
    AllowRule r;
    r.url = *u;
    r.match = m;
    r.methods = methods;
    r.deployment = std::move(deployment);
    return r;
}

std::shared_ptr<const Snapshot> demo_snapshot() {
    SnapshotInput in;
    in.deployments = {Deployment{"default"}, Deployment{"staging"}};
    in.nodes = {
        node("cucm1.example.com", NodeType::UnifiedCM, "", true),
        node("cucm2.example.com", NodeType::UnifiedCM),
        node("imp1.example.com", NodeType::ImP),
        node("cuc1.example.com", NodeType::UnityConnection),
        node("cucm9.example.com", NodeType::UnifiedCM, "staging"),
    };
    in.editable_rules = {
        editable("https://web.example.com/photos/a.jpg", MatchType::Exact, MethodSet{Method::Get}),
        editable("https://web.example.com:8080/photos", MatchType::Prefix),
        editable("http://update.example.com", MatchType::Prefix),
        editable("http://root.example.com", MatchType::Exact),
    };
    auto snap = build_snapshot(in);
    REQUIRE(snap.ok());
    return *snap;
}

std::vector<const AllowRule*> rules_for_host(const AllowList& l, std::string_view host) {
    std::vector<const AllowRule*> out;
    for (const AllowRule& r : l.rules()) {
        if (r.url.host == host) {
            out.push_back(&r);
        }
    }
    return out;
}

} // namespace

TEST_CASE("rule URL parsing follows Table 4", "[mra][allowlist][url]") {
    auto a = parse_rule_url("https://myServer1:8443/myPath1");
    REQUIRE(a.ok());
    CHECK(a->scheme == Scheme::Https);
    CHECK(a->host == "myserver1");
    CHECK(a->port == 8443);
    CHECK(a->path == "/myPath1");

    auto b = parse_rule_url("http://myServer5/myPath5");
    REQUIRE(b.ok());
    CHECK(b->port == 80);
    auto c = parse_rule_url("HTTPS://host.example.com");
    REQUIRE(c.ok());
    CHECK(c->port == 443);
    CHECK(c->path.empty());
    CHECK(parse_rule_url("https://10.0.0.1:0/x")->port == 0);
    CHECK(parse_rule_url("https://[2001:db8::1]:8443/x")->host == "[2001:db8::1]");
    CHECK(parse_rule_url("https://h/a%20b;v=1/c@d")->path == "/a%20b;v=1/c@d");
    CHECK(to_string(*a) == "https://myserver1:8443/myPath1");

    CHECK_FALSE(parse_rule_url("ftp://host/x").ok());
    CHECK_FALSE(parse_rule_url("host/x").ok());
    CHECK_FALSE(parse_rule_url("https://").ok());
    CHECK_FALSE(parse_rule_url("https://host:").ok());
    CHECK_FALSE(parse_rule_url("https://host:65536/").ok());
    CHECK_FALSE(parse_rule_url("https://host:80a/").ok());
    CHECK_FALSE(parse_rule_url("https://host:8443:1/").ok());
    CHECK_FALSE(parse_rule_url("https://user@host/").ok());
    CHECK_FALSE(parse_rule_url("https://host/x?y=1").ok());
    CHECK_FALSE(parse_rule_url("https://host/x#frag").ok());
    CHECK_FALSE(parse_rule_url("https://host/a/../b").ok());
    CHECK_FALSE(parse_rule_url("https://host/a/.").ok());
    CHECK_FALSE(parse_rule_url("https://host/a%2").ok());
    CHECK_FALSE(parse_rule_url("https://host/a b").ok());
    CHECK_FALSE(parse_rule_url("https://ho st/").ok());
    CHECK_FALSE(parse_rule_url("https://host..example/").ok());
    CHECK_FALSE(parse_rule_url("https://[zz::1]/").ok());
}

TEST_CASE("automatic rules per node type", "[mra][allowlist][auto]") {
    SECTION("Unified CM with TFTP: UDS, own UDS settings, OAuth/SSO, TFTP files on 6970 and 6972") {
        auto rules = automatic_rules_for(node("CUCM1.example.com", NodeType::UnifiedCM, "", true), "default");
        REQUIRE(rules.size() == 5);
        CHECK(to_string(rules[0].url) == "https://cucm1.example.com:8443/cucm-uds/");
        CHECK(rules[0].match == MatchType::Prefix);
        CHECK(*rules[0].methods == MethodSet{Method::Get});
        CHECK_FALSE(rules[0].own_user_only);
        CHECK(to_string(rules[1].url) == "https://cucm1.example.com:8443/cucm-uds/user/");
        CHECK(*rules[1].methods == MethodSet{Method::Put, Method::Delete});
        CHECK(rules[1].own_user_only);
        CHECK(to_string(rules[2].url) == "https://cucm1.example.com:8443/ssosp/");
        CHECK(*rules[2].methods == MethodSet{Method::Get, Method::Post});
        CHECK(to_string(rules[3].url) == "http://cucm1.example.com:6970/");
        CHECK(rules[3].match == MatchType::Prefix);
        CHECK(*rules[3].methods == MethodSet{Method::Get});
        CHECK(to_string(rules[4].url) == "https://cucm1.example.com:6972/");
        CHECK(*rules[4].methods == MethodSet{Method::Get});
        for (const AllowRule& r : rules) {
            CHECK(r.origin == RuleOrigin::Automatic);
            CHECK(r.deployment == "default");
        }
    }
    SECTION("Unified CM without TFTP has no 6970 or 6972 rule") {
        auto rules = automatic_rules_for(node("cucm2.example.com", NodeType::UnifiedCM), "d");
        REQUIRE(rules.size() == 3);
        CHECK(rules[0].deployment == "d");
        for (const AllowRule& r : rules) {
            CHECK(r.url.port == 8443);
        }
    }
    SECTION("IM and Presence: SOAP login, POST only") {
        auto rules = automatic_rules_for(node("imp1.example.com", NodeType::ImP), "default");
        REQUIRE(rules.size() == 1);
        CHECK(to_string(rules[0].url) == "https://imp1.example.com:8443/EPASSoap/service/");
        CHECK(*rules[0].methods == MethodSet{Method::Post});
    }
    SECTION("Unity Connection: voicemail REST on 443") {
        auto rules = automatic_rules_for(node("cuc1.example.com", NodeType::UnityConnection), "default");
        REQUIRE(rules.size() == 1);
        CHECK(to_string(rules[0].url) == "https://cuc1.example.com:443/vmrest/");
        CHECK(*rules[0].methods == MethodSet{Method::Get, Method::Post, Method::Put, Method::Delete});
    }
    SECTION("a configured HTTPS port wins over the type default") {
        UcNode n = node("cucm3.example.com", NodeType::UnifiedCM);
        n.https_port = 9443;
        CHECK(automatic_rules_for(n, "default")[0].url.port == 9443);
    }
    SECTION("the snapshot carries them with each node's deployment") {
        auto snap = demo_snapshot();
        auto staging = rules_for_host(snap->allow_list, "cucm9.example.com");
        REQUIRE(staging.size() == 3);
        CHECK(staging[0]->deployment == "staging");
        CHECK(rules_for_host(snap->allow_list, "cucm1.example.com").size() == 5);
    }
}

TEST_CASE("allow / block matrix", "[mra][allowlist][match]") {
    auto snap = demo_snapshot();
    const AllowList& l = snap->allow_list;

    SECTION("the UDS rule allows GET under /cucm-uds/") {
        auto m = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/version"));
        CHECK(m.allowed);
        REQUIRE(m.rule != nullptr);
        CHECK(m.rule->url.path == "/cucm-uds/");
        CHECK(m.rule->origin == RuleOrigin::Automatic);
        CHECK(m.reason.empty());
    }
    SECTION("host comparison ignores case") {
        CHECK(l.match(req(Scheme::Https, "CUCM1.Example.COM", 8443, "/cucm-uds/servers")).allowed);
    }
    SECTION("wrong port") {
        auto m = l.match(req(Scheme::Https, "cucm1.example.com", 8444, "/cucm-uds/version"));
        CHECK_FALSE(m.allowed);
        CHECK_THAT(m.reason, Catch::Contains("no rule for https://cucm1.example.com:8444"));
    }
    SECTION("wrong scheme") {
        CHECK_FALSE(l.match(req(Scheme::Http, "cucm1.example.com", 8443, "/cucm-uds/version")).allowed);
    }
    SECTION("unknown host") {
        auto m = l.match(req(Scheme::Https, "axl.example.com", 8443, "/cucm-uds/version"));
        CHECK_FALSE(m.allowed);
        CHECK(m.rule == nullptr);
        CHECK_THAT(m.reason, Catch::Contains("no rule for host axl.example.com"));
    }
    SECTION("method not allowed") {
        auto m = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/users", "PUT"));
        CHECK_FALSE(m.allowed);
        CHECK_THAT(m.reason, Catch::Contains("method PUT not allowed"));
        REQUIRE(m.rule != nullptr);
        CHECK(m.rule->url.path == "/cucm-uds/");
    }
    SECTION("PUT and DELETE under /cucm-uds/user/<id>/ are allowed by the own-user rule only") {
        for (const char* method : {"PUT", "DELETE"}) {
            auto m = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/user/alice/x", method));
            CHECK(m.allowed);
            REQUIRE(m.rule != nullptr);
            CHECK(m.rule->own_user_only);
            CHECK(owner_user_of(*m.rule, "/cucm-uds/user/alice/x") == "alice");
        }
        // GET there is the plain UDS rule's, for any user (UDS itself checks who may read what).
        auto g = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/user/alice/x"));
        REQUIRE(g.rule != nullptr);
        CHECK_FALSE(g.rule->own_user_only);
        // POST is in neither rule; a sibling of /cucm-uds/user/ is not covered by the prefix.
        CHECK_FALSE(
            l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/user/alice", "POST")).allowed);
        CHECK_FALSE(
            l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/users/alice", "PUT")).allowed);
    }
    SECTION("TFTP on 6970 (http) and 6972 (https), GET only") {
        CHECK(l.match(req(Scheme::Http, "cucm1.example.com", 6970, "/SEP0011.cnf.xml")).allowed);
        CHECK(l.match(req(Scheme::Https, "cucm1.example.com", 6972, "/SEP0011.cnf.xml")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Http, "cucm1.example.com", 6972, "/SEP0011.cnf.xml")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "cucm1.example.com", 6970, "/SEP0011.cnf.xml")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "cucm1.example.com", 6972, "/x", "PUT")).allowed);
    }
    SECTION("methods are case-sensitive tokens") {
        CHECK_FALSE(
            l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/version", "get")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/version", "")).allowed);
    }
    SECTION("AXL is not reachable through the automatic rules") {
        auto m = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/axl/", "POST"));
        CHECK_FALSE(m.allowed);
        CHECK_THAT(m.reason, Catch::Contains("path /axl/ not allowed"));
    }
    SECTION("prefix is segment-aware") {
        CHECK_FALSE(l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds-evil/x")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds")).allowed);
        CHECK(l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/")).allowed);
        CHECK(l.match(req(Scheme::Https, "web.example.com", 8080, "/photos")).allowed);
        CHECK(l.match(req(Scheme::Https, "web.example.com", 8080, "/photos/x/y.png")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "web.example.com", 8080, "/photosx")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "web.example.com", 8080, "/photos.bak")).allowed);
    }
    SECTION("exact match") {
        CHECK(l.match(req(Scheme::Https, "web.example.com", 443, "/photos/a.jpg")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "web.example.com", 443, "/photos/a.jpg/x")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "web.example.com", 443, "/photos/a.jpgx")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "web.example.com", 443, "/photos/")).allowed);
    }
    SECTION("no path: prefix allows every path, exact only the root") {
        CHECK(l.match(req(Scheme::Http, "update.example.com", 80, "/")).allowed);
        CHECK(l.match(req(Scheme::Http, "update.example.com", 80, "/jabber/update.xml")).allowed);
        CHECK(l.match(req(Scheme::Http, "root.example.com", 80, "/")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Http, "root.example.com", 80, "/x")).allowed);
    }
    SECTION("deployment mismatch") {
        auto m =
            l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/version", "GET", "staging"));
        CHECK_FALSE(m.allowed);
        CHECK_THAT(m.reason, Catch::Contains("deployment 'staging'"));
        CHECK(l.match(req(Scheme::Https, "cucm9.example.com", 8443, "/cucm-uds/version", "GET", "staging"))
                  .allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "cucm9.example.com", 8443, "/cucm-uds/version")).allowed);
    }
    SECTION("TFTP only on nodes running TFTP") {
        CHECK(l.match(req(Scheme::Http, "cucm1.example.com", 6970, "/SPDefault.cnf.xml")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Http, "cucm1.example.com", 6970, "/x", "POST")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Http, "cucm2.example.com", 6970, "/SPDefault.cnf.xml")).allowed);
    }
    SECTION("IM&P SOAP and voicemail") {
        CHECK(
            l.match(req(Scheme::Https, "imp1.example.com", 8443, "/EPASSoap/service/v105", "POST")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "imp1.example.com", 8443, "/EPASSoap/service/v105")).allowed);
        CHECK(l.match(req(Scheme::Https, "cuc1.example.com", 443, "/vmrest/messages", "DELETE")).allowed);
        CHECK_FALSE(l.match(req(Scheme::Https, "cuc1.example.com", 8443, "/vmrest/messages")).allowed);
    }
    SECTION("un-normalised paths are blocked whatever the rules say") {
        for (std::string_view p : {"/cucm-uds/../axl/", "/cucm-uds/./x", "/cucm-uds/..", "cucm-uds/x",
                                   "/cucm-uds/x?y", "/cucm-uds\\..\\axl", "", "/cucm-uds/a b"}) {
            auto m = l.match(req(Scheme::Https, "cucm1.example.com", 8443, p));
            CHECK_FALSE(m.allowed);
            CHECK_THAT(m.reason, Catch::Contains("not normalised"));
        }
    }
}

TEST_CASE("a blocked request says at which stage it fell out, with a stable label",
          "[mra][allowlist][match]") {
    auto snap = demo_snapshot();
    const AllowList& l = snap->allow_list;
    struct Case {
        RequestTarget target;
        BlockStage stage;
        std::string_view label;
    };
    const std::vector<Case> cases{
        {req(Scheme::Https, "axl.example.com", 8443, "/cucm-uds/version"), BlockStage::Host, "host"},
        {req(Scheme::Https, "cucm1.example.com", 8444, "/cucm-uds/version"), BlockStage::Port, "port"},
        // cucm1 has https rules on 8443 and an http rule on 6970: http on 8443 is the scheme, not the port
        {req(Scheme::Http, "cucm1.example.com", 8443, "/cucm-uds/version"), BlockStage::Scheme, "scheme"},
        {req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/version", "GET", "staging"),
         BlockStage::Deployment, "deployment"},
        {req(Scheme::Https, "cucm1.example.com", 8443, "/axl/", "POST"), BlockStage::Path, "path"},
        {req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/user/alice", "POST"), BlockStage::Method,
         "method"},
        {req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/version", "get"), BlockStage::Method,
         "method"},
        {req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/../axl/"), BlockStage::Unnormalised,
         "unnormalised"},
    };
    for (const auto& c : cases) {
        INFO(c.target.host << ":" << c.target.port << c.target.path << " " << c.target.method);
        auto m = l.match(c.target);
        CHECK_FALSE(m.allowed);
        CHECK(m.stage == c.stage);
        CHECK(block_stage_label(m.stage) == c.label);
    }
    auto ok = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/version"));
    CHECK(ok.allowed);
    CHECK(ok.stage == BlockStage::None);
    // Every stage has its own label: two stages never share a metric series.
    std::set<std::string_view> labels;
    for (std::size_t i = 0; i < kBlockStageCount; ++i)
        labels.insert(block_stage_label(BlockStage(i)));
    CHECK(labels.size() == kBlockStageCount);
}

TEST_CASE("own-user rules: the user a path names", "[mra][allowlist][owner]") {
    AllowRule r;
    r.url.path = "/cucm-uds/user/";
    r.own_user_only = true;
    CHECK(owner_user_of(r, "/cucm-uds/user/alice") == "alice");
    CHECK(owner_user_of(r, "/cucm-uds/user/alice/") == "alice");
    CHECK(owner_user_of(r, "/cucm-uds/user/alice/settings/x") == "alice");
    CHECK(owner_user_of(r, "/cucm-uds/user/jdoe%40example.com/x") == "jdoe@example.com");
    CHECK(owner_user_of(r, "/cucm-uds/user/").empty());
    CHECK(owner_user_of(r, "/cucm-uds/user").empty());
    CHECK(owner_user_of(r, "/cucm-uds/users/alice").empty());
    CHECK(owner_user_of(r, "/cucm-uds/user/a%4").empty());
    CHECK(owner_user_of(r, "/cucm-uds/user/a%00b").empty());
    CHECK(owner_user_of(r, "/other/alice").empty());
    CHECK(same_user("Alice", "alice"));
    CHECK_FALSE(same_user("alice", "alice2"));
    CHECK_FALSE(same_user("bob", "alice"));
}

TEST_CASE("an operator rule that allows for everyone wins over an own-user rule", "[mra][allowlist][owner]") {
    AllowList l;
    AllowRule own;
    own.url = *parse_rule_url("https://cucm1.example.com:8443/cucm-uds/user/");
    own.deployment = "default";
    own.methods = MethodSet{Method::Put};
    own.own_user_only = true;
    own.origin = RuleOrigin::Automatic;
    REQUIRE(l.add(own).ok());
    auto only = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/user/bob/x", "PUT"));
    REQUIRE(only.allowed);
    CHECK(only.rule->own_user_only);
    AllowRule wide;
    wide.url = *parse_rule_url("https://cucm1.example.com:8443/cucm-uds/");
    wide.deployment = "default";
    wide.methods = MethodSet{Method::Put};
    REQUIRE(l.add(wide).ok());
    auto m = l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/user/bob/x", "PUT"));
    REQUIRE(m.allowed);
    CHECK_FALSE(m.rule->own_user_only);
}

TEST_CASE("rules using the default methods follow the default set", "[mra][allowlist][match]") {
    AllowList l(MethodSet{Method::Get, Method::Post});
    AllowRule r = editable("https://web.example.com/app", MatchType::Prefix, std::nullopt, "default");
    REQUIRE(l.add(r).ok());
    CHECK(l.match(req(Scheme::Https, "web.example.com", 443, "/app/x", "POST")).allowed);
    CHECK_FALSE(l.match(req(Scheme::Https, "web.example.com", 443, "/app/x", "PUT")).allowed);

    AllowList none{
        MethodSet{}}; // "clear all methods from the default set": default-method rules allow nothing
    REQUIRE(none.add(r).ok());
    CHECK_FALSE(none.match(req(Scheme::Https, "web.example.com", 443, "/app/x", "GET")).allowed);
}

TEST_CASE("automatic rules cannot be deleted, editable ones can", "[mra][allowlist]") {
    AllowList l;
    AllowRule a = automatic_rules_for(node("cucm1.example.com", NodeType::UnifiedCM), "default")[0];
    auto aid = l.add(a);
    REQUIRE(aid.ok());
    auto eid = l.add(editable("https://web.example.com/x", MatchType::Exact, std::nullopt, "default"));
    REQUIRE(eid.ok());
    CHECK(*aid != *eid);

    auto del_auto = l.remove(*aid);
    CHECK_FALSE(del_auto.ok());
    CHECK_THAT(del_auto.error().message, Catch::Contains("cannot be deleted"));
    CHECK(l.find(*aid) != nullptr);

    CHECK(l.match(req(Scheme::Https, "web.example.com", 443, "/x")).allowed);
    CHECK(l.remove(*eid).ok());
    CHECK(l.find(*eid) == nullptr);
    CHECK_FALSE(l.match(req(Scheme::Https, "web.example.com", 443, "/x")).allowed);
    CHECK(l.match(req(Scheme::Https, "cucm1.example.com", 8443, "/cucm-uds/x")).allowed); // index rebuilt
    CHECK_FALSE(l.remove(9999).ok());
}

TEST_CASE("a rule without a deployment is refused by the list", "[mra][allowlist]") {
    AllowList l;
    CHECK_FALSE(l.add(editable("https://web.example.com/x", MatchType::Exact)).ok());
}

TEST_CASE("path_matches", "[mra][allowlist]") {
    CHECK(path_matches(MatchType::Exact, "", "/"));
    CHECK_FALSE(path_matches(MatchType::Exact, "", "/a"));
    CHECK(path_matches(MatchType::Exact, "/a/b", "/a/b"));
    CHECK_FALSE(path_matches(MatchType::Exact, "/a/b", "/a/b/"));
    CHECK_FALSE(path_matches(MatchType::Exact, "/a/b", "/A/b")); // paths are case-sensitive
    CHECK(path_matches(MatchType::Prefix, "", "/anything"));
    CHECK(path_matches(MatchType::Prefix, "/", "/anything"));
    CHECK(path_matches(MatchType::Prefix, "/a", "/a"));
    CHECK(path_matches(MatchType::Prefix, "/a", "/a/"));
    CHECK(path_matches(MatchType::Prefix, "/a", "/a/b"));
    CHECK_FALSE(path_matches(MatchType::Prefix, "/a", "/ab"));
    CHECK_FALSE(path_matches(MatchType::Prefix, "/a", "/"));
    CHECK(path_matches(MatchType::Prefix, "/a/", "/a/b"));
    CHECK_FALSE(path_matches(MatchType::Prefix, "/a/", "/a"));
    CHECK_FALSE(path_matches(MatchType::Prefix, "/a/b", "/a"));
}

TEST_CASE("method sets", "[mra][allowlist]") {
    CHECK(parse_method("GET") == Method::Get);
    CHECK_FALSE(parse_method("get").has_value());
    CHECK_FALSE(parse_method("TRACE").has_value());
    MethodSet s{Method::Put, Method::Get};
    CHECK(s.to_string() == "GET,PUT");
    CHECK(s.contains(Method::Put));
    CHECK_FALSE(s.contains(Method::Post));
    CHECK(MethodSet{}.empty());
}
