#include "common/xmpp/writer.h"

#include <catch2/catch.hpp>

using namespace edgepair::xmpp;

TEST_CASE("XML escaping", "[xmpp][writer]") {
    CHECK(escape_xml("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&apos;");
    CHECK(escape_xml("plain") == "plain");
}
