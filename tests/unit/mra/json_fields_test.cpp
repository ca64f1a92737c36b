// Typed reads of peer JSON (common/mra/json_fields.h) and the snapshot/control fields read with them: what
// the link fuzzer found (1e30 -> uint16_t is UB, 70000 wrapped to 4464, 4294967296 workers read as 0).
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/link/control.h"
#include "common/mra/json_fields.h"
#include "common/mra/snapshot_json.h"

using namespace edgepair;
using nlohmann::json;

namespace {

std::string snapshot_with_node(const std::string& node_fields) {
    return R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[{"name":"a","type":"unified_cm")" +
           node_fields + R"(}],"rules":[]}})";
}

} // namespace

TEST_CASE("json_uint: integers in range only, absent gives the fallback", "[mra][json]") {
    auto j = json::parse(R"({"ok":65535,"big":65536,"huge":1e30,"float":8443.0,"neg":-1,"str":"7","null":null,
                             "u64":18446744073709551615})");
    CHECK(*mra::json_uint_as<uint16_t>(j, "ok", 1) == 65535);
    CHECK(*mra::json_uint_as<uint16_t>(j, "absent", 1) == 1);
    CHECK(*mra::json_uint(j, "u64", 0) == 18446744073709551615ull);
    for (const char* bad : {"big", "huge", "float", "neg", "str", "null"}) {
        CAPTURE(bad);
        auto v = mra::json_uint_as<uint16_t>(j, bad, 1);
        REQUIRE_FALSE(v.ok());
        CHECK_THAT(v.error().message, Catch::Contains(std::string("\"") + bad + "\""));
    }
    CHECK_THAT(mra::json_uint_as<uint16_t>(j, "big", 1).error().message, Catch::Contains("65535"));
    CHECK_FALSE(mra::json_uint_as<uint32_t>(json::parse(R"({"k":4294967296})"), "k", 1).ok());
    CHECK_FALSE(mra::json_uint(json::array(), "k", 1).ok());
}

TEST_CASE("json_string and json_bool refuse other JSON types", "[mra][json]") {
    auto j = json::parse(R"({"s":"x","n":1,"b":true,"z":0})");
    CHECK(*mra::json_string(j, "s") == "x");
    CHECK(*mra::json_string(j, "absent", "d") == "d");
    CHECK_THAT(mra::json_string(j, "n").error().message, Catch::Contains("\"n\""));
    CHECK(*mra::json_bool(j, "b", false));
    CHECK_FALSE(mra::json_bool(j, "z", false).ok());
    CHECK_FALSE(mra::json_bool(j, "s", false).ok());
}

TEST_CASE("snapshot: a node's port out of range or of the wrong type is refused, naming the field",
          "[mra][json]") {
    SECTION("in range") {
        auto in =
            mra::snapshot_input_from_control(snapshot_with_node(R"(,"https_port":65535,"sip_tls_port":0)"));
        REQUIRE(in.ok());
        REQUIRE(in->nodes.size() == 1);
        CHECK(in->nodes[0].https_port == 65535);
        CHECK(in->nodes[0].sip_tls_port == 0);
        CHECK(in->nodes[0].sip_tcp_port == 5060);
    }
    struct Case {
        const char* fields;
        const char* names;
    };
    for (auto c :
         {Case{R"(,"https_port":1e30)", "https_port"}, Case{R"(,"https_port":70000)", "https_port"},
          Case{R"(,"sip_tcp_port":-1)", "sip_tcp_port"}, Case{R"(,"sip_tls_port":5061.5)", "sip_tls_port"},
          Case{R"(,"sip_tls_port":"5061")", "sip_tls_port"}, Case{R"(,"mixed_mode":1)", "mixed_mode"},
          Case{R"(,"publisher":7)", "publisher"}, Case{R"(,"status":[])", "status"}}) {
        CAPTURE(c.fields);
        auto in = mra::snapshot_input_from_control(snapshot_with_node(c.fields));
        REQUIRE_FALSE(in.ok());
        CHECK_THAT(in.error().message, Catch::Contains(c.names) && Catch::Contains("node a"));
    }
    // The state file path (nodes_from_json) reads nodes the same way.
    auto nodes = mra::nodes_from_json(R"([{"name":"a","type":"unified_cm","https_port":70000}])");
    REQUIRE_FALSE(nodes.ok());
    CHECK_THAT(nodes.error().message, Catch::Contains("https_port"));
    CHECK_FALSE(mra::nodes_from_json(R"([7])").ok());
    CHECK_FALSE(mra::nodes_from_json(R"([{"type":"unified_cm"}])").ok());
}

TEST_CASE("snapshot: a domain flag of the wrong type is refused", "[mra][json]") {
    auto in = mra::snapshot_input_from_control(
        R"({"type":"snapshot","input":{"deployments":[],"domains":[{"name":"example.com","imp":"yes"}],"nodes":[],"rules":[]}})");
    REQUIRE_FALSE(in.ok());
    CHECK_THAT(in.error().message, Catch::Contains("\"imp\"") && Catch::Contains("example.com"));
}

TEST_CASE("snapshot: edge-c's sso.check_internal_availability travels, absent from an older edge-c",
          "[mra][json][sso]") {
    mra::SnapshotInput in;
    in.sso_check_internal = false;
    auto back = mra::snapshot_input_from_control(R"({"type":"snapshot","input":)" + mra::to_json(in) + "}");
    REQUIRE(back.ok());
    CHECK(back->sso_check_internal == std::optional<bool>(false));
    auto old = mra::snapshot_input_from_control(
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[],"rules":[]}})");
    REQUIRE(old.ok());
    CHECK_FALSE(old->sso_check_internal.has_value()); // not compared by edge-e
    auto bad = mra::snapshot_input_from_control(
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[],"rules":[],)"
        R"("sso_check_internal_availability":"no"}})");
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.error().message, Catch::Contains("sso_check_internal_availability"));
}

TEST_CASE("snapshot_input_from_control reads the input in place, at the depth the decoder lets through",
          "[mra][json]") {
    CHECK_FALSE(mra::snapshot_input_from_control(R"({"type":"snapshot","input":[]})").ok());
    CHECK_FALSE(mra::snapshot_input_from_control(R"({"type":"snapshot","input":"x"})").ok());
    // Nested as deep as link::kMaxControlDepth allows (the envelope and the input are two levels), inside a
    // field the reader never looks at.
    std::string deep =
        std::string(link::kMaxControlDepth - 2, '[') + std::string(link::kMaxControlDepth - 2, ']');
    std::string msg =
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[],"rules":[],"x":)" + deep +
        "}}";
    CHECK(mra::snapshot_input_from_control(msg).ok());
}

TEST_CASE("control_uint: a value above the type's range gives the fallback, not its low bits",
          "[mra][json]") {
    CHECK(mra::control_uint(R"({"type":"hello","workers":4294967296})", "workers", 1) == 1);
    CHECK(mra::control_uint(R"({"type":"hello","workers":4294967295})", "workers", 1) == 4294967295u);
    CHECK(mra::control_uint(R"({"type":"hello","workers":4})", "workers", 1) == 4);
    CHECK(mra::control_uint(R"({"type":"hello","workers":4.0})", "workers", 1) == 1);
    CHECK(mra::control_uint(R"({"type":"hello","workers":-4})", "workers", 1) == 1);
    CHECK(mra::control_uint(R"({"type":"hello","workers":"4"})", "workers", 1) == 1);
    CHECK(mra::control_uint(R"([4])", "workers", 1) == 1);
}
