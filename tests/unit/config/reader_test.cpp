// The YAML reader layer: every error kind carries the right file, line and key path.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "common/config/yaml_reader.h"

using namespace edgepair::config;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/ep-config-reader-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        auto p = path / name;
        std::ofstream(p) << text;
        return p.string();
    }
};

// Parses `yaml` as a file and hands the root node to `fn`; returns the diagnostics.
Diagnostics read(const std::string& yaml, const std::function<void(const Node&)>& fn,
                 TempDir* keep = nullptr) {
    TempDir local;
    TempDir& dir = keep ? *keep : local;
    auto file = dir.write("t.yaml", yaml);
    Diagnostics diag;
    SourceMap src{file, dir.path.string(), {}};
    auto root = load_yaml_file(file, diag);
    if (root) {
        Reader r(file, diag, src);
        fn(Node(r, *root, "", 0));
    }
    return diag;
}

// The one error, checked for line, key and a part of the message.
void require_error(const Diagnostics& d, int line, const std::string& key, const std::string& part) {
    INFO(d.errors_text());
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0].line == line);
    CHECK(d.errors[0].key == key);
    CHECK_THAT(d.errors[0].message, Catch::Contains(part));
}

} // namespace

TEST_CASE("diagnostic printing", "[config][reader]") {
    Diagnostic d{"edge-e.yaml", 12, "tls.certificates[1].key",
                 "cannot read file \"x.key\": No such file or directory", false};
    CHECK(d.str() ==
          "edge-e.yaml:12: tls.certificates[1].key: cannot read file \"x.key\": No such file or directory");
    Diagnostic noline{"edge-e.yaml", 0, "", "empty configuration file", false};
    CHECK(noline.str() == "edge-e.yaml: empty configuration file");
    Diagnostic w{"f.yaml", 3, "domains", "too many", true};
    CHECK(w.str() == "f.yaml:3: domains: warning: too many");
}

TEST_CASE("edit distance and name helpers", "[config][reader]") {
    CHECK(edit_distance("listen", "lsiten") == 2);
    CHECK(edit_distance("", "abc") == 3);
    CHECK(edit_distance("same", "same") == 0);
    CHECK(valid_dns_name("expe1.example.com"));
    CHECK(valid_dns_name("*.example.org", true));
    CHECK_FALSE(valid_dns_name("*.example.org"));
    CHECK_FALSE(valid_dns_name("-bad.example.com"));
    CHECK_FALSE(valid_dns_name("1.2.3.4"));
    CHECK_FALSE(valid_dns_name("a..b"));
    CHECK(is_ip_literal("::1"));
    CHECK(is_ip_literal("10.0.0.1"));
    CHECK_FALSE(is_ip_literal("cucm1.example.com"));
}

TEST_CASE("unknown key is reported at its line with a suggestion", "[config][reader]") {
    auto d = read("link:\n  listen: 1.2.3.4:1\n  lsiten: 1.2.3.4:2\n", [](const Node& root) {
        auto m = root.as_map({"link"});
        auto link = m.get("link");
        REQUIRE(link);
        auto lm = link->as_map({"listen", "ping_interval"});
        CHECK(lm.has("listen"));
        CHECK_FALSE(lm.has("lsiten"));
    });
    require_error(d, 3, "link.lsiten", "unknown key \"lsiten\" (did you mean \"listen\"?)");

    // Two edits would turn "foo" into "log": too far to be a useful hint for a short word.
    auto short_word = read("foo: 1\n", [](const Node& root) { (void)root.as_map({"log", "link"}); });
    require_error(short_word, 1, "foo", "unknown key \"foo\"");
    CHECK_THAT(short_word.errors[0].message, !Catch::Contains("did you mean"));

    auto far = read("colour: red\n", [](const Node& root) { (void)root.as_map({"listen"}); });
    require_error(far, 1, "colour", "unknown key \"colour\"");
    CHECK_THAT(far.errors[0].message, !Catch::Contains("did you mean"));
}

TEST_CASE("duplicate keys are errors", "[config][reader]") {
    auto d = read("a: 1\nb: 2\na: 3\n", [](const Node& root) { (void)root.as_map({"a", "b"}); });
    require_error(d, 3, "a", "duplicate key");
}

TEST_CASE("missing required key is reported at the parent key", "[config][reader]") {
    auto d = read("x: 1\nlink:\n  listen: 1.2.3.4:5\n", [](const Node& root) {
        auto m = root.as_map({"x", "link"});
        auto lm = m.get("link")->as_map({"listen", "auth_database"});
        CHECK_FALSE(lm.require("auth_database"));
        CHECK_FALSE(m.require("node_name"));
    });
    INFO(d.errors_text());
    REQUIRE(d.errors.size() == 2);
    CHECK(d.errors[0].str().ends_with(":2: link.auth_database: missing required key"));
    CHECK(d.errors[1].line == 0); // a root key has no better line than the file
    CHECK(d.errors[1].key == "node_name");
}

TEST_CASE("wrong node type", "[config][reader]") {
    auto d = read("tls: [a, b]\n", [](const Node& root) {
        auto tls = root.as_map({"tls"}).get("tls");
        CHECK_FALSE(tls->as_map({"cert"}).valid());
    });
    require_error(d, 1, "tls", "expected a mapping, got a sequence");

    auto s = read("name:\n  a: 1\n", [](const Node& root) {
        std::string out = "keep";
        CHECK_FALSE(root.as_map({"name"}).string("name", out));
        CHECK(out == "keep");
    });
    require_error(s, 2, "name", "expected a string, got a mapping");
}

TEST_CASE("booleans", "[config][reader]") {
    auto d = read("a: on\nb: No\nc: TRUE\nd: maybe\n", [](const Node& root) {
        auto m = root.as_map({"a", "b", "c", "d"});
        bool a = false, b = true, c = false, dd = true;
        CHECK(m.boolean("a", a));
        CHECK(m.boolean("b", b));
        CHECK(m.boolean("c", c));
        CHECK_FALSE(m.boolean("d", dd));
        CHECK(a);
        CHECK_FALSE(b);
        CHECK(c);
        CHECK(dd);
    });
    require_error(d, 4, "d", "expected a boolean");
}

TEST_CASE("integers with range", "[config][reader]") {
    auto d = read("a: 64\nb: 65\nc: 12abc\nd: -1\n", [](const Node& root) {
        auto m = root.as_map({"a", "b", "c", "d"});
        int a = 0, b = 0, c = 0, dd = 0;
        CHECK(m.integer("a", a, 1, 64));
        CHECK(a == 64);
        CHECK_FALSE(m.integer("b", b, 1, 64));
        CHECK_FALSE(m.integer("c", c, 1, 64));
        CHECK_FALSE(m.integer("d", dd, 0, 10));
    });
    INFO(d.errors_text());
    REQUIRE(d.errors.size() == 3);
    CHECK(d.errors[0].str().ends_with(":2: b: value 65 out of range 1..64"));
    CHECK(d.errors[1].line == 3);
    CHECK_THAT(d.errors[1].message, Catch::Contains("expected an integer"));
    CHECK(d.errors[2].line == 4);
}

TEST_CASE("durations", "[config][reader]") {
    auto d =
        read("a: 500ms\nb: 10s\nc: 5m\nd: 8h\ne: 30\nf: 10 minutes\ng: 2d\nh: s\n", [](const Node& root) {
            auto m = root.as_map({"a", "b", "c", "d", "e", "f", "g", "h"});
            Duration v{};
            auto min = 1ms;
            Duration max = 24h;
            REQUIRE(m.duration("a", v, min, max));
            CHECK(v == 500ms);
            REQUIRE(m.duration("b", v, min, max));
            CHECK(v == 10s);
            REQUIRE(m.duration("c", v, min, max));
            CHECK(v == 5min);
            REQUIRE(m.duration("d", v, min, max));
            CHECK(v == 8h);
            REQUIRE(m.duration("e", v, min, max));
            CHECK(v == 30s);
            CHECK_FALSE(m.duration("f", v, min, max));
            CHECK_FALSE(m.duration("g", v, min, max)); // 2 days > 24h
            CHECK_FALSE(m.duration("h", v, min, max));
            CHECK(v == 30s);
        });
    INFO(d.errors_text());
    REQUIRE(d.errors.size() == 3);
    CHECK(d.errors[0].str().ends_with(
        ":6: f: expected a duration such as 500ms, 10s, 5m, 8h or 1d, got \"10 minutes\""));
    CHECK(d.errors[1].str().ends_with(":7: g: duration 2d out of range 1ms..24h"));
    CHECK(d.errors[2].line == 8);
}

TEST_CASE("sizes", "[config][reader]") {
    auto d = read("a: 16k\nb: 1m\nc: 512\nd: 2g\ne: 16q\n", [](const Node& root) {
        auto m = root.as_map({"a", "b", "c", "d", "e"});
        uint64_t v = 0;
        REQUIRE(m.size("a", v, 0, UINT64_MAX));
        CHECK(v == 16384);
        REQUIRE(m.size("b", v, 0, UINT64_MAX));
        CHECK(v == 1048576);
        REQUIRE(m.size("c", v, 0, UINT64_MAX));
        CHECK(v == 512);
        CHECK_FALSE(m.size("d", v, 0, 1024 * 1024 * 1024));
        CHECK_FALSE(m.size("e", v, 0, UINT64_MAX));
    });
    INFO(d.errors_text());
    REQUIRE(d.errors.size() == 2);
    CHECK(d.errors[0].line == 4);
    CHECK_THAT(d.errors[0].message, Catch::Contains("out of range"));
    CHECK(d.errors[1].line == 5);
    CHECK_THAT(d.errors[1].message, Catch::Contains("expected a size"));
}

TEST_CASE("addresses", "[config][reader]") {
    const AddressRules listen{.allow_hostname = false, .allow_any = true, .default_port = std::nullopt};
    const AddressRules peer{.allow_hostname = true, .allow_any = false, .default_port = 7001};
    auto d = read(R"(a: 127.0.0.1:9901
b: "[::1]:8443"
c: "*:5061"
d: 0.0.0.0:7001
e: expe1.example.com:7001
f: expe1.example.com
g: 127.0.0.1:70000
h: cucm1.example.com:8443
i: 127.0.0.1
j: "::1"
k: bad_host:1
l: "1.2.3.4:"
)",
                  [&](const Node& root) {
                      auto m = root.as_map({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"});
                      Address a;
                      REQUIRE(m.address("a", a, listen));
                      CHECK(a.kind == Address::Kind::IPv4);
                      CHECK(a.str() == "127.0.0.1:9901");
                      REQUIRE(m.address("b", a, listen));
                      CHECK(a.kind == Address::Kind::IPv6);
                      CHECK(a.host == "::1");
                      CHECK(a.str() == "[::1]:8443");
                      REQUIRE(m.address("c", a, listen));
                      CHECK(a.kind == Address::Kind::Any);
                      CHECK(a.str() == "*:5061");
                      REQUIRE(m.address("d", a, listen));
                      CHECK(a.host == "0.0.0.0");
                      REQUIRE(m.address("e", a, peer));
                      CHECK(a.kind == Address::Kind::Name);
                      REQUIRE(m.address("f", a, peer));
                      CHECK(a.port == 7001);
                      CHECK_FALSE(m.address("g", a, listen)); // port range
                      CHECK_FALSE(m.address("h", a, listen)); // names are not for listeners
                      CHECK_FALSE(m.address("i", a, listen)); // port required
                      REQUIRE(m.address("j", a, peer));       // bare IPv6, default port
                      CHECK(a.str() == "[::1]:7001");
                      CHECK_FALSE(m.address("k", a, peer));
                      CHECK_FALSE(m.address("l", a, peer));
                  });
    INFO(d.errors_text());
    REQUIRE(d.errors.size() == 5);
    CHECK(d.errors[0].str().ends_with(":7: g: invalid address \"127.0.0.1:70000\": port must be 1..65535"));
    CHECK(d.errors[1].line == 8);
    CHECK_THAT(d.errors[1].message, Catch::Contains("expected an IP address"));
    CHECK(d.errors[2].line == 9);
    CHECK_THAT(d.errors[2].message, Catch::Contains("expected host:port"));
    CHECK(d.errors[3].line == 11);
    CHECK(d.errors[4].line == 12);
}

TEST_CASE("enumerations are case-insensitive and list the choices", "[config][reader]") {
    constexpr EnumName<LogLevel> levels[] = {{"info", LogLevel::Info}, {"debug", LogLevel::Debug}};
    auto d = read("a: DEBUG\nb: verbose\n", [&](const Node& root) {
        auto m = root.as_map({"a", "b"});
        LogLevel l = LogLevel::Info;
        CHECK(m.enumeration<LogLevel>("a", l, levels));
        CHECK(l == LogLevel::Debug);
        CHECK_FALSE(m.enumeration<LogLevel>("b", l, levels));
    });
    require_error(d, 2, "b", "expected info or debug, got \"verbose\"");
}

TEST_CASE("sequences carry item paths and lines", "[config][reader]") {
    auto d = read("peers:\n  - a.example.com\n  - 7\n  - {x: 1}\n", [](const Node& root) {
        auto seq = root.as_map({"peers"}).get("peers")->as_seq();
        REQUIRE(seq);
        REQUIRE(seq->size() == 3);
        CHECK((*seq)[1].path() == "peers[1]");
        CHECK((*seq)[2].line() == 4);
        (void)(*seq)[2].as_string();
    });
    require_error(d, 4, "peers[2]", "expected a string, got a mapping");
}

TEST_CASE("file paths resolve against the config's directory", "[config][reader]") {
    TempDir dir;
    std::filesystem::create_directory(dir.path / "sub");
    dir.write("sub/present.txt", "x");
    std::filesystem::create_directory(dir.path / "adir");
    auto d = read(
        "a: sub/present.txt\nb: missing.key\nc: adir\nd: ../state.json\n",
        [&](const Node& root) {
            auto m = root.as_map({"a", "b", "c", "d"});
            std::string a, b, c;
            REQUIRE(m.readable_file("a", a));
            CHECK(a == (dir.path / "sub/present.txt").string());
            CHECK_FALSE(m.readable_file("b", b));
            CHECK(b.empty());
            CHECK_FALSE(m.readable_file("c", c));
            auto st = m.get("d")->as_path(); // need not exist
            REQUIRE(st);
            CHECK(*st == (dir.path.parent_path() / "state.json").string());
        },
        &dir);
    INFO(d.errors_text());
    REQUIRE(d.errors.size() == 2);
    CHECK(d.errors[0].str().ends_with(":2: b: cannot read file \"missing.key\": No such file or directory"));
    CHECK(d.errors[1].str().ends_with(":3: c: cannot read file \"adir\": Is a directory"));
}

TEST_CASE("file-level errors: missing file, YAML syntax", "[config][reader]") {
    Diagnostics d;
    CHECK_FALSE(load_yaml_file("/nonexistent/edge-e.yaml", d));
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0].str() ==
          "/nonexistent/edge-e.yaml: cannot read configuration: No such file or directory");

    TempDir dir;
    auto f = dir.write("bad.yaml", "a: 1\nb:\n  c: [1, 2\n  d: 3\n");
    Diagnostics s;
    CHECK_FALSE(load_yaml_file(f, s));
    REQUIRE(s.errors.size() == 1);
    CHECK(s.errors[0].line >= 3);
    CHECK_THAT(s.errors[0].message, Catch::StartsWith("YAML syntax error: "));

    auto g = dir.write("tab.yaml", "a: 1\n b: 2\n");
    Diagnostics t;
    CHECK_FALSE(load_yaml_file(g, t));
    REQUIRE(t.errors.size() == 1);
    CHECK(t.errors[0].line == 2);
}

TEST_CASE("line_of walks up to the closest recorded parent", "[config][reader]") {
    SourceMap m;
    m.lines = {{"tls", 3}, {"tls.certificates", 7}, {"tls.certificates[1]", 10}};
    CHECK(m.line_of("tls.certificates[1].key") == 10);
    CHECK(m.line_of("tls.certificates[0].cert") == 7);
    CHECK(m.line_of("tls.min_version") == 3);
    CHECK(m.line_of("link") == 0);
}
