// The link's control stream as edge-e reads it: framing (common/link/control.h) and the JSON envelope
// (common/mra/snapshot_json.h). edge-c is authenticated, but what it sends is still parsed input.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/link/control.h"
#include "common/mra/snapshot_json.h"

using namespace edgepair;

namespace {

std::vector<std::string> decode_all(link::ControlDecoder& d, std::string_view wire, size_t chunk, bool* ok) {
    std::vector<std::string> out;
    *ok = true;
    for (size_t i = 0; i < wire.size() && *ok; i += chunk) {
        auto n = std::min(chunk, wire.size() - i);
        *ok = d.feed(wire.data() + i, n, [&](std::string_view m) { out.emplace_back(m); });
    }
    return out;
}

mra::SnapshotInput sample_input() {
    mra::SnapshotInput in;
    in.deployments.push_back(mra::Deployment{"emea"});
    in.domains.push_back(mra::Domain{"example.com", "", {false, true, true, false}});
    mra::UcNode n;
    n.name = "cucm1.example.com";
    n.publisher = "cucm1.example.com";
    n.https_port = 8443;
    n.sip_tcp_port = 5070;
    n.mixed_mode = true;
    in.nodes.push_back(n);
    return in;
}

} // namespace

TEST_CASE("control framing: any split of the stream gives the same messages", "[edge_e][control]") {
    const std::vector<std::string> msgs = {
        R"({"type":"link-up","node":"edge-e-1","version":"1"})",
        "",
        R"({"type":"hello","workers":4,"worker":2})",
        mra::snapshot_control(sample_input()),
        std::string(70000, 'x'),
    };
    std::string wire;
    for (auto& m : msgs)
        wire += link::frame_control(m);
    for (size_t chunk : {size_t(1), size_t(3), size_t(4), size_t(5), size_t(4096), wire.size()}) {
        CAPTURE(chunk);
        link::ControlDecoder d(1 << 20);
        bool ok = false;
        CHECK(decode_all(d, wire, chunk, &ok) == msgs);
        CHECK(ok);
        CHECK(d.buffered() == 0);
        CHECK(d.error().empty());
    }
}

TEST_CASE("control framing: the length limit is exact and final", "[edge_e][control]") {
    link::ControlDecoder d(16);
    bool ok = false;
    CHECK(decode_all(d, link::frame_control(std::string(16, 'a')), 1, &ok) ==
          std::vector<std::string>{std::string(16, 'a')});
    CHECK(ok);

    // A length over the limit is refused from its 4 header bytes alone, before any payload is buffered.
    std::vector<std::string> got;
    auto over = link::frame_control(std::string(17, 'b'));
    CHECK_FALSE(d.feed(over.data(), 4, [&](std::string_view m) { got.emplace_back(m); }));
    CHECK(d.error().find("17 bytes exceeds the 16 byte limit") != std::string::npos);
    // The stream cannot be resynchronised: nothing more is delivered, even a valid frame.
    auto good = link::frame_control("{}");
    CHECK_FALSE(d.feed(good.data(), good.size(), [&](std::string_view m) { got.emplace_back(m); }));
    CHECK(got.empty());

    link::ControlDecoder huge(1 << 20);
    const char ff[] = "\xff\xff\xff\xff{}";
    CHECK_FALSE(huge.feed(ff, 6, [&](std::string_view m) { got.emplace_back(m); }));
    CHECK(got.empty());
}

TEST_CASE("control framing: deeply nested messages never reach a JSON handler", "[edge_e][control]") {
    auto nested = [](size_t depth) {
        return R"({"type":"snapshot","input":)" + std::string(depth - 1, '[') + std::string(depth - 1, ']') +
               "}";
    };
    std::vector<std::string> got;
    auto cb = [&](std::string_view m) { got.emplace_back(m); };

    link::ControlDecoder d(1 << 20);
    auto ok = link::frame_control(nested(link::kMaxControlDepth)) +
              link::frame_control(mra::snapshot_control(sample_input()));
    CHECK(d.feed(ok.data(), ok.size(), cb));
    CHECK(got.size() == 2);

    // 200,000 levels overflowed the stack of snapshot_input_from_control (nlohmann::json::dump recurses).
    for (size_t depth : {link::kMaxControlDepth + 1, size_t(200000)}) {
        CAPTURE(depth);
        got.clear();
        link::ControlDecoder deep(1 << 20);
        auto wire = link::frame_control(nested(depth));
        CHECK_FALSE(deep.feed(wire.data(), wire.size(), cb));
        CHECK(got.empty());
        CHECK(deep.error().find("nests deeper than 32 levels") != std::string::npos);
    }
}

TEST_CASE("json_nesting_depth counts brackets outside strings only", "[edge_e][control]") {
    struct Case {
        std::string text;
        size_t depth;
    };
    const Case cases[] = {
        {"", 0},
        {"42", 0},
        {"{}", 1},
        {R"({"a":[1,{"b":[]}]})", 4},
        {R"({"a":"[[[[{{{{"})", 1},
        {R"({"a":"\"[[[["})", 1},
        {R"({"a":"\\"}[[)", 2},
        {"]]]][", 1},
        {std::string(1000, '['), 33}, // counting stops past the limit
    };
    for (auto& c : cases) {
        CAPTURE(c.text);
        CHECK(link::json_nesting_depth(c.text) == c.depth);
    }
    CHECK(link::json_nesting_depth(std::string(1000, '{'), 2000) == 1000);
}

TEST_CASE("control framing: a partial frame is kept, not delivered", "[edge_e][control]") {
    link::ControlDecoder d(1024);
    auto f = link::frame_control(R"({"type":"hello"})");
    std::vector<std::string> got;
    auto cb = [&](std::string_view m) { got.emplace_back(m); };
    REQUIRE(d.feed(f.data(), 3, cb));
    CHECK(d.buffered() == 3);
    REQUIRE(d.feed(f.data() + 3, f.size() - 4, cb));
    CHECK(got.empty());
    CHECK(d.buffered() == f.size() - 1);
    REQUIRE(d.feed(f.data() + f.size() - 1, 1, cb));
    CHECK(got == std::vector<std::string>{R"({"type":"hello"})"});
    CHECK(d.buffered() == 0);
}

TEST_CASE("control_type: only a JSON object with a string type has one", "[edge_e][control]") {
    struct Case {
        std::string msg, type;
    };
    const Case cases[] = {
        {R"({"type":"hello","workers":2,"worker":0})", "hello"},
        {R"({"type":"link-up","node":"e1","version":"1"})", "link-up"},
        {R"({"type":"media_open","id":1,"client":"192.0.2.1","streams":2})", "media_open"},
        {R"(  {"id":1, "type" : "snapshot"}  )", "snapshot"},
        {R"({"type":""})", ""},
        {R"({"type":1})", ""},
        {R"({"type":null})", ""},
        {R"({"type":["hello"]})", ""},
        {R"({"Type":"hello"})", ""},
        {R"({"input":{"type":"hello"}})", ""},
        {R"(["type","hello"])", ""},
        {R"("hello")", ""},
        {R"({"type":"hello")", ""},
        {R"({"type":"hello"} trailing)", ""},
        {"", ""},
        {std::string("{\"type\":\"he\0llo\"}", 17), ""},
        {"{\"type\":\"\xff\"}", ""},
    };
    for (auto& c : cases) {
        CAPTURE(c.msg);
        CHECK(mra::control_type(c.msg) == c.type);
    }
}

TEST_CASE("control_uint: unsigned numbers only, else the fallback", "[edge_e][control]") {
    struct Case {
        std::string msg;
        unsigned value;
    };
    const Case cases[] = {
        {R"({"type":"hello","workers":4})", 4},
        {R"({"workers":0})", 0},
        {R"({"workers":4294967295})", 4294967295u},
        {R"({})", 7},
        {R"({"workers":"4"})", 7},
        {R"({"workers":-1})", 7},
        {R"({"workers":4.0})", 7},
        {R"({"workers":4e0})", 7},
        {R"({"workers":null})", 7},
        {R"({"workers":true})", 7},
        {R"([4])", 7},
        {R"({"workers":4)", 7},
        {"", 7},
    };
    for (auto& c : cases) {
        CAPTURE(c.msg);
        CHECK(mra::control_uint(c.msg, "workers", 7) == c.value);
    }
}

TEST_CASE("snapshot control messages: what edge-c sends is what edge-e rebuilds", "[edge_e][control]") {
    auto in = sample_input();
    auto msg = mra::snapshot_control(in);
    CHECK(mra::control_type(msg) == "snapshot");
    auto back = mra::snapshot_input_from_control(msg);
    REQUIRE(back);
    CHECK(mra::to_json(*back) == mra::to_json(in));
    REQUIRE(back->nodes.size() == 1);
    CHECK(back->nodes[0].sip_tcp_port == 5070);
    CHECK(back->nodes[0].mixed_mode);
}

TEST_CASE("snapshot control messages: malformed inputs are errors, not exceptions", "[edge_e][control]") {
    const std::string cases[] = {
        "",
        "[]",
        R"({"type":"snapshot"})",
        R"({"type":"snapshot","input":null})",
        R"({"type":"snapshot","input":[]})",
        R"({"type":"snapshot","input":"{}"})",
        R"({"type":"snapshot","input":{}})",
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[]}})",
        R"({"type":"snapshot","input":{"deployments":[1],"domains":[],"nodes":[],"rules":[]}})",
        R"({"type":"snapshot","input":{"deployments":[],"domains":[{}],"nodes":[],"rules":[]}})",
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[{"name":"a"}],"rules":[]}})",
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[{"name":"a","type":"pbx"}],"rules":[]}})",
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[{"name":"a","type":"unified_cm","https_port":"x"}],"rules":[]}})",
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[],"rules":[{"url":"not a url"}]}})",
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[],"rules":[{"url":"https://a:8443/x","methods":[1]}]}})",
        R"({"type":"snapshot","input":{"default_deployment":5,"deployments":[],"domains":[],"nodes":[],"rules":[]}})",
    };
    for (auto& m : cases) {
        CAPTURE(m);
        CHECK_NOTHROW([&] {
            auto r = mra::snapshot_input_from_control(m);
            CHECK_FALSE(r);
        }());
    }
}

TEST_CASE("snapshot control messages: the smallest valid input", "[edge_e][control]") {
    auto r = mra::snapshot_input_from_control(
        R"({"type":"snapshot","input":{"deployments":[],"domains":[],"nodes":[],"rules":[]}})");
    REQUIRE(r);
    CHECK(r->default_deployment == mra::kDefaultDeploymentName);
    CHECK(r->nodes.empty());
}
