// MediaB2bua::on_control is called from the link's control callback, where nothing catches: an answer from
// edge-e with a field of the wrong JSON type or out of range must be refused, never thrown.
#include <catch2/catch.hpp>

#include <string>

#include "common/core/loop.h"
#include "common/obs/metrics.h"
#include "edge-c/media_b2bua.h"

using namespace edgepair;

TEST_CASE("malformed media answers from edge-e are dropped without throwing", "[edge_c][media][control]") {
    core::Loop loop;
    obs::Registry reg;
    auto metrics = media::MediaMetrics::create(reg, {});
    config::EdgeCMediaConfig cfg;
    cfg.address = "127.0.0.1";
    edge_c::MediaB2bua b2bua(loop, cfg, metrics, {}, [](link::LinkConn*) { return false; });
    // None of these may reach the link (there is none here): a well-formed late media_opened would send
    // media_close on it, a malformed one must not be mistaken for one.
    for (const char* msg : {
             R"({"type":"media_opened","id":"7","session":1})",
             R"({"type":"media_opened","id":4294967296,"session":1})",
             R"({"type":"media_opened","id":1e30,"session":1})",
             R"({"type":"media_opened","type":1,"id":7,"session":1})",
             R"({"type":"media_opened","id":7,"session":"1"})",
             R"({"type":"media_opened","id":7,"session":-1})",
             R"({"type":"media_failed","id":7,"error":5})",
             R"({"type":"media_failed","id":[]})",
         }) {
        CAPTURE(msg);
        REQUIRE_NOTHROW(b2bua.on_control(nullptr, msg));
    }
    CHECK(b2bua.calls() == 0);
}
