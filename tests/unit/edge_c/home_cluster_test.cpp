#include <catch2/catch.hpp>

#include <string>

#include "common/mra/snapshot.h"
#include "edge-c/home_cluster.h"

using namespace edgepair;
using namespace edgepair::edge_c;

namespace {

// As tools/fixtures/ucm_fixture.py answers clusterUser (UDS API reference shape).
std::string found(const std::string& home, const std::string& user) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><clusterUser version=\"14.0.1\" "
           "uri=\"https://cucm1.example.com:8443/cucm-uds/clusterUser?username=" +
           user + "\"><result found=\"true\" uri=\"https://" + home + ":8443/cucm-uds/user/" + user +
           "\" version=\"14.0.1\"/><homeCluster serversUri=\"https://" + home + ":8443/cucm-uds/servers\">" +
           home + "</homeCluster></clusterUser>";
}

mra::UcNode ucm(const std::string& name, const std::string& publisher,
                mra::NodeStatus st = mra::NodeStatus::Active) {
    mra::UcNode n;
    n.name = name;
    n.type = mra::NodeType::UnifiedCM;
    n.publisher = publisher;
    n.status = st;
    return n;
}

} // namespace

TEST_CASE("clusterUser: found, not found, not a clusterUser answer", "[edge_c][home]") {
    auto a = parse_cluster_user(found("CUCM3.example.com", "bob"));
    REQUIRE(a);
    CHECK(a->found);
    CHECK(a->home_host == "cucm3.example.com");

    auto nf = parse_cluster_user("<clusterUser version=\"14.0.1\"><result found=\"false\"/></clusterUser>");
    REQUIRE(nf);
    CHECK_FALSE(nf->found);
    CHECK(nf->home_host.empty());

    // Without <homeCluster>, the host of result/@uri names the home.
    auto u =
        parse_cluster_user("<ns:clusterUser xmlns:ns=\"x\"><ns:result found=\"true\" "
                           "uri=\"https://cucm9.example.com:8443/cucm-uds/user/carol\"/></ns:clusterUser>");
    REQUIRE(u);
    CHECK(u->home_host == "cucm9.example.com");
    auto v6 = parse_cluster_user("<clusterUser><result found=\"true\" uri=\"https://[2001:db8::9]:8443/x\"/>"
                                 "</clusterUser>");
    REQUIRE(v6);
    CHECK(v6->home_host == "[2001:db8::9]");

    CHECK_FALSE(parse_cluster_user("<user><result found=\"true\"/></user>"));
    CHECK_FALSE(parse_cluster_user("not xml"));
    CHECK_FALSE(parse_cluster_user(""));
    // "found" is exactly "true": anything else is not found.
    CHECK_FALSE(parse_cluster_user("<clusterUser><result found=\"TRUE\"/></clusterUser>")->found);
}

TEST_CASE("clusters of a deployment: nodes grouped by publisher, unreachable nodes last", "[edge_c][home]") {
    mra::SnapshotInput in;
    in.deployments = {mra::Deployment{"default"}, mra::Deployment{"staging"}};
    in.nodes = {
        ucm("cucm2.example.com", "cucm1.example.com", mra::NodeStatus::Unreachable),
        ucm("cucm1.example.com", "cucm1.example.com"),
        ucm("cucm5.example.com", "cucm1.example.com"),
        ucm("cucm3.example.com", "cucm3.example.com"),
    };
    auto staged = ucm("cucm9.example.com", "cucm9.example.com");
    staged.deployment = "staging";
    in.nodes.push_back(staged);
    auto snap = mra::build_snapshot(in);
    REQUIRE(snap.ok());
    auto c = ucm_clusters(**snap, "default");
    REQUIRE(c.size() == 2);
    CHECK(c[0] == std::vector<std::string>{"cucm1.example.com", "cucm5.example.com", "cucm2.example.com"});
    CHECK(c[1] == std::vector<std::string>{"cucm3.example.com"});
    auto s = ucm_clusters(**snap, "staging");
    REQUIRE(s.size() == 1);
    CHECK(s[0] == std::vector<std::string>{"cucm9.example.com"});
    CHECK(ucm_clusters(**snap, "nosuch").empty());
}

TEST_CASE("clusterUser: the UDS user id comes from result/@uri (email= sign-in)", "[edge_c][home]") {
    // clusterUser?email=carol.smith@example.com answers with the id UDS stores, which is what the credential
    // check must use.
    auto a = parse_cluster_user("<clusterUser><result found=\"true\" "
                                "uri=\"https://cucm3.example.com:8443/cucm-uds/user/csmith\"/>"
                                "<homeCluster>cucm3.example.com</homeCluster></clusterUser>");
    REQUIRE(a);
    CHECK(a->user_id == "csmith");
    CHECK(parse_cluster_user("<clusterUser><result found=\"true\" "
                             "uri=\"https://h:8443/cucm-uds/user/j%2Edoe%40x/\"/></clusterUser>")
              ->user_id == "j.doe@x");
    // Anything that is not one plain segment gives no id (the signed-in name is used instead).
    for (const char* uri :
         {"https://h/cucm-uds/user/a/b", "https://h/cucm-uds/user/", "https://h/other/x",
          "https://h/cucm-uds/user/a%2Fb", "https://h/cucm-uds/user/a%0d", "https://h/cucm-uds/user/%4",
          "https://h/cucm-uds/user/..", "https://h/cucm-uds/user/%2e%2e"}) {
        auto r = parse_cluster_user(std::string("<clusterUser><result found=\"true\" uri=\"") + uri +
                                    "\"/></clusterUser>");
        REQUIRE(r);
        CHECK(r->user_id.empty());
    }
}
