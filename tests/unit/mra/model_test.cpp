#include <catch2/catch.hpp>

#include <regex>
#include <string>

#include "common/mra/model.h"
#include "common/mra/snapshot.h"

using namespace edgepair::mra;

namespace {

UcNode ucm(std::string name, bool mixed = false, bool verify = true) {
    UcNode n;
    n.name = std::move(name);
    n.type = NodeType::UnifiedCM;
    n.publisher = n.name;
    n.mixed_mode = mixed;
    n.tls_verify = verify;
    return n;
}

const Zone* zone_named(const ZonesAndRules& zr, const std::string& name) {
    for (const Zone& z : zr.zones) {
        if (z.name == name) {
            return &z;
        }
    }
    return nullptr;
}

} // namespace

TEST_CASE("a Unified CM node always gets a TCP zone, a TLS zone only in mixed mode", "[mra][zones]") {
    UcNode secure = ucm("cucm1.example.com", true, true);
    secure.sip_tls_port = 5071;
    UcNode plain = ucm("cucm2.example.com", false);
    auto zr = generate_zones({secure, plain});

    REQUIRE(zr.zones.size() == 3);
    const Zone* tcp1 = zone_named(zr, "CEtcp-cucm1.example.com");
    const Zone* tls1 = zone_named(zr, "CEtls-cucm1.example.com");
    const Zone* tcp2 = zone_named(zr, "CEtcp-cucm2.example.com");
    REQUIRE(tcp1 != nullptr);
    REQUIRE(tls1 != nullptr);
    REQUIRE(tcp2 != nullptr);
    CHECK(zone_named(zr, "CEtls-cucm2.example.com") == nullptr);
    CHECK(tcp1->transport == ZoneTransport::Tcp);
    CHECK(tcp1->port == 5060);
    CHECK(tls1->transport == ZoneTransport::Tls);
    CHECK(tls1->port == 5071);
    CHECK(tls1->tls_verify);
    CHECK(tls1->node == "cucm1.example.com");
}

TEST_CASE("the TLS zone's verify mode follows discovery's TLS verify mode", "[mra][zones]") {
    auto zr = generate_zones({ucm("cucm1.example.com", true, false)});
    const Zone* tls = zone_named(zr, "CEtls-cucm1.example.com");
    REQUIRE(tls != nullptr);
    CHECK_FALSE(tls->tls_verify);
}

TEST_CASE("IM&P and Unity Connection nodes get no SIP zones", "[mra][zones]") {
    UcNode imp;
    imp.name = "imp1.example.com";
    imp.type = NodeType::ImP;
    imp.mixed_mode = true;
    UcNode cuc;
    cuc.name = "cuc1.example.com";
    cuc.type = NodeType::UnityConnection;
    auto zr = generate_zones({imp, cuc});
    CHECK(zr.zones.empty());
    CHECK(zr.search_rules.empty());
}

TEST_CASE("search rules mirror the zones, priority 45, exact pattern for ordinary names", "[mra][zones]") {
    auto zr = generate_zones({ucm("CUCM1.example.com", true)});
    REQUIRE(zr.search_rules.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        const SearchRule& r = zr.search_rules[i];
        CHECK(r.name == zr.zones[i].name);
        CHECK(r.target_zone == zr.zones[i].name);
        CHECK(r.priority == 45);
        CHECK(r.pattern_type == PatternType::Exact);
        CHECK(r.pattern == "cucm1.example.com");
        CHECK(r.matches("cucm1.example.com"));
        CHECK(r.matches("alice@CUCM1.example.com:5061;transport=tls"));
        CHECK_FALSE(r.matches("alice@cucm1.example.com.evil.net"));
        CHECK_FALSE(r.matches("cucm2.example.com"));
    }
    CHECK(zr.zones[0].name == "CEtcp-cucm1.example.com");
}

TEST_CASE("long node names: short unique zone names and a regex search rule", "[mra][zones]") {
    // 64 characters: "CEtcp-" + this is 70, above the 50-character name limit.
    const std::string a = "cucm-publisher-datacentre-north-01.voice.emea.corp.example.com";
    const std::string b = "cucm-publisher-datacentre-north-01.voice.emea.corp.example.net";
    REQUIRE(a.size() + 6 > kMaxZoneNameLength);
    auto zr = generate_zones({ucm(a, true), ucm(b)});
    REQUIRE(zr.zones.size() == 3);
    for (const Zone& z : zr.zones) {
        CHECK(z.name.size() <= kMaxZoneNameLength);
    }
    CHECK(zr.zones[0].name.rfind("CEtcp-cucm-publisher", 0) == 0);
    CHECK(zr.zones[1].name.rfind("CEtls-cucm-publisher", 0) == 0);
    CHECK(zr.zones[0].name != zr.zones[2].name); // same first 35 characters, different nodes
    CHECK(zr.zones[0].node == a);

    const SearchRule& r = zr.search_rules[0];
    CHECK(r.pattern_type == PatternType::Regex);
    CHECK(r.priority == 45);
    const std::regex re(r.pattern, std::regex::ECMAScript | std::regex::icase);
    CHECK(std::regex_match(a, re));
    CHECK(std::regex_match("alice@" + a + ":5061;transport=tls", re));
    CHECK_FALSE(std::regex_match("alice@" + b, re));
    CHECK_FALSE(std::regex_match("alice@" + a + ".evil.org", re));
    // the dots are escaped: a name differing only where a dot was does not match
    std::string dotless = a;
    dotless[dotless.find('.')] = 'x';
    CHECK_FALSE(std::regex_match(dotless, re));
    CHECK(r.matches("alice@" + a));
    CHECK_FALSE(r.matches("alice@" + b));
}

TEST_CASE("zone names are stable for the same node", "[mra][zones]") {
    const std::string n(80, 'x');
    CHECK(zone_name(ZoneTransport::Tcp, n) == zone_name(ZoneTransport::Tcp, n));
    CHECK(zone_name(ZoneTransport::Tcp, "a.b") == "CEtcp-a.b");
    CHECK(zone_name(ZoneTransport::Tls, "a.b") == "CEtls-a.b");
}

TEST_CASE("snapshot: the default deployment always exists and empty deployments resolve to it",
          "[mra][snapshot]") {
    SnapshotInput in;
    in.domains.push_back(Domain{"Example.COM", "", {}});
    in.nodes.push_back(ucm("cucm1.example.com"));
    auto snap = build_snapshot(in);
    REQUIRE(snap.ok());
    const Snapshot& s = **snap;
    REQUIRE(s.deployments.size() == 1);
    CHECK(s.deployments[0].name == "default");
    REQUIRE(s.find_domain("example.com") != nullptr);
    CHECK(s.find_domain("EXAMPLE.com")->deployment == "default");
    CHECK(s.find_node("CUCM1.example.com")->deployment == "default");
    CHECK(s.zones.size() == 1);
    CHECK(s.nodes_of("default", NodeType::UnifiedCM).size() == 1);
    CHECK(s.resolve_deployment("") == "default");
}

TEST_CASE("snapshot: a renamed default deployment is the one empty names resolve to", "[mra][snapshot]") {
    SnapshotInput in;
    in.default_deployment = "live";
    in.deployments = {Deployment{"staging"}};
    in.domains.push_back(Domain{"example.com", "", {}});
    auto snap = build_snapshot(in);
    REQUIRE(snap.ok());
    CHECK((*snap)->find_deployment("live") != nullptr);
    CHECK((*snap)->find_deployment("default") == nullptr);
    CHECK((*snap)->find_domain("example.com")->deployment == "live");
}

TEST_CASE("snapshot validation errors", "[mra][snapshot]") {
    SECTION("unknown deployment on a domain") {
        SnapshotInput in;
        in.domains.push_back(Domain{"example.com", "nowhere", {}});
        auto snap = build_snapshot(in);
        REQUIRE_FALSE(snap.ok());
        CHECK_THAT(snap.error().message, Catch::Contains("unknown deployment 'nowhere'"));
    }
    SECTION("unknown deployment on a node") {
        SnapshotInput in;
        UcNode n = ucm("cucm1.example.com");
        n.deployment = "nowhere";
        in.nodes.push_back(n);
        auto snap = build_snapshot(in);
        REQUIRE_FALSE(snap.ok());
        CHECK_THAT(snap.error().message, Catch::Contains("cucm1.example.com"));
    }
    SECTION("a domain in two deployments") {
        SnapshotInput in;
        in.deployments = {Deployment{"default"}, Deployment{"b"}};
        in.domains.push_back(Domain{"example.com", "default", {}});
        in.domains.push_back(Domain{"EXAMPLE.com", "b", {}});
        auto snap = build_snapshot(in);
        REQUIRE_FALSE(snap.ok());
        CHECK_THAT(snap.error().message, Catch::Contains("defined twice"));
    }
    SECTION("a node in two deployments") {
        SnapshotInput in;
        in.deployments = {Deployment{"default"}, Deployment{"b"}};
        UcNode n = ucm("cucm1.example.com");
        in.nodes.push_back(n);
        n.deployment = "b";
        in.nodes.push_back(n);
        auto snap = build_snapshot(in);
        REQUIRE_FALSE(snap.ok());
        CHECK_THAT(snap.error().message, Catch::Contains("defined twice"));
    }
    SECTION("duplicate deployment") {
        SnapshotInput in;
        in.deployments = {Deployment{"a"}, Deployment{"a"}};
        CHECK_FALSE(build_snapshot(in).ok());
    }
    SECTION("a node name that is not a host") {
        SnapshotInput in;
        in.nodes.push_back(ucm("cucm1 <evil>"));
        CHECK_FALSE(build_snapshot(in).ok());
    }
    SECTION("every error is reported, one per line") {
        SnapshotInput in;
        in.domains.push_back(Domain{"a.example.com", "x", {}});
        in.domains.push_back(Domain{"b.example.com", "y", {}});
        auto snap = build_snapshot(in);
        REQUIRE_FALSE(snap.ok());
        CHECK_THAT(snap.error().message,
                   Catch::Contains("'x'") && Catch::Contains("\n") && Catch::Contains("'y'"));
    }
}

TEST_CASE("snapshot warnings above the guide's recommended limits", "[mra][snapshot]") {
    auto has_warning = [](const Snapshot& s, const std::string& what) {
        for (const std::string& w : s.warnings) {
            if (w.find(what) != std::string::npos) {
                return true;
            }
        }
        return false;
    };
    SnapshotInput in;
    for (int i = 1; i < 10; ++i) { // plus the default: 10
        in.deployments.push_back(Deployment{"d" + std::to_string(i)});
    }
    for (int i = 0; i < 50; ++i) {
        in.domains.push_back(Domain{"dom" + std::to_string(i) + ".example.com", "", {}});
    }
    auto at_limit = build_snapshot(in);
    REQUIRE(at_limit.ok());
    CHECK((*at_limit)->deployments.size() == 10);
    CHECK_FALSE(has_warning(**at_limit, "deployments"));
    CHECK_FALSE(has_warning(**at_limit, "domains"));

    in.deployments.push_back(Deployment{"d10"});
    in.domains.push_back(Domain{"dom50.example.com", "", {}});
    auto above = build_snapshot(in);
    REQUIRE(above.ok());
    CHECK(has_warning(**above, "11 deployments"));
    CHECK(has_warning(**above, "51 domains"));
}

TEST_CASE("snapshot warns when a domain's services have no node in its deployment", "[mra][snapshot]") {
    SnapshotInput in;
    Domain d{"example.com", "", {}};
    d.services.sip_on_ucm = true;
    d.services.imp = true;
    in.domains.push_back(d);
    in.nodes.push_back(ucm("cucm1.example.com"));
    auto snap = build_snapshot(in);
    REQUIRE(snap.ok());
    REQUIRE((*snap)->warnings.size() == 1);
    CHECK_THAT((*snap)->warnings[0], Catch::Contains("IM and Presence"));
}
