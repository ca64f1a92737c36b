#include <catch2/catch.hpp>

#include "common/admin/admin_server.h"
#include "common/admin/status_page.h"

using namespace edgepair::admin;
using Json = nlohmann::json;

TEST_CASE("html_escape covers text and attribute contexts") {
    CHECK(html_escape("<a href=\"x\" title='y'>&</a>") ==
          "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
}

TEST_CASE("every value on the page is escaped") {
    const std::string evil = "<script>alert(1)</script>\"'&";
    Json st = {{"role", "edge-c"},
               {"node", evil},
               {"version", "1"},
               {"alarms", Json::array({{{"id", "discovery.failing:" + evil},
                                        {"severity", "major"},
                                        {"state", "raised"},
                                        {"detail", evil},
                                        {"first_seen", 1700000000},
                                        {"last_seen", 1700000001},
                                        {"cleared", nullptr},
                                        {"count", 1}}})},
               {"link", {{"links", Json::array({{{"peer_name", evil}, {"state", "up\"><b"}}})}}},
               {"domains", Json::array({{{"name", evil}, {"deployment", evil}}})},
               {"deployments", Json::array({evil})},
               {"allow_list", Json::array({{{"origin", "imported"}, {"url", evil}}})},
               {"discovery",
                {{"note", evil},
                 {"publishers", Json::array({{{"address", evil}, {"error", evil}}})},
                 {"nodes", Json::array({{{"name", evil}}})},
                 {"zones", Json::array({{{"name", evil}}})},
                 {"search_rules", Json::array({{{"pattern", evil}}})}}},
               {"media", {{"enabled", true}, {"sessions", 2}}}};
    const std::string metrics =
        "edgepair_http_rejected_total{reason=\"<x>\"} 3\nedgepair_http_blocked_total 0\n";
    auto page = render_status_page({st, evil, metrics, 5});
    CHECK(page.find("<script") == std::string::npos);
    CHECK(page.find("\"><b") == std::string::npos);
    CHECK(page.find("up&quot;&gt;&lt;b") != std::string::npos);
    CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;") != std::string::npos);
    CHECK(page.find("2023-11-14 22:13:20 UTC") != std::string::npos); // first_seen as a person reads it
    CHECK(page.find("<tr class=\"alarm major\">") != std::string::npos);
    CHECK(page.find("reason=&quot;&lt;x&gt;&quot;") != std::string::npos); // refusal with its reason
    CHECK(page.find("edgepair_http_blocked_total") == std::string::npos);  // zero counters left out
    CHECK(page.find("<meta http-equiv=\"refresh\" content=\"5\">") != std::string::npos);
    CHECK(page.find("<link rel=\"stylesheet\" href=\"/status.css\">") != std::string::npos);
}

TEST_CASE("an empty status document still renders every section") {
    Json st = Json::object();
    auto page = render_status_page({st, "", "", 5});
    for (auto id : {"alarms", "links", "domains", "discovery", "allowlist", "sessions", "refusals"})
        CHECK(page.find(std::string("<section id=\"") + id + "\">") != std::string::npos);
    CHECK(page.find("No alarms.") != std::string::npos);
}
