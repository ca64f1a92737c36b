#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/http/query.h"

using namespace edgepair::http;

TEST_CASE("query: form_decode", "[http][query]") {
    struct C {
        std::string in, out;
    };
    for (const auto& c : std::vector<C>{
             {"", ""},
             {"a+b", "a b"},
             {"%41%62", "Ab"},
             {"_cisco-uds", "_cisco-uds"},
             {"%2", "%2"},   // too short: kept
             {"%zz", "%zz"}, // not hex: kept
             {"a%", "a%"},   // at the end: kept
             {"%2b", "+"},   // an encoded '+' is a plus, not a space
             {"%00x", std::string("\0x", 2)},
         }) {
        INFO(c.in);
        CHECK(form_decode(c.in) == c.out);
    }
}

TEST_CASE("query: query_values", "[http][query]") {
    using V = std::vector<std::string>;
    CHECK(query_values("service_name=_cisco-uds&service_name=_cuplogin", "service_name") ==
          V{"_cisco-uds", "_cuplogin"});
    CHECK(query_values("", "a").empty());
    CHECK(query_values("a=1&a&a=", "a") == V{"1", ""});
    CHECK(query_values("b=1&a=2", "a") == V{"2"});
    CHECK(query_values("a%5Fb=x+y", "a_b") == V{"x y"}); // names compare decoded
    CHECK(query_values("A=1", "a").empty());             // and case-sensitively
    CHECK(query_values("a=1=2", "a") == V{"1=2"});
    CHECK(query_values("&&a=1&&", "a") == V{"1"});
    std::string many;
    for (int i = 0; i < 40; ++i)
        many += "a=" + std::to_string(i) + "&";
    CHECK(query_values(many, "a").size() == 16);
    CHECK(query_values(many, "a", 3) == V{"0", "1", "2"});
}
