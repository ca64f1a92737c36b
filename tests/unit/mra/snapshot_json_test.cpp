#include <catch2/catch.hpp>

#include "common/mra/snapshot_json.h"

using namespace edgepair::mra;

TEST_CASE("snapshot input survives the JSON round trip and rebuilds the same snapshot", "[mra][json]") {
    SnapshotInput in;
    in.deployments.push_back(Deployment{"emea"});
    in.domains.push_back(Domain{"example.com", "", {false, true, true, false}});
    in.domains.push_back(Domain{"example.org", "emea", {false, true, false, false}});
    UcNode n;
    n.name = "cucm1.example.com";
    n.publisher = "cucm1.example.com";
    n.mixed_mode = true;
    n.tftp = true;
    n.status = NodeStatus::Active;
    in.nodes.push_back(n);
    UcNode imp;
    imp.name = "imp1.example.com";
    imp.type = NodeType::ImP;
    imp.deployment = "emea";
    in.nodes.push_back(imp);
    AllowRule r;
    r.url = *parse_rule_url("https://web.example.com:8443/app/");
    r.methods = MethodSet{Method::Get, Method::Put};
    r.match = MatchType::Exact;
    r.description = "a \"quoted\" rule";
    in.editable_rules.push_back(r);

    auto back = snapshot_input_from_json(to_json(in));
    REQUIRE(back.ok());
    REQUIRE(back->domains.size() == 2);
    CHECK(back->domains[1].deployment == "emea");
    CHECK(back->domains[0].services.imp);
    REQUIRE(back->nodes.size() == 2);
    CHECK(back->nodes[0].mixed_mode);
    CHECK(back->nodes[0].tftp);
    CHECK(back->nodes[0].status == NodeStatus::Active);
    CHECK(back->nodes[1].type == NodeType::ImP);
    REQUIRE(back->editable_rules.size() == 1);
    CHECK(back->editable_rules[0].methods == MethodSet{Method::Get, Method::Put});
    CHECK(back->editable_rules[0].match == MatchType::Exact);
    CHECK(back->editable_rules[0].description == "a \"quoted\" rule");

    auto a = build_snapshot(in);
    auto b = build_snapshot(*back);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK((*a)->zones.size() == (*b)->zones.size());
    CHECK((*a)->search_rules.size() == (*b)->search_rules.size());
}

TEST_CASE("malformed snapshot documents are errors, not crashes", "[mra][json]") {
    CHECK_FALSE(snapshot_input_from_json("").ok());
    CHECK_FALSE(snapshot_input_from_json("{}").ok());
    CHECK_FALSE(snapshot_input_from_json(
                    R"({"deployments":[],"domains":[],"nodes":[{"name":"x","type":"toaster"}],"rules":[]})")
                    .ok());
    CHECK_FALSE(
        snapshot_input_from_json(R"({"deployments":[],"domains":[],"nodes":[],"rules":[{"url":"ftp://x"}]})")
            .ok());
    CHECK_FALSE(nodes_from_json("[{]").ok());
}
