#include <catch2/catch.hpp>

#include <string>

#include "edge-c/discovery.h"

using namespace edgepair::edge_c;

namespace {

constexpr const char* kVoice = "CUCM Voice/Video";
constexpr const char* kImp = "CUCM IM and Presence";

// As tools/fixtures/ucm_fixture.py writes them (soap_envelope / axl_response / axl_fault_xml).
std::string envelope(const std::string& inner) {
    return "<?xml version='1.0' encoding='UTF-8'?><soapenv:Envelope "
           "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>" +
           inner + "</soapenv:Body></soapenv:Envelope>";
}

std::string axl_response(const std::string& op, const std::string& inner, const std::string& ver = "14.0") {
    return envelope("<ns:" + op + "Response xmlns:ns=\"http://www.cisco.com/AXL/API/" + ver + "\"><return>" +
                    inner + "</return></ns:" + op + "Response>");
}

std::string axl_fault(const std::string& code, const std::string& msg, const std::string& op) {
    return envelope("<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>" + msg +
                    "</faultstring><detail><axlError><axlcode>" + code + "</axlcode><axlmessage>" + msg +
                    "</axlmessage><request>" + op + "</request></axlError></detail></soapenv:Fault>");
}

std::string process_node(const std::string& name, const std::string& usage, const std::string& role) {
    return "<processNode uuid=\"{8E5C4E0B-0000-0000-0000-000000000001}\"><name>" + name +
           "</name><nodeUsage>" + usage + "</nodeUsage><processNodeRole>" + role +
           "</processNodeRole></processNode>";
}

AxlReply ok_reply(const std::string& body) {
    auto rep = parse_axl_reply(200, body);
    REQUIRE(rep.kind == AxlReply::Ok);
    return rep;
}

} // namespace

TEST_CASE("AXL replies: Ok, Fault and the malformed kinds", "[edge_c][discovery]") {
    SECTION("a response element with its return") {
        auto rep = parse_axl_reply(200, axl_response("getCCMVersion",
                                                     "<componentVersion><version>14.0.1.13900-155</version>"
                                                     "</componentVersion>"));
        REQUIRE(rep.kind == AxlReply::Ok);
        CHECK(parse_ccm_version(rep.ret) == "14.0.1.13900-155");
    }
    SECTION("namespace prefixes are ignored, whatever they are") {
        auto body = "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body>"
                    "<axl:getCCMVersionResponse xmlns:axl=\"http://www.cisco.com/AXL/API/12.5\"><axl:return>"
                    "<axl:componentVersion><axl:version> 12.5.1 </axl:version></axl:componentVersion>"
                    "</axl:return></axl:getCCMVersionResponse></S:Body></S:Envelope>";
        CHECK(parse_ccm_version(ok_reply(body).ret) == "12.5.1");
        // No prefix at all (default namespace).
        auto plain = "<Envelope><Body><getCCMVersionResponse><return><componentVersion><version>15.0"
                     "</version></componentVersion></return></getCCMVersionResponse></Body></Envelope>";
        CHECK(parse_ccm_version(ok_reply(plain).ret) == "15.0");
    }
    SECTION("an AXL fault with its code") {
        auto rep = parse_axl_reply(
            500, axl_fault("-206", "The specified table (xmpps2snodes) is not in the database.",
                           "executeSQLQuery"));
        REQUIRE(rep.kind == AxlReply::Fault);
        CHECK(rep.axlcode == "-206");
        CHECK(rep.message == "The specified table (xmpps2snodes) is not in the database.");
        CHECK_FALSE(rep.ret);
    }
    SECTION("the Axis2 fault for an unknown operation has no axlError") {
        auto rep = parse_axl_reply(
            500, envelope("<soapenv:Fault><faultcode>axis2ns1:Client</faultcode><faultstring>The endpoint "
                          "reference (EPR) for the Operation not found is https://cucm1:8443/axl/services/"
                          "AXLAPIService</faultstring><detail/></soapenv:Fault>"));
        REQUIRE(rep.kind == AxlReply::Fault);
        CHECK(rep.axlcode.empty());
        CHECK(rep.message.starts_with("The endpoint reference (EPR)"));
    }
    SECTION("HTTP 500 without a Fault, HTTP 200 without a return") {
        CHECK(parse_axl_reply(500, axl_response("getCCMVersion", "")).kind == AxlReply::NoFault);
        CHECK(parse_axl_reply(200, envelope("<ns:getCCMVersionResponse xmlns:ns=\"x\"/>")).kind ==
              AxlReply::NoReturn);
        CHECK(parse_axl_reply(200, envelope("")).kind == AxlReply::NoReturn);
        // A Fault answered with 200 is not taken for a fault: the status decides.
        CHECK(parse_axl_reply(200, axl_fault("5007", "Item not valid", "getProcessNode")).kind ==
              AxlReply::NoReturn);
        // The return must be a child of the first Body element, not anywhere below.
        CHECK(parse_axl_reply(200, envelope("<a><b><return/></b></a>")).kind == AxlReply::NoReturn);
    }
    SECTION("no envelope: HTML, JSON, truncated or wrong root") {
        struct Case {
            std::string body;
            bool xml_error;
        };
        const Case cases[] = {
            {"", true},
            {"<html><body><h1>AXL Web Service is working</h1></body></html>", false},
            {"{\"return\": {}}", true},
            {axl_response("getCCMVersion", "<componentVersion>").substr(0, 120), true},
            {"<Body><getCCMVersionResponse><return/></getCCMVersionResponse></Body>", false},
            {"<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"/>", false},
            {"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>", false},
        };
        for (auto& c : cases) {
            CAPTURE(c.body);
            auto rep = parse_axl_reply(200, c.body);
            CHECK(rep.kind == AxlReply::NoEnvelope);
            CHECK(rep.parse_error.empty() == !c.xml_error);
            CHECK(parse_axl_reply(500, c.body).kind == AxlReply::NoEnvelope);
        }
    }
}

TEST_CASE("listProcessNode: nodes of the asked role, EnterpriseWideData skipped", "[edge_c][discovery]") {
    auto body = axl_response(
        "listProcessNode",
        process_node("EnterpriseWideData", "Subscriber", kVoice) +
            process_node("CUCM2.example.com", "Subscriber", kVoice) +
            process_node("cucm1.example.com", "Publisher", kVoice) +
            process_node("imp1.example.com", "Publisher", kImp) +
            "<processNode><name>cucm3.example.com</name></processNode>" + // no role: taken as asked
            "<processNode><name>  </name><processNodeRole>CUCM Voice/Video</processNodeRole></processNode>" +
            "<callManager><name>cm_cucm4</name></callManager>" + "<!-- comment --><?pi x?>text");
    auto rep = ok_reply(body);

    auto voice = parse_process_nodes(rep.ret, kVoice);
    CHECK(voice.names ==
          std::vector<std::string>{"cucm2.example.com", "cucm1.example.com", "cucm3.example.com"});
    CHECK(voice.publisher == "cucm1.example.com");

    auto imp = parse_process_nodes(rep.ret, kImp);
    CHECK(imp.names == std::vector<std::string>{"imp1.example.com", "cucm3.example.com"});
    CHECK(imp.publisher == "imp1.example.com");
}

TEST_CASE("listProcessNode: empty lists and lists without a publisher", "[edge_c][discovery]") {
    auto empty = parse_process_nodes(ok_reply(axl_response("listProcessNode", "")).ret, kVoice);
    CHECK(empty.names.empty());
    CHECK(empty.publisher.empty());

    auto only_ewd = parse_process_nodes(
        ok_reply(axl_response("listProcessNode", process_node("EnterpriseWideData", "Subscriber", kVoice)))
            .ret,
        kVoice);
    CHECK(only_ewd.names.empty());

    auto subs = parse_process_nodes(
        ok_reply(axl_response("listProcessNode", process_node("a", "Subscriber", kVoice) +
                                                     process_node("b", "publisher", kVoice)))
            .ret,
        kVoice);
    CHECK(subs.names == std::vector<std::string>{"a", "b"});
    CHECK(subs.publisher.empty()); // nodeUsage is matched exactly

    // A null node (no <return>) lists nothing rather than crashing.
    CHECK(parse_process_nodes({}, kVoice).names.empty());
}

TEST_CASE("executeSQLQuery: cluster security mode and cluster ID", "[edge_c][discovery]") {
    auto row = [](const std::string& name, const std::string& value) {
        return "<row><paramname>" + name + "</paramname><paramvalue>" + value + "</paramvalue></row>";
    };
    CHECK(parse_security_mode(
              ok_reply(axl_response("executeSQLQuery", row("ClusterSecurityMode", "1"))).ret) == true);
    CHECK(parse_security_mode(
              ok_reply(axl_response("executeSQLQuery", row("ClusterSecurityMode", "0"))).ret) == false);
    CHECK(parse_security_mode(
              ok_reply(axl_response("executeSQLQuery", row("ClusterSecurityMode", " 1\n"))).ret) == true);
    CHECK(parse_security_mode(
              ok_reply(axl_response("executeSQLQuery", row("ClusterSecurityMode", "2"))).ret) == false);
    CHECK(parse_security_mode(
              ok_reply(axl_response("executeSQLQuery",
                                    "<row><paramname>ClusterSecurityMode</paramname><paramvalue/>"
                                    "</row>"))
                  .ret) == false);
    CHECK_FALSE(parse_security_mode(ok_reply(axl_response("executeSQLQuery", "")).ret).has_value());

    CHECK(parse_cluster_id(
              ok_reply(axl_response("executeSQLQuery", row("ClusterID", "StandAloneCluster"))).ret) ==
          "StandAloneCluster");
    CHECK(parse_cluster_id(ok_reply(axl_response("executeSQLQuery", "")).ret).empty());
    CHECK(parse_cluster_id(ok_reply(axl_response("executeSQLQuery",
                                                 row("ClusterID", "first") + row("ClusterID", "second")))
                               .ret) == "first");
}

TEST_CASE("getCallManager: SIP ports by node", "[edge_c][discovery]") {
    auto cm = [](const std::string& node, const std::string& ports) {
        return "<callManager uuid=\"{1}\"><name>CM_" + node + "</name><ports>" + ports +
               "</ports><processNodeName uuid=\"{2}\">" + node + "</processNodeName></callManager>";
    };
    const std::string fixture_ports =
        "<ethernetPhonePort>2000</ethernetPhonePort><mgcpPorts><listen>2427</listen>"
        "<keepAlive>2428</keepAlive></mgcpPorts><sipPort>5070</sipPort>"
        "<securedSipPort>5071</securedSipPort><sipOAuthPort>5090</sipOAuthPort>";
    auto ports = parse_call_manager_ports(
        ok_reply(
            axl_response(
                "getCallManager",
                cm("CUCM1.example.com", fixture_ports) + cm("cucm2.example.com", "<sipPort>junk</sipPort>") +
                    cm("cucm3.example.com", "<sipPort>-5</sipPort><securedSipPort>99999</securedSipPort>") +
                    "<processNode><name>x</name></processNode>"))
            .ret);
    REQUIRE(ports.size() == 3);
    CHECK(ports.at("cucm1.example.com") == std::pair{5070, 5071});
    // Not numbers are 0; out-of-range values come back as read and the caller keeps 1..65535 only.
    CHECK(ports.at("cucm2.example.com") == std::pair{0, 0});
    CHECK(ports.at("cucm3.example.com") == std::pair{-5, 99999});

    CHECK(parse_call_manager_ports(ok_reply(axl_response("getCallManager", "")).ret).empty());
}

TEST_CASE("listCallManager: object references without ports", "[edge_c][discovery]") {
    // The list form of AXLSoap.xsd (LCallManager): ctiid and uuid attributes, name and processNodeName.
    auto refs = parse_call_manager_list(
        ok_reply(
            axl_response("listCallManager",
                         "<callManager ctiid=\"1\" uuid=\"{AB-1}\"><name>CM_cucm1</name>"
                         "<processNodeName uuid=\"{2}\">CUCM1.example.com</processNodeName></callManager>"
                         "<callManager uuid=\"{AB-2}\"><processNodeName>cucm2.example.com</processNodeName>"
                         "</callManager><callManager><name>CM_cucm3</name></callManager>"
                         "<callManager><processNodeName>orphan</processNodeName></callManager>"
                         "<processNode uuid=\"{X}\"><name>x</name></processNode>"))
            .ret);
    REQUIRE(refs.size() == 3);
    CHECK(refs[0].name == "CM_cucm1");
    CHECK(refs[0].uuid == "{AB-1}");
    CHECK(refs[0].node == "cucm1.example.com");
    CHECK(refs[1].name.empty());
    CHECK(refs[1].uuid == "{AB-2}");
    CHECK(refs[2].name == "CM_cucm3");
    CHECK(refs[2].uuid.empty());
    CHECK(refs[2].node.empty());
    CHECK(parse_call_manager_list(ok_reply(axl_response("listCallManager", "")).ret).empty());
}

TEST_CASE("CUPI: version and cluster members", "[edge_c][discovery]") {
    CHECK(parse_cupi_version(
              "<?xml version=\"1.0\"?><VersionInformation><name>vmrest</name><version>14.0.1.10000-"
              "117</version></VersionInformation>") == "14.0.1.10000-117");
    CHECK(parse_cupi_version("<html>Not Found</html>").empty());
    CHECK(parse_cupi_version("<VersionInformation><version>14").empty());
    CHECK(parse_cupi_version("").empty());

    auto server = [](const std::string& host, const std::string& id) {
        return "<VmsServer><URI>/vmrest/vmsservers/x</URI><ServerName>" + host + "</ServerName><HostName>" +
               host + "</HostName><ClusterMemberId>" + id + "</ClusterMemberId></VmsServer>";
    };
    auto c = parse_cupi_cluster("<VmsServers total=\"2\">" + server("CUC2.example.com", "1") +
                                server("cuc1.example.com", "0") + "</VmsServers>");
    REQUIRE(c);
    CHECK(c->names == std::vector<std::string>{"cuc2.example.com", "cuc1.example.com"});
    CHECK(c->publisher == "cuc1.example.com");

    // No member 0: the first server stands for the publisher; ServerName when HostName is empty.
    c = parse_cupi_cluster("<VmsServers><VmsServer><ServerName>b</ServerName><HostName/></VmsServer>"
                           "<VmsServer><HostName>c</HostName></VmsServer><VmsServer/></VmsServers>");
    REQUIRE(c);
    CHECK(c->names == std::vector<std::string>{"b", "c"});
    CHECK(c->publisher == "b");

    c = parse_cupi_cluster("<VmsServers total=\"0\"/>");
    REQUIRE(c);
    CHECK(c->names.empty());

    CHECK_FALSE(parse_cupi_cluster(""));
    CHECK_FALSE(parse_cupi_cluster("<html><body>Unity Connection</body></html>"));
    CHECK_FALSE(parse_cupi_cluster("<VmsServers><VmsServer><HostName>a</HostName>"));
}

TEST_CASE("HTTP 599: the highest AXL schema the node lists", "[edge_c][discovery]") {
    struct Case {
        std::string body, version;
    };
    const Case cases[] = {
        {"<html><body>Incorrect axl version. Supported axl versions are 12.0, 12.5, 14.0 and "
         "15.0</body></html>",
         "15.0"},
        {"Incorrect axl version. Supported axl versions are 12.x, 14.0 and 15.0", "15.0"},
        {"Supported axl versions are 15.0, 9.1, 14.0", "15.0"},
        {"Supported axl versions are 10.5 and 10.10", "10.10"},
        // Only the text up to the next tag is read.
        {"Supported axl versions are 11.5<br/>99.0", "11.5"},
        {"Supported axl versions are none", ""},
        {"Supported axl versions are 12", ""},
        {"Incorrect axl version.", ""},
        {"", ""},
        // Digit runs are bounded: no overflow on absurd numbers.
        {"Supported axl versions are 99999999999999999999.99999999999999999", "9999.999"},
    };
    for (auto& c : cases) {
        CAPTURE(c.body);
        CHECK(highest_listed_axl_version(c.body) == c.version);
    }
}

TEST_CASE("page_summary: the text of an error page, bounded", "[edge_c][discovery]") {
    CHECK(page_summary(
              "<html><head><title>Error</title></head><body><h1>HTTP Status 403 - </h1>\n<p>Access   "
              "denied</p><!-- <b>hidden</b> --></body></html>") == "Error HTTP Status 403 - Access denied");
    CHECK(page_summary("plain text") == "plain text");
    CHECK(page_summary("").empty());
    CHECK(page_summary("<!-- never closed").empty());
    CHECK(page_summary(std::string(100000, 'x')).size() == 240);
}
