#include <catch2/catch.hpp>

#include <string>

#include "common/mra/allow_list_csv.h"
#include "common/mra/csv.h"

using namespace edgepair::mra;

namespace {

// Verbatim from shared/seeds/002, "Allow List Rules File Reference" (note the blank before "First Rule").
constexpr std::string_view kGuideRules = R"(
Url,Deployment,HttpMethods,MatchType,Description
https://myServer1:8443/myPath1,myDomain1,GET,, "First Rule"
http://myServer2:8000/myPath2,myDomain200,"GET,PUT",exact,
https://myServer3:8080/myPath3,myDomain1,,prefix,"Third Rule"
https://myServer4/myPath4,myDomain1,,prefix,"Fourth Rule"
http://myServer5/myPath5,myDomain1,,prefix,"Fifth Rule"

)";

// Verbatim from shared/seeds/002, "Allow List Tests File Reference".
constexpr std::string_view kGuideTests = R"(
Url,ExpectedResult,Deployment,Description,HttpMethod
https://myServer1:8443/myPath1,block,"my deployment","a block test",GET
http://myServer2:8000/myPath2,allow,"my deployment","an allow test",PUT
https://myServer4/myPath4,allow,,,GET
http://myServer4/myPath4,block,,,POST

)";

// The guide's files name three deployments; the default one is myDomain1 (renamed, as the guide allows).
CsvContext guide_context() {
    CsvContext ctx;
    ctx.default_deployment = "myDomain1";
    ctx.deployments = {"myDomain1", "myDomain200", "my deployment"};
    return ctx;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) {
        s.replace(p, from.size(), to);
    }
    return s;
}

} // namespace

TEST_CASE("CSV reader: RFC 4180 quoting", "[mra][csv]") {
    auto r = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\",\r\n\"multi\nline\",x\n");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].line == 1);
    CHECK((*r)[0].fields == std::vector<std::string>{"a", "b,c", "say \"hi\"", ""});
    CHECK((*r)[1].line == 2);
    CHECK((*r)[1].fields == std::vector<std::string>{"multi\nline", "x"});
}

TEST_CASE("CSV reader: line ends, BOM, blank lines, blanks around quotes", "[mra][csv]") {
    auto r = parse_csv("\xEF\xBB\xBF"
                       "h1,h2\r\n\r\n  \n\"a\" , \"b\"\rc,  d  \n,\n\"\"");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 5);
    CHECK((*r)[0].fields == std::vector<std::string>{"h1", "h2"});
    CHECK((*r)[1].line == 4);
    CHECK((*r)[1].fields == std::vector<std::string>{"a", "b"});
    CHECK((*r)[2].line == 5);
    CHECK((*r)[2].fields ==
          std::vector<std::string>{"c", "  d  "}); // unquoted blanks are data for the reader
    CHECK((*r)[3].fields == std::vector<std::string>{"", ""});
    CHECK((*r)[4].fields == std::vector<std::string>{""});
}

TEST_CASE("CSV reader errors name line and column", "[mra][csv]") {
    auto unterminated = parse_csv("a,b\nc,\"open\nstill open");
    REQUIRE_FALSE(unterminated.ok());
    CHECK(unterminated.error().message == "line 2, column 3: quoted field is not closed");

    auto stray = parse_csv("a,b\nab\"c,d");
    REQUIRE_FALSE(stray.ok());
    CHECK_THAT(stray.error().message, Catch::StartsWith("line 2, column 3: quote inside an unquoted field"));

    auto after = parse_csv("\"a\"x,b");
    REQUIRE_FALSE(after.ok());
    CHECK_THAT(after.error().message, Catch::StartsWith("line 1, column 4: unexpected character"));
}

TEST_CASE("csv_field round-trips through the reader", "[mra][csv]") {
    for (std::string v : {"plain", "", "two words", "a,b", "say \"hi\"", " lead", "x\ny"}) {
        auto r = parse_csv(csv_field(v) + ",end\n");
        REQUIRE(r.ok());
        REQUIRE(r->size() == 1);
        CHECK((*r)[0].fields[0] == v);
    }
}

TEST_CASE("the guide's rules file imports", "[mra][csv][rules]") {
    auto rules = import_rules_csv(kGuideRules, guide_context());
    REQUIRE(rules.ok());
    REQUIRE(rules->size() == 5);
    const auto& r = *rules;

    CHECK(to_string(r[0].url) == "https://myserver1:8443/myPath1");
    CHECK(r[0].deployment == "myDomain1");
    REQUIRE(r[0].methods.has_value());
    CHECK(*r[0].methods == MethodSet{Method::Get});
    CHECK(r[0].match == MatchType::Prefix); // "Default is prefix"
    CHECK(r[0].description == "First Rule");

    CHECK(to_string(r[1].url) == "http://myserver2:8000/myPath2");
    CHECK(r[1].deployment == "myDomain200");
    CHECK(*r[1].methods == MethodSet{Method::Get, Method::Put});
    CHECK(r[1].match == MatchType::Exact);
    CHECK(r[1].description.empty());

    CHECK(r[2].url.port == 8080);
    CHECK_FALSE(r[2].methods.has_value()); // empty HttpMethods: use the defaults
    CHECK(r[2].description == "Third Rule");

    CHECK(to_string(r[3].url) == "https://myserver4:443/myPath4"); // default https port
    CHECK(to_string(r[4].url) == "http://myserver5:80/myPath5");   // default http port
    CHECK(r[4].description == "Fifth Rule");
    for (const AllowRule& rule : r) {
        CHECK(rule.origin == RuleOrigin::Editable);
    }
}

TEST_CASE("the guide's rules file also imports with CRLF line ends", "[mra][csv][rules]") {
    auto rules = import_rules_csv(replace_all(std::string(kGuideRules), "\n", "\r\n"), guide_context());
    REQUIRE(rules.ok());
    CHECK(rules->size() == 5);
}

TEST_CASE("rules import errors name line and column", "[mra][csv][rules]") {
    const CsvContext ctx = guide_context();
    SECTION("unknown deployment") {
        auto r = import_rules_csv("Url,Deployment,HttpMethods,MatchType,Description\n"
                                  "https://a/x,myDomain1,,,\n"
                                  "https://b/x,nowhere,,,\n",
                                  ctx);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message == "line 3, column 2 (Deployment): unknown deployment 'nowhere'");
    }
    SECTION("all bad lines are reported") {
        auto r = import_rules_csv("Url,Deployment,HttpMethods,MatchType,Description\n"
                                  "ftp://a/x,myDomain1,,,\n"
                                  "https://b/x,myDomain1,GET,fuzzy,\n"
                                  "https://c/x,myDomain1,GET;POST,,\n"
                                  "https://d/x,myDomain1,GET,PUT,exact,\"unquoted method list\"\n",
                                  ctx);
        REQUIRE_FALSE(r.ok());
        const std::string& m = r.error().message;
        CHECK_THAT(m, Catch::Contains("line 2, column 1 (Url): protocol must be http or https"));
        CHECK_THAT(m, Catch::Contains("line 3, column 4 (MatchType): match type must be exact or prefix"));
        CHECK_THAT(m, Catch::Contains("line 4, column 3 (HttpMethods): unknown HTTP method 'GET;POST'"));
        CHECK_THAT(m, Catch::Contains("line 5: 6 fields, at most 5"));
    }
    SECTION("deployment required with more than one deployment") {
        auto r = import_rules_csv("Url,Deployment,HttpMethods,MatchType,Description\nhttps://a/x,,,,\n", ctx);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error().message,
                   Catch::Contains("line 2, column 2 (Deployment): a deployment is required"));
    }
    SECTION("with a single deployment an empty one means the default") {
        CsvContext one;
        one.deployments = {"default"};
        auto r = import_rules_csv("Url,Deployment,HttpMethods,MatchType,Description\nhttps://a/x\n", one);
        REQUIRE(r.ok());
        REQUIRE(r->size() == 1);
        CHECK((*r)[0].deployment == "default");
        CHECK((*r)[0].match == MatchType::Prefix);
        CHECK_FALSE((*r)[0].methods.has_value());
    }
    SECTION("lower-case method names are accepted and stored as tokens") {
        auto r = import_rules_csv("Url,Deployment,HttpMethods,MatchType,Description\n"
                                  "https://a/x,myDomain1,\"get, post\",EXACT,\n",
                                  ctx);
        REQUIRE(r.ok());
        CHECK(*(*r)[0].methods == MethodSet{Method::Get, Method::Post});
        CHECK((*r)[0].match == MatchType::Exact);
    }
    SECTION("the header line is required") {
        auto r = import_rules_csv("https://a/x,myDomain1,,,\n", ctx);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error().message,
                   Catch::StartsWith("line 1: the first line must list the parameter names"));
        CHECK_FALSE(import_rules_csv("", ctx).ok());
    }
    SECTION("a CSV syntax error is reported with its position") {
        auto r =
            import_rules_csv("Url,Deployment,HttpMethods,MatchType,Description\nhttps://a/x,\"oops\n", ctx);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message == "line 2, column 13: quoted field is not closed");
    }
}

TEST_CASE("exported rules import back unchanged", "[mra][csv][rules]") {
    auto rules = import_rules_csv(kGuideRules, guide_context());
    REQUIRE(rules.ok());
    AllowList list;
    for (const AllowRule& r : *rules) {
        REQUIRE(list.add(r).ok());
    }
    UcNode cucm;
    cucm.name = "cucm1.example.com";
    REQUIRE(list.add(automatic_rules_for(cucm, "myDomain1")[0]).ok());
    const std::string csv = export_rules_csv(list);
    CHECK(csv.find("cucm1") == std::string::npos); // automatic rules stay out unless asked for
    CHECK(export_rules_csv(list, true).find("cucm1") != std::string::npos);
    auto again = import_rules_csv(csv, guide_context());
    REQUIRE(again.ok());
    REQUIRE(again->size() == rules->size());
    for (std::size_t i = 0; i < rules->size(); ++i) {
        CHECK(to_string((*again)[i].url) == to_string((*rules)[i].url));
        CHECK((*again)[i].deployment == (*rules)[i].deployment);
        CHECK((*again)[i].methods == (*rules)[i].methods);
        CHECK((*again)[i].match == (*rules)[i].match);
        CHECK((*again)[i].description == (*rules)[i].description);
    }
}

TEST_CASE("the guide's tests file parses", "[mra][csv][tests]") {
    auto tests = parse_tests_csv(kGuideTests, guide_context());
    REQUIRE(tests.ok());
    REQUIRE(tests->size() == 4);
    const auto& t = *tests;
    CHECK(t[0].line == 3);
    CHECK(t[0].url_text == "https://myServer1:8443/myPath1");
    CHECK_FALSE(t[0].expect_allow);
    CHECK(t[0].deployment == "my deployment");
    CHECK(t[0].description == "a block test");
    CHECK(t[0].method == "GET");
    CHECK(t[1].expect_allow);
    CHECK(t[1].method == "PUT");
    CHECK(t[2].deployment == "myDomain1"); // omitted: the default deployment
    CHECK(t[2].description.empty());
    CHECK(t[3].method == "POST");
    CHECK(t[3].url.scheme == Scheme::Http);
    CHECK(t[3].url.port == 80);
}

TEST_CASE("tests file: method defaults to GET and bad lines are errors", "[mra][csv][tests]") {
    const CsvContext ctx = guide_context();
    auto ok =
        parse_tests_csv("Url,ExpectedResult,Deployment,Description,HttpMethod\nhttps://a/x,ALLOW\n", ctx);
    REQUIRE(ok.ok());
    CHECK((*ok)[0].method == "GET");
    CHECK((*ok)[0].expect_allow);

    auto bad = parse_tests_csv("Url,ExpectedResult,Deployment,Description,HttpMethod\n"
                               "https://a/x,maybe\n"
                               "https://a/x,allow,ghost\n"
                               "https://a/x,allow,,,\"GET POST\"\n"
                               ",block\n",
                               ctx);
    REQUIRE_FALSE(bad.ok());
    const std::string& m = bad.error().message;
    CHECK_THAT(m,
               Catch::Contains("line 2, column 2 (ExpectedResult): expected result must be allow or block"));
    CHECK_THAT(m, Catch::Contains("line 3, column 3 (Deployment): unknown deployment 'ghost'"));
    CHECK_THAT(m, Catch::Contains("line 4, column 5 (HttpMethod)"));
    CHECK_THAT(m, Catch::Contains("line 5, column 1 (Url): a URL is required"));

    auto wrong_header = parse_tests_csv("Url,Deployment,HttpMethods,MatchType,Description\n", ctx);
    CHECK_FALSE(wrong_header.ok());
}

TEST_CASE("the guide's tests run against the guide's rules", "[mra][csv][tests]") {
    const CsvContext ctx = guide_context();
    auto rules = import_rules_csv(kGuideRules, ctx);
    REQUIRE(rules.ok());
    AllowList list; // default methods: GET
    for (const AllowRule& r : *rules) {
        REQUIRE(list.add(r).ok());
    }
    auto tests = parse_tests_csv(kGuideTests, ctx);
    REQUIRE(tests.ok());
    auto out = run_allow_list_tests(list, *tests);
    REQUIRE(out.size() == 4);

    // myServer1's rule belongs to myDomain1, so "my deployment" blocks it: as expected.
    CHECK(out[0].passed);
    CHECK_FALSE(out[0].actual_allow);
    CHECK_THAT(out[0].reason, Catch::Contains("deployment 'my deployment'"));
    CHECK_THAT(out[0].rule, Catch::Contains("https://myserver1:8443/myPath1"));

    // myServer2's rule belongs to myDomain200, not "my deployment": the guide's example expects allow, the
    // rules it ships with block it. The runner must say so rather than pass it.
    CHECK_FALSE(out[1].passed);
    CHECK(out[1].expected_allow);
    CHECK_FALSE(out[1].actual_allow);

    // Fourth Rule (prefix, default methods = GET) in the default deployment allows it.
    CHECK(out[2].passed);
    CHECK(out[2].actual_allow);
    CHECK_THAT(out[2].rule, Catch::Contains("Fourth Rule"));
    CHECK_THAT(out[2].rule, Catch::Contains("GET"));

    // http (port 80) has no rule for myServer4.
    CHECK(out[3].passed);
    CHECK_FALSE(out[3].actual_allow);
    CHECK_THAT(out[3].reason, Catch::Contains("http://myserver4:80"));

    const std::string report = format_test_report(out);
    CHECK_THAT(report, Catch::Contains("line 3: PASS GET https://myServer1:8443/myPath1"));
    CHECK_THAT(report,
               Catch::Contains("line 4: FAIL PUT http://myServer2:8000/myPath2 (deployment 'my deployment'): "
                               "expected allow, got block"));
    CHECK_THAT(report, Catch::Contains("line 5: PASS GET https://myServer4/myPath4 (deployment 'myDomain1'): "
                                       "expected allow, got allow by rule"));
    CHECK_THAT(report, Catch::EndsWith("3 passed, 1 failed\n"));
}

TEST_CASE("a test in the right deployment with the right method passes", "[mra][csv][tests]") {
    const CsvContext ctx = guide_context();
    auto rules = import_rules_csv(kGuideRules, ctx);
    REQUIRE(rules.ok());
    AllowList list;
    for (const AllowRule& r : *rules) {
        REQUIRE(list.add(r).ok());
    }
    auto tests = parse_tests_csv("Url,ExpectedResult,Deployment,Description,HttpMethod\n"
                                 "http://myServer2:8000/myPath2,allow,myDomain200,,PUT\n"
                                 "http://myServer2:8000/myPath2/sub,block,myDomain200,exact rule,PUT\n"
                                 "http://myServer2:8000/myPath2,block,myDomain200,,DELETE\n",
                                 ctx);
    REQUIRE(tests.ok());
    auto out = run_allow_list_tests(list, *tests);
    REQUIRE(out.size() == 3);
    CHECK(out[0].passed);
    CHECK(out[0].actual_allow);
    CHECK(out[1].passed);
    CHECK(out[2].passed);
    CHECK_THAT(out[2].reason, Catch::Contains("method DELETE not allowed"));
}
