// MediaRelay::on_control is called from the link's control callback, where nothing catches: a field of the
// wrong JSON type or out of range must be refused (media_failed when the message has an id), never thrown.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "common/core/loop.h"
#include "common/obs/metrics.h"
#include "edge-e/media_relay.h"

using namespace edgepair;

namespace {

struct Relay {
    core::Loop loop;
    obs::Registry reg;
    media::MediaMetrics metrics = media::MediaMetrics::create(reg, {});
    config::EdgeEMediaConfig cfg = [] {
        config::EdgeEMediaConfig c;
        c.listen = "127.0.0.1";
        c.public_address = "127.0.0.1";
        // No usable traversal address: every well-formed media_open is refused with "traversal port not
        // bound" before the (absent) link is looked at, which tells a field refusal apart from a real open.
        c.traversal_listen = "not-an-address";
        return c;
    }();
    edge_e::MediaRelay relay{loop, cfg, 0, 1, metrics};

    std::string control(const std::string& msg) {
        std::string reply;
        REQUIRE_NOTHROW(reply = relay.on_control(nullptr, msg));
        return reply;
    }
};

} // namespace

TEST_CASE("media_open with a field of the wrong type is answered media_failed naming the field",
          "[edge_e][media][control]") {
    Relay r;
    REQUIRE_FALSE(r.relay.ready());
    auto ok =
        nlohmann::json::parse(r.control(R"({"type":"media_open","id":7,"client":"192.0.2.1","streams":2})"));
    CHECK(ok["type"] == "media_failed");
    CHECK(ok["id"] == 7);
    CHECK_THAT(ok["error"].get<std::string>(), Catch::Contains("traversal port"));

    struct Case {
        const char* msg;
        const char* field;
    };
    for (auto c : {Case{R"({"type":"media_open","id":7,"client":"192.0.2.1","streams":"2"})", "streams"},
                   Case{R"({"type":"media_open","id":7,"client":"192.0.2.1","streams":2.5})", "streams"},
                   Case{R"({"type":"media_open","id":7,"client":"192.0.2.1","streams":1e30})", "streams"},
                   Case{R"({"type":"media_open","id":7,"client":"192.0.2.1","streams":9})", "streams"},
                   Case{R"({"type":"media_open","id":7,"client":"192.0.2.1","streams":-1})", "streams"},
                   Case{R"({"type":"media_open","id":7,"client":1,"streams":2})", "client"},
                   Case{R"({"type":"media_open","type":1,"id":7})", "type"},
                   Case{R"({"type":"media_close","id":7,"session":"3"})", "session"}}) {
        CAPTURE(c.msg);
        auto reply = nlohmann::json::parse(r.control(c.msg), nullptr, false);
        REQUIRE(reply.is_object());
        CHECK(reply["type"] == "media_failed");
        CHECK(reply["id"] == 7);
        CHECK_THAT(reply["error"].get<std::string>(), Catch::Contains(std::string("\"") + c.field + "\""));
    }
    CHECK(r.relay.sessions() == 0);
}

TEST_CASE("a media control message without a usable id is dropped, not answered and not thrown",
          "[edge_e][media][control]") {
    Relay r;
    for (const char* msg : {R"({"type":"media_open","id":"7","client":"192.0.2.1","streams":2})",
                            R"({"type":"media_open","id":-7,"client":"192.0.2.1","streams":2})",
                            R"({"type":"media_open","id":1e30,"client":"192.0.2.1","streams":2})",
                            R"({"type":"media_open","type":1})", R"({"type":"media_close","session":"3"})",
                            R"({"type":"media_close","session":1e30})", R"({"type":["media_open"]})",
                            R"({"type":"media_other","id":7})", R"([1,2])", "not json"}) {
        CAPTURE(msg);
        CHECK(r.control(msg).empty());
    }
    CHECK(r.relay.sessions() == 0);
}
