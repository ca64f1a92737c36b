#include <catch2/catch.hpp>

#include <string>

#include "edge-c/imp_home.h"

using namespace edgepair;
using namespace edgepair::edge_c;

TEST_CASE("home-node hint: RFC 6120 see-other-host", "[edge_c][imp_home]") {
    const std::string ns = "xmlns='urn:ietf:params:xml:ns:xmpp-streams'";
    CHECK(home_node_hint("<stream:error><see-other-host " + ns +
                         ">IMP2.example.com</see-other-host></stream:error>") == "imp2.example.com");
    CHECK(home_node_hint("<stream:error><see-other-host " + ns +
                         ">imp2.example.com:5222</see-other-host>"
                         "<text " +
                         ns + ">moved</text></stream:error>") == "imp2.example.com");
    CHECK(home_node_hint("<stream:error><see-other-host " + ns +
                         ">[2001:db8::2]:5222</see-other-host></stream:error>") == "2001:db8::2");
    CHECK_FALSE(home_node_hint("<stream:error><host-unknown " + ns + "/></stream:error>"));
    CHECK_FALSE(home_node_hint("<stream:error><see-other-host " + ns + "/></stream:error>"));
    CHECK_FALSE(home_node_hint("<stream:error><see-other-host>x</see-other-host></stream:error>"));
    CHECK_FALSE(
        home_node_hint("<stream:error><see-other-host " + ns + ">a/b</see-other-host></stream:error>"));
    CHECK_FALSE(home_node_hint("<message><see-other-host " + ns + ">x</see-other-host></message>"));
}

TEST_CASE("IM&P home cache: lifetime, deployments, bound", "[edge_c][imp_home]") {
    ImpHomeCache c(2);
    c.put("default", "alice", "imp1", 1000, 500);
    CHECK(c.get("default", "alice", 1200) == "imp1");
    CHECK_FALSE(c.get("other", "alice", 1200));
    CHECK_FALSE(c.get("default", "alice", 1500)); // expired and dropped
    CHECK(c.size() == 0);
    c.put("default", "a", "imp1", 0, 100);
    c.put("default", "b", "imp1", 0, 100);
    c.put("default", "c", "imp1", 50, 100); // full, nothing expired: not stored
    CHECK_FALSE(c.get("default", "c", 60));
    c.put("default", "c", "imp2", 200, 100); // the old ones expired: room again
    CHECK(c.get("default", "c", 250) == "imp2");
    c.put("default", "", "imp1", 0, 100); // no user, no entry
    c.put("default", "d", "imp1", 0, 0);  // zero lifetime, no entry
    CHECK_FALSE(c.get("default", "d", 0));
}
