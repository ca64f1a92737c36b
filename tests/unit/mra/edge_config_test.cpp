#include <catch2/catch.hpp>

#include <pugixml.hpp>
#include <string>
#include <vector>

#include "common/mra/edge_config.h"

using namespace edgepair::mra;

namespace {

UcNode node(std::string name, NodeType t, std::string deployment = "", bool tftp = false) {
    UcNode n;
    n.name = std::move(name);
    n.type = t;
    n.deployment = std::move(deployment);
    n.tftp = tftp;
    return n;
}

std::shared_ptr<const Snapshot> snapshot() {
    SnapshotInput in;
    in.deployments = {Deployment{"default"}, Deployment{"staging"}};
    Domain full{"example.com", "", {}};
    full.services.sip_on_ucm = true;
    full.services.imp = true;
    Domain voice{"voice.example.com", "staging", {}};
    voice.services.sip_on_ucm = true;
    Domain off{"off.example.com", "", {}};
    off.services.xmpp_federation = true;
    in.domains = {full, voice, off};
    UcNode down = node("cucm3.example.com", NodeType::UnifiedCM);
    down.status = NodeStatus::Unreachable;
    in.nodes = {
        node("cucm1.example.com", NodeType::UnifiedCM, "", true),
        node("cucm2.example.com", NodeType::UnifiedCM, "", true),
        down,
        node("imp1.example.com", NodeType::ImP),
        node("cucm9.example.com", NodeType::UnifiedCM, "staging"),
    };
    auto snap = build_snapshot(in);
    REQUIRE(snap.ok());
    return *snap;
}

EdgeAddresses edge() {
    EdgeAddresses e;
    e.fqdn = "expe1.example.com";
    return e;
}

pugi::xml_node service(const pugi::xml_document& doc, std::string_view name) {
    for (pugi::xml_node s : doc.child("getEdgeConfigResponse").child("serviceConfig").children("service")) {
        if (name == s.child_value("name")) {
            return s;
        }
    }
    return {};
}

std::vector<std::string> names_of(const pugi::xml_document& doc) {
    std::vector<std::string> out;
    for (pugi::xml_node s : doc.child("getEdgeConfigResponse").child("serviceConfig").children("service")) {
        out.emplace_back(s.child_value("name"));
    }
    return out;
}

} // namespace

TEST_CASE("sip_route is a loose route to edge-e's SIP/TLS port", "[mra][edgeconfig]") {
    CHECK(sip_route("expe1.example.com", 5061) == "<sip:expe1.example.com:5061;transport=tls;lr>");
    CHECK(sip_route("192.168.2.100", 5061, "zone-id=3;directed") ==
          "<sip:192.168.2.100:5061;transport=tls;zone-id=3;directed;lr>");
}

TEST_CASE("edge config for a domain with SIP and IM&P, parsed back field by field", "[mra][edgeconfig]") {
    auto snap = snapshot();
    auto cfg = edge_config_for(*snap, "Example.COM", edge(), std::string("CUCM2.example.com"));
    REQUIRE(cfg.ok());
    const std::string xml = build_edge_config_xml(*cfg, {"_cisco-uds", "_cuplogin"});

    pugi::xml_document doc;
    REQUIRE(doc.load_string(xml.c_str()));
    CHECK(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0) == 0);
    pugi::xml_node root = doc.child("getEdgeConfigResponse");
    REQUIRE(root);
    CHECK(std::string(root.attribute("version").value()) == "1.0");

    CHECK(names_of(doc) == std::vector<std::string>{"_cisco-uds", "_cuplogin", "tftpServer"});

    pugi::xml_node uds = service(doc, "_cisco-uds");
    REQUIRE(uds);
    CHECK_FALSE(uds.child("error"));
    std::vector<std::string> uds_addresses;
    for (pugi::xml_node s : uds.children("server")) {
        CHECK(std::string(s.child_value("priority")) == "1");
        CHECK(std::string(s.child_value("weight")) == "1");
        CHECK(std::string(s.child_value("port")) == "8443");
        uds_addresses.emplace_back(s.child_value("address"));
    }
    // cucm3 is unreachable and cucm9 is in another deployment
    CHECK(uds_addresses == std::vector<std::string>{"cucm1.example.com", "cucm2.example.com"});

    pugi::xml_node cup = service(doc, "_cuplogin");
    REQUIRE(cup);
    CHECK(std::string(cup.child("server").child_value("address")) == "imp1.example.com");
    CHECK(std::string(cup.child("server").child_value("port")) == "8443");

    std::vector<std::string> tftp;
    for (pugi::xml_node a : service(doc, "tftpServer").children("address")) {
        tftp.emplace_back(a.child_value());
    }
    CHECK(tftp == std::vector<std::string>{"cucm1.example.com", "cucm2.example.com"});

    pugi::xml_node ec = root.child("edgeConfig");
    REQUIRE(ec);
    CHECK(std::string(ec.child("sipEdgeServer").child("server").child_value("address")) ==
          "expe1.example.com");
    CHECK(std::string(ec.child("sipEdgeServer").child("server").child_value("tlsPort")) == "5061");
    CHECK(std::string(ec.child("sipRequest").child_value("route")) ==
          "<sip:expe1.example.com:5061;transport=tls;lr>");
    CHECK(xml.find("&lt;sip:expe1.example.com:5061;transport=tls;lr&gt;") != std::string::npos);
    CHECK(std::string(ec.child("xmppEdgeServer").child("server").child_value("address")) ==
          "expe1.example.com");
    CHECK(std::string(ec.child("xmppEdgeServer").child("server").child_value("tlsPort")) == "5222");
    CHECK(std::string(ec.child("httpEdgeServer").child("server").child_value("address")) ==
          "expe1.example.com");
    CHECK(std::string(ec.child("httpEdgeServer").child("server").child_value("tlsPort")) == "8443");
    CHECK(ec.child("turnEdgeServer"));
    CHECK(std::string(ec.child("userUdsServer").child("server").child_value("address")) ==
          "cucm2.example.com");
    CHECK(std::string(ec.child("userUdsServer").child("server").child_value("tlsPort")) == "8443");

    // element order as in the Expressway capture
    std::vector<std::string> order;
    for (pugi::xml_node c : ec.children()) {
        order.emplace_back(c.name());
    }
    CHECK(order == std::vector<std::string>{"sipEdgeServer", "sipRequest", "xmppEdgeServer", "httpEdgeServer",
                                            "turnEdgeServer", "userUdsServer"});
}

TEST_CASE("edge config without requested services lists the three SRV services", "[mra][edgeconfig]") {
    auto snap = snapshot();
    auto cfg = edge_config_for(*snap, "example.com", edge());
    REQUIRE(cfg.ok());
    pugi::xml_document doc;
    REQUIRE(doc.load_string(build_edge_config_xml(*cfg).c_str()));
    CHECK(names_of(doc) ==
          std::vector<std::string>{"_cisco-phone-tftp", "_cuplogin", "_cisco-uds", "tftpServer"});
    CHECK(std::string(service(doc, "_cisco-phone-tftp").child_value("error")) == "NameError");
    CHECK_FALSE(doc.child("getEdgeConfigResponse").child("edgeConfig").child("userUdsServer"));
}

TEST_CASE("edge config for a voice-only domain in another deployment", "[mra][edgeconfig]") {
    auto snap = snapshot();
    EdgeAddresses e = edge();
    e.route_host = "192.0.2.10";
    e.route_params = "zone-id=3;directed";
    auto cfg = edge_config_for(*snap, "voice.example.com", e);
    REQUIRE(cfg.ok());
    pugi::xml_document doc;
    REQUIRE(doc.load_string(build_edge_config_xml(*cfg, {"_cisco-uds", "_cuplogin", "_bogus"}).c_str()));
    CHECK(std::string(service(doc, "_cisco-uds").child("server").child_value("address")) ==
          "cucm9.example.com");
    CHECK(std::string(service(doc, "_cuplogin").child_value("error")) == "NameError");
    CHECK(std::string(service(doc, "_bogus").child_value("error")) == "NameError");
    CHECK_FALSE(service(doc, "tftpServer").child("address"));
    pugi::xml_node ec = doc.child("getEdgeConfigResponse").child("edgeConfig");
    CHECK_FALSE(ec.child("xmppEdgeServer"));
    CHECK(std::string(ec.child("sipRequest").child_value("route")) ==
          "<sip:192.0.2.10:5061;transport=tls;zone-id=3;directed;lr>");
}

TEST_CASE("edge config errors", "[mra][edgeconfig]") {
    auto snap = snapshot();
    auto unknown = edge_config_for(*snap, "nope.example.com", edge());
    REQUIRE_FALSE(unknown.ok());
    CHECK_THAT(unknown.error().message, Catch::Contains("unknown domain"));
    auto off = edge_config_for(*snap, "off.example.com", edge());
    REQUIRE_FALSE(off.ok());
    CHECK_THAT(off.error().message, Catch::Contains("neither SIP"));

    EdgeAddresses bad = edge();
    bad.route_params = "x>;evil";
    CHECK_FALSE(edge_config_for(*snap, "example.com", bad).ok());
    bad = edge();
    bad.fqdn = "expe1.example.com\n<x/>";
    CHECK_FALSE(edge_config_for(*snap, "example.com", bad).ok());
    CHECK_FALSE(edge_config_for(*snap, "example.com", edge(), std::string("a&b")).ok());

    SnapshotInput in;
    Domain d{"lonely.example.com", "", {}};
    d.services.sip_on_ucm = true;
    in.domains = {d};
    auto empty = build_snapshot(in);
    REQUIRE(empty.ok());
    auto none = edge_config_for(**empty, "lonely.example.com", edge());
    REQUIRE_FALSE(none.ok());
    CHECK_THAT(none.error().message, Catch::Contains("no reachable Unified CM node"));
}

TEST_CASE("get_edge_sso answer", "[mra][edgeconfig]") {
    for (bool v : {true, false}) {
        pugi::xml_document doc;
        REQUIRE(doc.load_string(build_edge_sso_xml(v).c_str()));
        CHECK(std::string(doc.child("getEdgeSsoResponse").child_value("sso")) == (v ? "true" : "false"));
    }
}
