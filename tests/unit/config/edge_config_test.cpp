// edge-e / edge-c configs end to end: parse + validation pass, against a PKI generated at test time.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "common/config/auth_db.h"
#include "common/config/edge_c_config.h"
#include "common/config/edge_e_config.h"

using namespace edgepair::config;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// One directory per test process: <root>/certs/out holds the PKI (the same names certs/mkpki.sh makes),
// <root>/conf the configs, so "../certs/out/x" in a config exercises relative-path resolution.
class Env {
  public:
    static Env& get() {
        static Env env;
        return env;
    }
    ~Env() {
        if (!root.empty()) fs::remove_all(root);
    }
    fs::path root, certs, conf;
    bool ok = false;

    std::string write(const std::string& name, const std::string& text) const {
        auto p = conf / name;
        std::ofstream(p) << text;
        return p.string();
    }

  private:
    Env() {
        char tmpl[] = "/tmp/ep-config-test-XXXXXX";
        root = ::mkdtemp(tmpl);
        certs = root / "certs" / "out";
        conf = root / "conf";
        fs::create_directories(certs);
        fs::create_directories(conf);
        ok = make_pki();
        std::ofstream(conf / "link-users.txt")
            << "# test\n"
            << make_auth_line("edgepair-link", "demo-link-secret", kAuthMinIterations) << "\n";
        std::ofstream(conf / "link-password.txt") << "demo-link-secret\n";
        std::ofstream(conf / "not-a-key.pem") << "this is not PEM\n";
    }

    bool run(const std::string& cmd) {
        std::string full = "cd '" + certs.string() + "' && " + cmd + " >/dev/null 2>&1";
        return std::system(full.c_str()) == 0;
    }

    bool leaf(const std::string& name, const std::string& cn, const std::string& san,
              const std::string& eku) {
        std::string cmd =
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 "
            "-config /dev/null -CA ca.crt -CAkey ca.key -subj /CN=" +
            cn + " -keyout " + name + ".key -out " + name + ".crt" +
            " -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=" + eku;
        if (!san.empty()) cmd += " -addext subjectAltName=" + san;
        return run(cmd);
    }

    bool make_pki() {
        if (!run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 "
                 "-config /dev/null -subj '/CN=edgepair Test CA' -keyout ca.key -out ca.crt "
                 "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"))
            return false;
        return leaf("edge-e", "expe1.example.com", "DNS:expe1.example.com,DNS:example.com,IP:127.0.0.1",
                    "serverAuth,clientAuth") &&
               leaf("edge-e-alt", "collab-edge.example.org",
                    "DNS:collab-edge.example.org,DNS:example.org,DNS:*.example.org", "serverAuth") &&
               leaf("edge-c", "expc1.example.com", "DNS:expc1.example.com", "serverAuth,clientAuth") &&
               leaf("edge-c-noclientauth", "expc1.example.com", "DNS:expc1.example.com", "serverAuth") &&
               leaf("edge-c-cnonly", "expc1.example.com", "", "serverAuth,clientAuth") &&
               run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key");
    }
};

Env& env() {
    auto& e = Env::get();
    if (!e.ok) FAIL("could not generate the test PKI with openssl");
    return e;
}

// Lines are numbered in comments: tests check them.
const std::string kEdgeE = R"(node_name: expe1.example.com
tls:
  default_certificate:
    cert: ../certs/out/edge-e.crt
    key: ../certs/out/edge-e.key
  trusted_cas: ../certs/out/ca.crt
listeners:
  https: {listen: "*:8443"}
link:
  tls_verify_subject_name: expc1.example.com
  auth_database: link-users.txt
)";

const std::string kEdgeC = R"(node_name: expc1.example.com
tls:
  certificate:
    cert: ../certs/out/edge-c.crt
    key: ../certs/out/edge-c.key
  trusted_cas: ../certs/out/ca.crt
link:
  peers: [expe1.example.com]
  username: edgepair-link
  password_file: link-password.txt
discovery:
  unified_cm:
    - address: cucm1.example.com
      username: axladmin
      password: x
domains:
  - name: example.com
)";

std::string replace(std::string s, const std::string& from, const std::string& to) {
    auto pos = s.find(from);
    REQUIRE(pos != std::string::npos);
    return s.replace(pos, from.size(), to);
}

// The error at `line` for `key`, or fail listing all of them.
const Diagnostic& error_for(const Diagnostics& d, const std::string& key) {
    for (const auto& e : d.errors)
        if (e.key == key) return e;
    FAIL("no error for " << key << "; errors:\n" << d.errors_text());
    throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("minimal edge-e config: defaults and resolved paths", "[config][edge_e]") {
    auto& e = env();
    auto file = e.write("min-e.yaml", kEdgeE);
    Diagnostics diag;
    auto cfg = load_edge_e_config(file, &diag);
    INFO((cfg ? diag.warnings_text() : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->node_name == "expe1.example.com");
    CHECK(cfg->workers == 0);
    CHECK(cfg->log.level == LogLevel::Info);
    CHECK(cfg->log.format == LogFormat::Text);
    CHECK(cfg->admin.listen.str() == "127.0.0.1:9901");
    CHECK(cfg->tls.default_certificate.cert == (e.certs / "edge-e.crt").string());
    CHECK(cfg->tls.default_certificate.key == (e.certs / "edge-e.key").string());
    CHECK(cfg->tls.trusted_cas == (e.certs / "ca.crt").string());
    CHECK(cfg->tls.min_version == TlsVersion::V1_2);
    CHECK(cfg->tls.session_tickets);
    REQUIRE(cfg->listeners.https);
    CHECK(cfg->listeners.https->listen.str() == "*:8443");
    CHECK_FALSE(cfg->listeners.sip_tls);
    CHECK_FALSE(cfg->listeners.xmpp);
    CHECK(cfg->link.listen.port == 7001);
    CHECK(cfg->link.auth_database == (e.conf / "link-users.txt").string());
    CHECK(cfg->link.ping_interval == 10s);
    CHECK(cfg->link.ping_timeout == 20s);
    CHECK(cfg->limits.max_header_bytes == 16 * 1024);
    CHECK(cfg->limits.max_body_bytes == 100 * 1024 * 1024);
    CHECK(cfg->limits.client_idle_timeout == 10min);
    CHECK(cfg->limits.max_connections == 100000);
    CHECK(cfg->source.line_of("link.auth_database") == 11);
}

TEST_CASE("empty listener sections enable the defaults", "[config][edge_e]") {
    auto& e = env();
    auto text = replace(kEdgeE, "  https: {listen: \"*:8443\"}\n",
                        "  https:\n  sip_tls: {client_certificates: required}\n  xmpp: {}\n");
    auto cfg = load_edge_e_config(e.write("listeners-e.yaml", text));
    INFO((cfg ? "" : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->listeners.https->listen.str() == "*:8443");
    CHECK(cfg->listeners.sip_tls->listen.str() == "*:5061");
    CHECK(cfg->listeners.sip_tls->client_certificates == ClientCertMode::Required);
    CHECK(cfg->listeners.xmpp->listen.str() == "*:5222");
}

TEST_CASE("edge-e: several errors are all collected, each with its line", "[config][edge_e]") {
    auto& e = env();
    std::string text = R"(node_name: expe1.example.com
workers: 65
log: {level: loud}
tls:
  default_certificate:
    cert: ../certs/out/edge-e.crt
    key: ../certs/out/missing.key
  trusted_cas: ../certs/out/ca.crt
  min_verison: "1.3"
listeners:
  https: {listen: "*:8443"}
  xmpp: {listen: "localhost:5222"}
link:
  tls_verify_subject_name: expc1.example.com
  auth_database: link-users.txt
  ping_interval: 10 s
limits: {max_header_bytes: 16x}
)";
    Diagnostics diag;
    auto cfg = load_edge_e_config(e.write("multi-e.yaml", text), &diag);
    REQUIRE_FALSE(cfg);
    INFO(cfg.error().message);
    CHECK(diag.errors.size() == 7);
    CHECK(error_for(diag, "workers").line == 2);
    CHECK(error_for(diag, "workers").message == "value 65 out of range 1..64");
    CHECK(error_for(diag, "log.level").line == 3);
    CHECK(error_for(diag, "tls.default_certificate.key").str() ==
          e.conf.string() + "/multi-e.yaml:7: tls.default_certificate.key: cannot read file "
                            "\"../certs/out/missing.key\": No such file or directory");
    CHECK(error_for(diag, "tls.min_verison").message ==
          "unknown key \"min_verison\" (did you mean \"min_version\"?)");
    CHECK(error_for(diag, "tls.min_verison").line == 9);
    CHECK(error_for(diag, "listeners.xmpp.listen").line == 12);
    CHECK(error_for(diag, "link.ping_interval").line == 16);
    CHECK(error_for(diag, "limits.max_header_bytes").line == 17);
    // The Result's message is the same list, one per line.
    CHECK(cfg.error().message == diag.errors_text());
}

TEST_CASE("edge-e: missing required keys", "[config][edge_e]") {
    auto& e = env();
    auto text = replace(kEdgeE, "  tls_verify_subject_name: expc1.example.com\n", "");
    text = replace(text, "node_name: expe1.example.com\n", "");
    Diagnostics diag;
    auto cfg = load_edge_e_config(e.write("missing-e.yaml", text), &diag);
    REQUIRE_FALSE(cfg);
    CHECK(error_for(diag, "node_name").line == 0);
    CHECK(error_for(diag, "node_name").message == "missing required key");
    CHECK(error_for(diag, "link.tls_verify_subject_name").line == 8); // the "link:" line after the removal
}

TEST_CASE("edge-e: node_name must be an FQDN; workers auto or a number", "[config][edge_e]") {
    auto& e = env();
    Diagnostics dw;
    REQUIRE_FALSE(load_edge_e_config(e.write("workers-e.yaml", kEdgeE + "workers: lots\n"), &dw));
    CHECK(error_for(dw, "workers").str() ==
          e.conf.string() +
              "/workers-e.yaml:12: workers: expected \"auto\" or an integer 1..64, got \"lots\"");
    auto four = load_edge_e_config(e.write("workers4-e.yaml", kEdgeE + "workers: 4\n"));
    REQUIRE(four);
    CHECK(four->workers == 4);

    Diagnostics diag;
    auto cfg =
        load_edge_e_config(e.write("fqdn-e.yaml", replace(kEdgeE, "expe1.example.com", "expe1")), &diag);
    REQUIRE_FALSE(cfg);
    CHECK_THAT(error_for(diag, "node_name").message, Catch::Contains("fully qualified"));
}

TEST_CASE("edge-e: certificate checks", "[config][edge_e]") {
    auto& e = env();
    SECTION("default certificate without SAN") {
        auto text = replace(kEdgeE, "edge-e.crt", "edge-c-cnonly.crt");
        text = replace(text, "edge-e.key", "edge-c-cnonly.key");
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(e.write("nosan-e.yaml", text), &diag));
        auto& err = error_for(diag, "tls.default_certificate.cert");
        CHECK(err.line == 4);
        CHECK_THAT(err.message, Catch::Contains("subjectAltName"));
    }
    SECTION("key does not match the certificate") {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(
            e.write("mismatch-e.yaml", replace(kEdgeE, "edge-e.key", "other.key")), &diag));
        auto& err = error_for(diag, "tls.default_certificate.key");
        CHECK(err.line == 5);
        CHECK_THAT(err.message, Catch::Contains("does not match"));
    }
    SECTION("key file that is not a PEM key (root can read anything, so chmod would not test this)") {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(
            e.write("nopem-e.yaml", replace(kEdgeE, "../certs/out/edge-e.key", "not-a-key.pem")), &diag));
        CHECK(error_for(diag, "tls.default_certificate.key").line == 5);
    }
    SECTION("key path that is a directory") {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(
            e.write("dirkey-e.yaml", replace(kEdgeE, "../certs/out/edge-e.key", "../certs/out")), &diag));
        auto& err = error_for(diag, "tls.default_certificate.key");
        CHECK(err.line == 5);
        CHECK(err.message == "cannot read file \"../certs/out\": Is a directory");
    }
    SECTION("trusted CA file that holds no certificate") {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(
            e.write("badca-e.yaml", replace(kEdgeE, "../certs/out/ca.crt", "not-a-key.pem")), &diag));
        CHECK(error_for(diag, "tls.trusted_cas").line == 6);
    }
}

TEST_CASE("edge-e: SNI certificates take their domains from SANs unless given", "[config][edge_e]") {
    auto& e = env();
    auto text = replace(kEdgeE, "  trusted_cas:",
                        "  certificates:\n"
                        "    - {cert: ../certs/out/edge-e-alt.crt, key: ../certs/out/edge-e-alt.key}\n"
                        "    - cert: ../certs/out/edge-e-alt.crt\n"
                        "      key: ../certs/out/edge-e-alt.key\n"
                        "      domains: [other.example.net]\n"
                        "  trusted_cas:");
    Diagnostics diag;
    auto cfg = load_edge_e_config(e.write("sni-e.yaml", text), &diag);
    INFO((cfg ? diag.warnings_text() : cfg.error().message));
    REQUIRE(cfg);
    REQUIRE(cfg->tls.certificates.size() == 2);
    const auto& a = cfg->tls.certificates[0];
    CHECK(a.domains_from_san);
    CHECK(a.domains == std::vector<std::string>{"collab-edge.example.org", "example.org", "*.example.org"});
    CHECK_FALSE(cfg->tls.certificates[1].domains_from_san);
    REQUIRE(diag.warnings.size() == 1);
    CHECK(diag.warnings[0].key == "tls.certificates[1].domains[0]");
    CHECK(diag.warnings[0].line == 10);
}

TEST_CASE("edge-e: a domain served by two SNI certificates is an error", "[config][edge_e]") {
    auto& e = env();
    auto text = replace(kEdgeE, "  trusted_cas:",
                        "  certificates:\n"
                        "    - {cert: ../certs/out/edge-e-alt.crt, key: ../certs/out/edge-e-alt.key}\n"
                        "    - {cert: ../certs/out/edge-e-alt.crt, key: ../certs/out/edge-e-alt.key, "
                        "domains: [example.org]}\n"
                        "  trusted_cas:");
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_e_config(e.write("dupsni-e.yaml", text), &diag));
    auto& err = error_for(diag, "tls.certificates[1].domains[0]");
    CHECK(err.line == 8);
    CHECK_THAT(err.message, Catch::Contains("already served by tls.certificates[0]"));
}

TEST_CASE("edge-e: auth database problems point into that file", "[config][edge_e]") {
    auto& e = env();
    e.write("bad-users.txt", "# header\nedgepair-link:plain:secret\n");
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_e_config(
        e.write("badusers-e.yaml", replace(kEdgeE, "link-users.txt", "bad-users.txt")), &diag));
    REQUIRE(diag.errors.size() == 1);
    CHECK(diag.errors[0].file == (e.conf / "bad-users.txt").string());
    CHECK(diag.errors[0].line == 2);

    e.write("empty-users.txt", "# nobody yet\n");
    Diagnostics d2;
    REQUIRE_FALSE(load_edge_e_config(
        e.write("nousers-e.yaml", replace(kEdgeE, "link-users.txt", "empty-users.txt")), &d2));
    CHECK(error_for(d2, "link.auth_database").line == 11);
}

TEST_CASE("edge-e: listeners on the same port conflict", "[config][edge_e]") {
    auto& e = env();
    auto text = replace(kEdgeE, "  https: {listen: \"*:8443\"}\n",
                        "  https: {listen: \"*:8443\"}\n  xmpp: {listen: 127.0.0.1:8443}\n");
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_e_config(e.write("conflict-e.yaml", text), &diag));
    CHECK(error_for(diag, "listeners.xmpp.listen").line == 9);
}

TEST_CASE("edge-e: an admin listener beyond loopback needs credentials", "[config][edge_e]") {
    auto& e = env();
    Diagnostics diag;
    REQUIRE_FALSE(
        load_edge_e_config(e.write("admin-e.yaml", kEdgeE + "admin: {listen: 0.0.0.0:9901}\n"), &diag));
    auto& err = error_for(diag, "admin.listen");
    CHECK(err.line == 12);
    CHECK(err.message.find("set admin.username and admin.password_hash") != std::string::npos);

    auto hash = make_auth_line("ops", "pw", kAuthMinIterations).substr(4);
    Diagnostics ok;
    auto cfg = load_edge_e_config(e.write("admin-e2.yaml", kEdgeE +
                                                               "admin: {listen: 0.0.0.0:9901, username: ops, "
                                                               "password_hash: \"" +
                                                               hash + "\"}\n"),
                                  &ok);
    REQUIRE(cfg);
    CHECK(cfg->admin.username == "ops");
    CHECK(cfg->admin.password_hash == hash);

    Diagnostics bad;
    REQUIRE_FALSE(load_edge_e_config(
        e.write("admin-e3.yaml",
                kEdgeE + "admin: {listen: 127.0.0.1:9901, username: ops, password_hash: nope}\n"),
        &bad));
    CHECK(error_for(bad, "admin.password_hash").line == 12);
    Diagnostics half;
    REQUIRE_FALSE(load_edge_e_config(
        e.write("admin-e4.yaml", kEdgeE + "admin: {listen: 127.0.0.1:9901, username: ops}\n"), &half));
    CHECK(error_for(half, "admin.password_hash").message.find("required") != std::string::npos);
}

TEST_CASE("file-level problems of a whole config", "[config][edge_e]") {
    auto& e = env();
    Diagnostics d1;
    auto r1 = load_edge_e_config((e.conf / "nope.yaml").string(), &d1);
    REQUIRE_FALSE(r1);
    CHECK(r1.error().message ==
          (e.conf / "nope.yaml").string() + ": cannot read configuration: No such file or directory");

    Diagnostics d2;
    auto r2 =
        load_edge_e_config(e.write("syntax-e.yaml", "node_name: a.b\ntls: {default_certificate: [\n"), &d2);
    REQUIRE_FALSE(r2);
    REQUIRE(d2.errors.size() == 1);
    CHECK(d2.errors[0].line >= 2);
    CHECK_THAT(d2.errors[0].message, Catch::StartsWith("YAML syntax error"));

    Diagnostics d3;
    REQUIRE_FALSE(load_edge_e_config(e.write("empty-e.yaml", "# nothing\n"), &d3));
    CHECK(d3.errors_text() == (e.conf / "empty-e.yaml").string() + ": empty configuration file");

    Diagnostics d4;
    REQUIRE_FALSE(load_edge_e_config(e.write("list-e.yaml", "- a\n- b\n"), &d4));
    REQUIRE(d4.errors.size() == 1);
    CHECK(d4.errors[0].message == "expected a mapping, got a sequence");
}

TEST_CASE("minimal edge-c config: defaults and the password file", "[config][edge_c]") {
    auto& e = env();
    Diagnostics diag;
    auto cfg = load_edge_c_config(e.write("min-c.yaml", kEdgeC), &diag);
    INFO((cfg ? diag.warnings_text() : cfg.error().message));
    REQUIRE(cfg);
    CHECK(diag.warnings.empty());
    CHECK(cfg->admin.listen.str() == "127.0.0.1:9902");
    REQUIRE(cfg->link.peers.size() == 1);
    CHECK(cfg->link.peers[0].str() == "expe1.example.com:7001");
    CHECK(cfg->link.password == "demo-link-secret");
    CHECK(cfg->link.password_file == (e.conf / "link-password.txt").string());
    CHECK(cfg->link.reconnect_min == 1s);
    CHECK(cfg->link.reconnect_max == 30s);
    CHECK(cfg->dns.servers.empty());
    CHECK(cfg->dns.timeout == 2s);
    CHECK(cfg->dns.max_cache_ttl == 60s);
    CHECK(cfg->deployments == std::vector<std::string>{"default"});
    REQUIRE(cfg->discovery.unified_cm.size() == 1);
    const auto& ucm = cfg->discovery.unified_cm[0];
    CHECK(ucm.port == 8443);
    CHECK(ucm.tls_verify);
    CHECK(ucm.deployment == "default");
    REQUIRE(cfg->domains.size() == 1);
    CHECK(cfg->domains[0].sip);
    CHECK(cfg->domains[0].xmpp);
    CHECK(cfg->domains[0].http);
    CHECK(cfg->allow_list.default_methods == std::vector<HttpMethod>{HttpMethod::Get});
    CHECK(cfg->credentials.refresh_interval == 480min);
    CHECK(cfg->credentials.cleanup_interval == 720min);
    CHECK_FALSE(cfg->sip.path_headers);
}

TEST_CASE("edge-c: certificate without clientAuth", "[config][edge_c]") {
    auto& e = env();
    auto text = replace(kEdgeC, "edge-c.crt", "edge-c-noclientauth.crt");
    text = replace(text, "edge-c.key", "edge-c-noclientauth.key");
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_c_config(e.write("noclient-c.yaml", text), &diag));
    REQUIRE(diag.errors.size() == 1);
    CHECK(diag.errors[0].line == 4);
    CHECK(diag.errors[0].key == "tls.certificate.cert");
    CHECK_THAT(diag.errors[0].message, Catch::Contains("clientAuth"));
}

TEST_CASE("edge-c: certificate without SAN is reported once", "[config][edge_c]") {
    auto& e = env();
    auto text = replace(kEdgeC, "edge-c.crt", "edge-c-cnonly.crt");
    text = replace(text, "edge-c.key", "edge-c-cnonly.key");
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_c_config(e.write("nosan-c.yaml", text), &diag));
    REQUIRE(diag.errors.size() == 1);
    CHECK_THAT(diag.errors[0].message, Catch::Contains("subjectAltName"));
}

TEST_CASE("edge-c: password and password_file are exclusive", "[config][edge_c]") {
    auto& e = env();
    auto both = replace(kEdgeC, "  password_file: link-password.txt\n",
                        "  password: inline\n  password_file: link-password.txt\n");
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_c_config(e.write("both-c.yaml", both), &diag));
    auto& err = error_for(diag, "link.password_file");
    CHECK(err.line == 11);
    CHECK_THAT(err.message, Catch::Contains("mutually exclusive"));

    auto neither = replace(kEdgeC, "  password_file: link-password.txt\n", "");
    Diagnostics d2;
    REQUIRE_FALSE(load_edge_c_config(e.write("neither-c.yaml", neither), &d2));
    CHECK(error_for(d2, "link.password").line == 7);
}

TEST_CASE("edge-c: unknown deployment references", "[config][edge_c]") {
    auto& e = env();
    auto text = kEdgeC + "    deployment: defualt\n" +
                "deployments: [default, emea]\n"
                "allow_list:\n"
                "  rules:\n"
                "    - {url: \"https://cuc1.example.com/vmrest/\", deployment: apac}\n";
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_c_config(e.write("dep-c.yaml", text), &diag));
    INFO(diag.errors_text());
    REQUIRE(diag.errors.size() == 2);
    auto& d1 = error_for(diag, "domains[0].deployment");
    CHECK(d1.line == 18);
    CHECK_THAT(d1.message, Catch::Contains("unknown deployment \"defualt\" (did you mean \"default\"?)"));
    CHECK(error_for(diag, "allow_list.rules[0].deployment").line == 22);
}

TEST_CASE("edge-c: tls_verify needs an FQDN, not an IP", "[config][edge_c]") {
    auto& e = env();
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_c_config(
        e.write("ip-c.yaml", replace(kEdgeC, "address: cucm1.example.com", "address: 127.0.1.1")), &diag));
    auto& err = error_for(diag, "discovery.unified_cm[0].address");
    CHECK(err.line == 13);
    CHECK_THAT(err.message, Catch::Contains("IP address"));

    auto off = replace(kEdgeC, "address: cucm1.example.com", "address: 127.0.1.1\n      tls_verify: false");
    auto ok = load_edge_c_config(e.write("ip-noverify-c.yaml", off));
    INFO((ok ? "" : ok.error().message));
    CHECK(ok);
}

TEST_CASE("edge-c: link peers 1..6", "[config][edge_c]") {
    auto& e = env();
    Diagnostics d0;
    REQUIRE_FALSE(
        load_edge_c_config(e.write("nopeers-c.yaml", replace(kEdgeC, "[expe1.example.com]", "[]")), &d0));
    CHECK(error_for(d0, "link.peers").line == 8);

    std::string seven = "[e1.example.com, e2.example.com, e3.example.com, e4.example.com, e5.example.com, "
                        "e6.example.com, \"[::1]:7001\"]";
    Diagnostics d7;
    REQUIRE_FALSE(
        load_edge_c_config(e.write("sevenpeers-c.yaml", replace(kEdgeC, "[expe1.example.com]", seven)), &d7));
    CHECK_THAT(error_for(d7, "link.peers").message, Catch::Contains("at most 6"));
}

TEST_CASE("edge-c: allow-list rules parse their URL", "[config][edge_c]") {
    auto& e = env();
    auto text = kEdgeC +
                "allow_list:\n"
                "  default_methods: [GET, head]\n"
                "  rules:\n"
                "    - {url: \"https://cuc1.example.com/vmrest/\", methods: [GET, PUT], match: exact}\n"
                "    - {url: \"http://[::1]:6970/\"}\n"
                "    - {url: \"ftp://x.example.com/\"}\n"
                "    - {url: \"https://cuc1.example.com/\", methods: [PATCH]}\n";
    Diagnostics diag;
    auto r = load_edge_c_config(e.write("rules-c.yaml", text), &diag);
    REQUIRE_FALSE(r);
    INFO(diag.errors_text());
    REQUIRE(diag.errors.size() == 2);
    CHECK(error_for(diag, "allow_list.rules[2].url").line == 23);
    CHECK(error_for(diag, "allow_list.rules[3].methods[0]").line == 24);

    // Parse-only view shows the parsed parts of the valid rules.
    Diagnostics pd;
    auto cfg = parse_edge_c_config(e.conf.string() + "/rules-c.yaml", pd);
    REQUIRE(cfg.allow_list.rules.size() == 4);
    const auto& r0 = cfg.allow_list.rules[0];
    CHECK(r0.scheme == "https");
    CHECK(r0.host == "cuc1.example.com");
    CHECK(r0.port == 443);
    CHECK(r0.path == "/vmrest/");
    CHECK(r0.match == MatchKind::Exact);
    CHECK(r0.methods == std::vector<HttpMethod>{HttpMethod::Get, HttpMethod::Put});
    const auto& r1 = cfg.allow_list.rules[1];
    CHECK(r1.host == "::1");
    CHECK(r1.port == 6970);
    CHECK(r1.methods == std::vector<HttpMethod>{HttpMethod::Get, HttpMethod::Head});
}

TEST_CASE("edge-c: warnings above recommended limits are not errors", "[config][edge_c]") {
    auto& e = env();
    std::string deps = "deployments: [";
    for (int i = 0; i < 11; ++i)
        deps += (i ? ", d" : "d") + std::to_string(i);
    deps += "]\n";
    std::string doms = "domains:\n";
    for (int i = 0; i < 51; ++i)
        doms += "  - {name: d" + std::to_string(i) + ".example.com}\n";
    auto text = replace(kEdgeC, "domains:\n  - name: example.com\n", deps + doms);
    Diagnostics diag;
    auto cfg = load_edge_c_config(e.write("many-c.yaml", text), &diag);
    INFO((cfg ? diag.warnings_text() : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->deployments.size() == 12);
    REQUIRE(diag.warnings.size() == 2);
    CHECK(diag.warnings[0].key == "deployments");
    CHECK(diag.warnings[0].line == 16);
    CHECK(diag.warnings[1].key == "domains");
}

TEST_CASE("edge-c: duplicate domains and reconnect bounds", "[config][edge_c]") {
    auto& e = env();
    auto text = kEdgeC + "  - name: EXAMPLE.com\n";
    text = replace(text, "  password_file: link-password.txt\n",
                   "  password_file: link-password.txt\n  reconnect_min: 1m\n  reconnect_max: 30s\n");
    Diagnostics diag;
    REQUIRE_FALSE(load_edge_c_config(e.write("dup-c.yaml", text), &diag));
    CHECK(error_for(diag, "domains[1].name").line == 20);
    CHECK(error_for(diag, "link.reconnect_min").line == 11);
}

TEST_CASE("the example configs in conf/ pass the validator", "[config][examples]") {
    auto& e = env();
    for (const char* f : {"edge-e.yaml", "edge-c.yaml", "link-users.txt", "link-password.txt"})
        fs::copy_file(fs::path(EP_SOURCE_DIR) / "conf" / f, e.conf / f, fs::copy_options::overwrite_existing);

    Diagnostics de;
    auto ee = load_edge_e_config((e.conf / "edge-e.yaml").string(), &de);
    INFO((ee ? de.warnings_text() : ee.error().message));
    REQUIRE(ee);
    CHECK(de.warnings.empty());
    CHECK(ee->node_name == "expe1.example.com");
    CHECK(ee->log.modules.at("link") == LogLevel::Debug);
    CHECK(ee->tls.certificates.size() == 1);
    CHECK(ee->listeners.sip_tls->listen.str() == "127.0.0.1:5061"); // the demo stays on loopback
    CHECK(ee->link.tls_verify_subject_name == "expc1.example.com");
    auto db = load_auth_db(ee->link.auth_database);
    REQUIRE(db);

    Diagnostics dc;
    auto ec = load_edge_c_config((e.conf / "edge-c.yaml").string(), &dc);
    INFO((ec ? dc.warnings_text() : ec.error().message));
    REQUIRE(ec);
    CHECK(dc.warnings.empty());
    CHECK(ec->link.peers[0].str() == "127.0.0.1:7001");
    CHECK(ec->dns.servers[0].str() == "127.0.2.53:53");
    CHECK(ec->discovery.unity_connection[0].port == 443);
    CHECK(ec->discovery.state_file == (e.root / "run" / "edge-c-state.json").string());
    // The two demo halves agree on the link credentials.
    CHECK(db->verify(ec->link.username, ec->link.password));
}

TEST_CASE("edge-e: the http section (timeouts, HTTP/2 streams, rate limit)", "[config][edge_e]") {
    auto& e = env();
    auto def = load_edge_e_config(e.write("http-def-e.yaml", kEdgeE));
    REQUIRE(def);
    CHECK(def->http.response_timeout == 35s);
    CHECK(def->http.max_concurrent_streams == 100);
    CHECK(def->http.rate_limit.enabled);
    CHECK(def->http.rate_limit.requests_per_second == 50);
    CHECK(def->http.rate_limit.burst == 200);
    CHECK(def->http.client_half_close == HalfClose::Abort);

    auto text = kEdgeE + "http:\n  response_timeout: 2s\n  max_concurrent_streams: 10\n"
                         "  rate_limit: {enabled: off, requests_per_second: 5, burst: 7}\n"
                         "  client_half_close: serve\n";
    auto cfg = load_edge_e_config(e.write("http-e.yaml", text));
    INFO((cfg ? "" : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->http.response_timeout == 2s);
    CHECK(cfg->http.max_concurrent_streams == 10);
    CHECK_FALSE(cfg->http.rate_limit.enabled);
    CHECK(cfg->http.rate_limit.requests_per_second == 5);
    CHECK(cfg->http.rate_limit.burst == 7);
    CHECK(cfg->http.client_half_close == HalfClose::Serve);

    Diagnostics diag;
    auto bad = kEdgeE +
               "http:\n  response_timeout: 0s\n  max_concurrent_streams: 0\n  rate_limit: {brust: 1}\n"
               "  client_half_close: wait\n";
    CHECK_FALSE(load_edge_e_config(e.write("http-bad-e.yaml", bad), &diag));
    error_for(diag, "http.client_half_close");
    error_for(diag, "http.response_timeout");
    error_for(diag, "http.max_concurrent_streams");
    error_for(diag, "http.rate_limit.brust");
}

TEST_CASE("edge-e: the protection section (categories, exemptions)", "[config][edge_e][protection]") {
    auto& e = env();
    auto def = load_edge_e_config(e.write("prot-def-e.yaml", kEdgeE));
    REQUIRE(def);
    CHECK(def->protection.enabled);
    CHECK(def->protection.exempt.empty()); // loopback is not exempt by default
    CHECK(def->protection.categories[size_t(edgepair::protection::Category::HttpAuth)].enabled);
    CHECK_FALSE(def->protection.categories[size_t(edgepair::protection::Category::HttpAccess)].enabled);

    auto text = kEdgeE +
                "protection:\n  exempt: [192.0.2.0/24, \"2001:db8::/32\", 127.0.0.9]\n"
                "  categories:\n    http-ce-access: {enabled: on, threshold: 3, window: 10s, ban: 1h}\n"
                "    sip-auth: {enabled: off}\n";
    auto cfg = load_edge_e_config(e.write("prot-e.yaml", text));
    INFO((cfg ? "" : cfg.error().message));
    REQUIRE(cfg);
    REQUIRE(cfg->protection.exempt.size() == 3);
    CHECK(cfg->protection.exempt[1].str() == "2001:db8::/32");
    CHECK(cfg->protection.exempt[2].str() == "127.0.0.9/32");
    auto& acc = cfg->protection.categories[size_t(edgepair::protection::Category::HttpAccess)];
    CHECK(acc.enabled);
    CHECK(acc.threshold == 3);
    CHECK(acc.window_ms == 10'000);
    CHECK(acc.ban_ms == 3'600'000);
    CHECK_FALSE(cfg->protection.categories[size_t(edgepair::protection::Category::SipAuth)].enabled);

    Diagnostics diag;
    auto bad = kEdgeE + "protection:\n  exempt: [192.0.2.1/24]\n  categories:\n"
                        "    http-ce-auht: {threshold: 2}\n    xmpp-intrusion: {threshold: 0, window: 0s}\n";
    CHECK_FALSE(load_edge_e_config(e.write("prot-bad-e.yaml", bad), &diag));
    error_for(diag, "protection.exempt[0]");
    error_for(diag, "protection.categories.http-ce-auht");
    error_for(diag, "protection.categories.xmpp-intrusion.threshold");
    error_for(diag, "protection.categories.xmpp-intrusion.window");
}

TEST_CASE("edge-e: the cluster section (Redis for shared bans)", "[config][edge_e][cluster]") {
    auto& e = env();
    auto def = load_edge_e_config(e.write("cluster-def-e.yaml", kEdgeE));
    REQUIRE(def);
    CHECK_FALSE(def->cluster.redis); // without it, everything stays local

    e.write("redis-password.txt", "s3cret\n");
    auto text = kEdgeE +
                "cluster:\n  name: emea-1\n"
                "  redis: {address: 127.0.0.1, password_file: redis-password.txt, db: 3, timeout: 500ms}\n";
    auto cfg = load_edge_e_config(e.write("cluster-e.yaml", text));
    INFO((cfg ? "" : cfg.error().message));
    REQUIRE(cfg);
    REQUIRE(cfg->cluster.redis);
    CHECK(cfg->cluster.name == "emea-1");
    CHECK(cfg->cluster.redis->address.host == "127.0.0.1");
    CHECK(cfg->cluster.redis->address.port == 6379);
    CHECK(cfg->cluster.redis->password == "s3cret");
    CHECK(cfg->cluster.redis->db == 3);
    CHECK(cfg->cluster.redis->timeout == std::chrono::milliseconds(500));

    auto minimal = load_edge_e_config(
        e.write("cluster-min-e.yaml", kEdgeE + "cluster: {name: c, redis: {address: \"[::1]:6380\"}}\n"));
    INFO((minimal ? "" : minimal.error().message));
    REQUIRE(minimal);
    CHECK(minimal->cluster.redis->address.port == 6380);
    CHECK(minimal->cluster.redis->password.empty());
    CHECK(minimal->cluster.redis->timeout == std::chrono::seconds(2));

    Diagnostics diag;
    auto bad = kEdgeE + "cluster:\n  name: \"a*b\"\n"
                        "  redis: {address: redis.example.com, db: 256, timeout: 10ms, pasword_file: x}\n";
    CHECK_FALSE(load_edge_e_config(e.write("cluster-bad-e.yaml", bad), &diag));
    CHECK(error_for(diag, "cluster.name").line == 13);
    error_for(diag, "cluster.redis.address");
    error_for(diag, "cluster.redis.db");
    error_for(diag, "cluster.redis.timeout");
    error_for(diag, "cluster.redis.pasword_file");

    auto sent = load_edge_e_config(e.write(
        "cluster-sentinel-e.yaml",
        kEdgeE +
            "cluster: {name: c, redis: {sentinels: [127.0.0.1, \"127.0.0.2:26380\"], master_name: m1}}\n"));
    INFO((sent ? "" : sent.error().message));
    REQUIRE(sent);
    REQUIRE(sent->cluster.redis->sentinels.size() == 2);
    CHECK(sent->cluster.redis->sentinels[0].port == 26379);
    CHECK(sent->cluster.redis->sentinels[1].port == 26380);
    CHECK(sent->cluster.redis->master_name == "m1");

    Diagnostics ds;
    CHECK_FALSE(load_edge_e_config(
        e.write("cluster-sentinel-bad-e.yaml",
                kEdgeE + "cluster:\n  name: c\n  redis: {address: 127.0.0.1, sentinels: [127.0.0.1]}\n"),
        &ds));
    error_for(ds, "cluster.redis.sentinels");
    Diagnostics ds2;
    CHECK_FALSE(load_edge_e_config(
        e.write("cluster-sentinel-bad2-e.yaml",
                kEdgeE +
                    "cluster: {name: c, redis: {sentinels: [127.0.0.1, 127.0.0.1:26379, s.example.com]}}\n"),
        &ds2));
    error_for(ds2, "cluster.redis.sentinels[1]");
    error_for(ds2, "cluster.redis.sentinels[2]");
    error_for(ds2, "cluster.redis.master_name");
    Diagnostics ds3;
    CHECK_FALSE(load_edge_e_config(
        e.write("cluster-sentinel-bad3-e.yaml",
                kEdgeE + "cluster: {name: c, redis: {address: 127.0.0.1, master_name: m}}\n"),
        &ds3));
    error_for(ds3, "cluster.redis.master_name");

    // A name alone names the cluster for the peers' consistency check and shares nothing.
    auto named = load_edge_e_config(e.write("cluster-name-e.yaml", kEdgeE + "cluster: {name: x}\n"));
    REQUIRE(named);
    CHECK_FALSE(named->cluster.redis);
    Diagnostics diag2;
    CHECK_FALSE(load_edge_e_config(
        e.write("cluster-bad2-e.yaml", kEdgeE + "cluster: {redis: {address: 127.0.0.1}}\n"), &diag2));
    CHECK_THAT(error_for(diag2, "cluster").message, Catch::Contains("cluster name is required with redis"));
    // edge-c takes the same section (its peers share sign-in state), with the same rules.
    auto cred = load_edge_c_config(e.write(
        "cluster-redis-c.yaml",
        kEdgeC + "cluster: {name: x, redis: {address: \"127.0.0.1:6380\", password_file: redis-password.txt, "
                 "db: 2, timeout: 300ms}}\n"));
    INFO((cred ? "" : cred.error().message));
    REQUIRE(cred);
    REQUIRE(cred->cluster.redis);
    CHECK(cred->cluster.name == "x");
    CHECK(cred->cluster.redis->address.port == 6380);
    CHECK(cred->cluster.redis->password == "s3cret");
    CHECK(cred->cluster.redis->db == 2);
    CHECK(cred->cluster.redis->timeout == std::chrono::milliseconds(300));
    auto csent = load_edge_c_config(
        e.write("cluster-sentinel-c.yaml", kEdgeC + "cluster: {name: x, redis: {sentinels: [127.0.0.1], "
                                                    "master_name: m1}}\n"));
    REQUIRE(csent);
    CHECK(csent->cluster.redis->master_name == "m1");
    Diagnostics diag4;
    CHECK_FALSE(load_edge_c_config(
        e.write("cluster-redis-bad-c.yaml", kEdgeC + "cluster: {redis: {address: redis.example.com}}\n"),
        &diag4));
    CHECK_THAT(error_for(diag4, "cluster").message, Catch::Contains("cluster name is required with redis"));
    error_for(diag4, "cluster.redis.address");
    auto cdef = load_edge_c_config(e.write("cluster-name-c.yaml", kEdgeC + "cluster: {name: x}\n"));
    REQUIRE(cdef);
    CHECK_FALSE(cdef->cluster.redis);
    CHECK(cdef->cluster.discovery_primary.empty());
    // discovery_primary: edge-c only, and only with Redis (the result reaches the followers through it).
    auto prim = load_edge_c_config(
        e.write("cluster-primary-c.yaml", kEdgeC + "cluster: {name: x, discovery_primary: expc1.example.com, "
                                                   "redis: {address: 127.0.0.1}}\n"));
    REQUIRE(prim);
    CHECK(prim->cluster.discovery_primary == "expc1.example.com");
    Diagnostics diag5;
    CHECK_FALSE(
        load_edge_c_config(e.write("cluster-primary-bad-c.yaml",
                                   kEdgeC + "cluster: {name: x, discovery_primary: expc1.example.com}\n"),
                           &diag5));
    CHECK_THAT(error_for(diag5, "cluster.discovery_primary").message, Catch::Contains("needs cluster.redis"));
    Diagnostics diag6;
    CHECK_FALSE(load_edge_e_config(
        e.write("cluster-primary-e.yaml", kEdgeE + "cluster: {name: x, discovery_primary: expc1.example.com, "
                                                   "redis: {address: 127.0.0.1}}\n"),
        &diag6));
    error_for(diag6, "cluster.discovery_primary");
    Diagnostics diag3;
    CHECK_FALSE(load_edge_e_config(
        e.write("cluster-bad3-e.yaml",
                kEdgeE + "cluster: {name: x, redis: {address: 127.0.0.1, password_file: nowhere.txt}}\n"),
        &diag3));
    error_for(diag3, "cluster.redis.password_file");
}

TEST_CASE("edge-c: link.max_streams", "[config][edge_c]") {
    auto& e = env();
    auto def = load_edge_c_config(e.write("streams-def-c.yaml", kEdgeC));
    REQUIRE(def);
    CHECK(def->link.max_streams == 250000);
    auto set = load_edge_c_config(
        e.write("streams-c.yaml", replace(kEdgeC, "link:\n", "link:\n  max_streams: 120000\n")));
    INFO((set ? "" : set.error().message));
    REQUIRE(set);
    CHECK(set->link.max_streams == 120000);
    auto low = load_edge_c_config(
        e.write("streams-c-bad.yaml", replace(kEdgeC, "link:\n", "link:\n  max_streams: 50\n")));
    REQUIRE_FALSE(low);
    CHECK(low.error().message.find("link.max_streams") != std::string::npos);
    INFO(low.error().message);
    CHECK(low.error().message.find("streams-c-bad.yaml:8") != std::string::npos);
}

TEST_CASE("edge-c: http.upstream_timeout, failed-check limit, imported rules file", "[config][edge_c]") {
    auto& e = env();
    auto def = load_edge_c_config(e.write("http-def-c.yaml", kEdgeC));
    REQUIRE(def);
    CHECK(def->http.upstream_timeout == 30s);
    CHECK(def->http.upstream_idle_per_origin == 256);
    CHECK(def->http.upstream_idle_timeout == 60s);
    CHECK(def->credentials.max_failures == 10);
    CHECK(def->credentials.failure_period == 60s);
    CHECK(def->allow_list.rules_file.empty()); // no state file, nowhere to keep imports

    auto text = replace(kEdgeC, "discovery:\n", "discovery:\n  state_file: ../state/c.json\n") +
                "http: {upstream_timeout: 2s, upstream_idle_per_origin: 0, upstream_idle_timeout: 5m}\n"
                "credentials: {max_failures: 0, failure_period: 5m}\n";
    auto cfg = load_edge_c_config(e.write("http-c.yaml", text));
    INFO((cfg ? "" : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->http.upstream_timeout == 2s);
    CHECK(cfg->http.upstream_idle_per_origin == 0);
    CHECK(cfg->http.upstream_idle_timeout == 5min);
    CHECK(cfg->credentials.max_failures == 0);
    CHECK(cfg->credentials.failure_period == 5min);
    CHECK(cfg->allow_list.rules_file == (e.root / "state" / "edge-c-allow-list.csv").string());

    auto too_many = replace(text, "upstream_idle_per_origin: 0", "upstream_idle_per_origin: 10001");
    auto bad = load_edge_c_config(e.write("http-c-bad.yaml", too_many));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("upstream_idle_per_origin") != std::string::npos);
    CHECK(bad.error().message.find("http-c-bad.yaml:") != std::string::npos);

    auto no_cache = load_edge_c_config(e.write("dns-c.yaml", kEdgeC + "dns: {max_cache_ttl: 0s}\n"));
    REQUIRE(no_cache);
    CHECK(no_cache->dns.max_cache_ttl == 0s);
    auto long_cache = load_edge_c_config(e.write("dns-c-bad.yaml", kEdgeC + "dns: {max_cache_ttl: 2h}\n"));
    REQUIRE_FALSE(long_cache);
    CHECK(long_cache.error().message.find("dns.max_cache_ttl") != std::string::npos);
    CHECK(long_cache.error().message.find("dns-c-bad.yaml:") != std::string::npos);

    auto given = text + "allow_list: {rules_file: rules.csv}\n";
    auto cfg2 = load_edge_c_config(e.write("http-c2.yaml", given));
    REQUIRE(cfg2);
    CHECK(cfg2->allow_list.rules_file == (e.conf / "rules.csv").string());
}

TEST_CASE("edge-c: single sign-on keys", "[config][edge_c][sso]") {
    auto& e = Env::get();
    REQUIRE(e.ok);
    std::ofstream(e.conf / "idp-metadata.xml")
        << R"(<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp/x">)"
        << R"(<md:IDPSSODescriptor><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="x"><ds:X509Data>)"
        << R"(<ds:X509Certificate>MIIB</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>)"
        << R"(<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" )"
        << R"(Location="https://idp/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>)";
    std::ofstream(e.conf / "sp-metadata.xml")
        << R"(<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp/x">)"
        << R"(<md:SPSSODescriptor/></md:EntityDescriptor>)";
    SECTION("a domain with SSO on, its IdP and the signing pair; defaults filled") {
        auto text = replace(kEdgeC, "  - name: example.com\n",
                            "  - {name: example.com, sso: exclusive, idp: idp1, sso_tokens: unified_cm}\n"
                            "  - {name: other.example.com}\n"
                            "sso:\n"
                            "  check_internal_availability: false\n"
                            "  oauth_client_id: jabber-desktop_1.0\n"
                            "  sip_token_extra_ttl: 90s\n"
                            "  signing: {cert: ../certs/out/edge-c.crt, key: ../certs/out/edge-c.key}\n"
                            "  identity_providers:\n"
                            "    - {name: idp1, metadata_file: idp-metadata.xml}\n");
        Diagnostics diag;
        auto cfg = load_edge_c_config(e.write("sso-c.yaml", text), &diag);
        REQUIRE(cfg);
        CHECK(cfg->domains[0].sso == SsoMode::Exclusive);
        CHECK(cfg->domains[0].idp == "idp1");
        CHECK(cfg->domains[0].sso_tokens == SsoTokens::UnifiedCm);
        CHECK(cfg->domains[1].sso == SsoMode::Off);
        CHECK(cfg->domains[1].sso_tokens == SsoTokens::Edge); // the default: edge tokens, as before
        CHECK(cfg->sso.oauth_client_id == "jabber-desktop_1.0");
        CHECK_FALSE(cfg->sso.check_internal_availability);
        CHECK(cfg->sso.sip_token_extra_ttl == std::chrono::seconds(90));
        CHECK(cfg->sso.entity_id == "https://expc1.example.com/saml/sp");
        // link.peers names edge-e by DNS: it is the consumer host by default.
        CHECK(cfg->sso.edge_e_addresses == std::vector<std::string>{"expe1.example.com"});
        CHECK(cfg->sso.identity_providers.at(0).metadata_file == (e.conf / "idp-metadata.xml").string());
    }
    SECTION("Exclusive governs the passwords of every domain of its deployment, and says so") {
        auto text = replace(kEdgeC, "  - name: example.com\n",
                            "  - {name: example.com, sso: exclusive, idp: idp1}\n"
                            "  - {name: plain.example.com}\n"
                            "  - {name: on.example.com, sso: on, idp: idp1}\n"
                            "  - {name: emea.example.com, deployment: emea}\n"
                            "  - {name: emea-on.example.com, deployment: emea, sso: on, idp: idp1}\n"
                            "deployments: [emea]\n"
                            "sso:\n"
                            "  signing: {cert: ../certs/out/edge-c.crt, key: ../certs/out/edge-c.key}\n"
                            "  identity_providers:\n"
                            "    - {name: idp1, metadata_file: idp-metadata.xml}\n");
        Diagnostics diag;
        auto cfg = load_edge_c_config(e.write("sso-deployment-c.yaml", text), &diag);
        REQUIRE(cfg);
        CHECK(credential_sso_mode(*cfg, "example.com") == SsoMode::Exclusive);
        CHECK(credential_sso_mode(*cfg, "plain.example.com") == SsoMode::Exclusive);
        CHECK(credential_sso_mode(*cfg, "on.example.com") == SsoMode::Exclusive);
        // Another deployment (another Unified CM) keeps its own: the strictest there is On.
        CHECK(credential_sso_mode(*cfg, "emea.example.com") == SsoMode::On);
        CHECK(credential_sso_mode(*cfg, "emea-on.example.com") == SsoMode::On);
        CHECK(credential_sso_mode(*cfg, "unknown.example.com") == SsoMode::Off);
        // The domain's own mode is untouched (the SSO paths and get_edge_sso read it).
        CHECK(cfg->domains[1].sso == SsoMode::Off);
        std::vector<std::string> inherit;
        for (const auto& w : diag.warnings)
            if (w.message.find("refuses passwords too") != std::string::npos) {
                inherit.push_back(w.key);
                CHECK_THAT(w.message, Catch::Contains("example.com of the same deployment \"default\""));
            }
        CHECK(inherit == std::vector<std::string>{"domains[1].sso", "domains[2].sso"});
    }
    SECTION("errors name the file, the line and the key") {
        auto text = replace(kEdgeC, "  - name: example.com\n",
                            "  - {name: example.com, sso: maybe}\n"
                            "  - {name: b.example.com, sso: on, sso_tokens: oauth}\n"
                            "  - {name: c.example.com, sso: on, idp: nope}\n"
                            "sso:\n"
                            "  identity_providers:\n"
                            "    - {name: sp-by-mistake, metadata_file: sp-metadata.xml}\n"
                            "  entity_id: http://plain.example.com/sp\n"
                            "  edge_e_addresses: [\"127.0.0.1:8443\"]\n"
                            "  sip_token_extra_ttl: 2d\n"
                            "  oauth_client_id: \"jabber client\"\n");
        Diagnostics diag;
        const auto path = e.write("sso-bad-c.yaml", text);
        REQUIRE_FALSE(load_edge_c_config(path, &diag));
        const auto& mode = error_for(diag, "domains[0].sso");
        CHECK(mode.file == path);
        CHECK(mode.line == 17);
        CHECK_THAT(mode.message, Catch::Contains("exclusive"));
        CHECK_THAT(error_for(diag, "domains[1].sso").message, Catch::Contains("needs idp"));
        CHECK(error_for(diag, "domains[1].sso").line == 18);
        CHECK_THAT(error_for(diag, "domains[2].idp").message, Catch::Contains("unknown identity provider"));
        CHECK_THAT(error_for(diag, "sso.entity_id").message, Catch::Contains("https://"));
        CHECK_THAT(error_for(diag, "sso.edge_e_addresses[0]").message, Catch::Contains("DNS name"));
        CHECK(error_for(diag, "sso.sip_token_extra_ttl").line == 25);
        const auto& tokens = error_for(diag, "domains[1].sso_tokens");
        CHECK(tokens.line == 18);
        CHECK_THAT(tokens.message, Catch::Contains("unified_cm"));
        CHECK(error_for(diag, "sso.oauth_client_id").line == 26);
        CHECK_THAT(error_for(diag, "sso.oauth_client_id").message, Catch::Contains("A-Z a-z 0-9"));
        CHECK_THAT(error_for(diag, "sso").message, Catch::Contains("sso.signing"));
        CHECK_THAT(error_for(diag, "sso.identity_providers[0].metadata_file").message,
                   Catch::Contains("not an identity provider"));
    }
}

TEST_CASE("edge-c: oauth.require_active_user", "[config][edge_c][oauth]") {
    auto& e = Env::get();
    REQUIRE(e.ok);
    Diagnostics diag;
    auto plain = load_edge_c_config(e.write("oauth-default-c.yaml", kEdgeC), &diag);
    REQUIRE(plain);
    CHECK_FALSE(plain->oauth.require_active_user); // an upgrade adds no AXL look-ups
    auto on = load_edge_c_config(
        e.write("oauth-active-c.yaml", kEdgeC + "oauth: {require_active_user: true}\n"), &diag);
    REQUIRE(on);
    CHECK(on->oauth.require_active_user);
    Diagnostics bad;
    const auto path = e.write("oauth-bad-c.yaml", kEdgeC + "oauth:\n  require_active_user: maybe\n");
    REQUIRE_FALSE(load_edge_c_config(path, &bad));
    CHECK(error_for(bad, "oauth.require_active_user").line == 19);
}

TEST_CASE("edge-e: single sign-on modes per domain", "[config][edge_e][sso]") {
    auto& e = Env::get();
    REQUIRE(e.ok);
    SECTION("modes and the internal check") {
        Diagnostics diag;
        auto cfg =
            load_edge_e_config(e.write("sso-e.yaml", kEdgeE + "sso:\n"
                                                              "  check_internal_availability: false\n"
                                                              "  domains:\n"
                                                              "    - {name: Example.COM, mode: on}\n"
                                                              "    - {name: b.example.com, mode: off}\n"),
                               &diag);
        REQUIRE(cfg);
        CHECK_FALSE(cfg->sso.check_internal_availability);
        CHECK(cfg->sso.mode_of("example.com") == SsoMode::On);
        CHECK(cfg->sso.mode_of("b.example.com") == SsoMode::Off);
        CHECK(cfg->sso.mode_of("unlisted.example.com") == SsoMode::Off);
    }
    SECTION("a bad mode and a missing one") {
        Diagnostics diag;
        const auto path = e.write("sso-bad-e.yaml", kEdgeE + "sso:\n"
                                                             "  domains:\n"
                                                             "    - {name: example.com, mode: sometimes}\n"
                                                             "    - {name: b.example.com}\n");
        REQUIRE_FALSE(load_edge_e_config(path, &diag));
        const auto& bad = error_for(diag, "sso.domains[0].mode");
        CHECK(bad.file == path);
        CHECK_THAT(bad.message, Catch::Contains("exclusive"));
        CHECK_THAT(error_for(diag, "sso.domains[1]").message, Catch::Contains("mode is required"));
    }
}

TEST_CASE("edge-e: federation.xmpp keys, defaults and errors", "[config][edge_e][federation]") {
    auto& e = env();
    {
        auto cfg = load_edge_e_config(e.write("fed-e.yaml", kEdgeE + R"(federation:
  xmpp:
    security: optional
    allow: [partner.test, "*.example.org"]
    deny: [Denied.Test]
    dns_servers: [127.0.19.53]
)"));
        REQUIRE(cfg);
        REQUIRE(cfg->federation.xmpp);
        const auto& fx = *cfg->federation.xmpp;
        CHECK(fx.listen.port == 5269);
        CHECK(fx.security == FederationSecurity::Optional);
        CHECK(fx.allow == std::vector<std::string>{"partner.test", "*.example.org"});
        CHECK(fx.deny == std::vector<std::string>{"denied.test"});
        REQUIRE(fx.dns_servers.size() == 1);
        CHECK(fx.dns_servers[0].port == 53);
        CHECK(fx.dns_cache_ttl == 60s);
        CHECK(fx.connect_timeout == 10s);
        CHECK(fx.max_stanza_size == 512 * 1024);
    }
    {
        auto cfg = load_edge_e_config(e.write("nofed-e.yaml", kEdgeE));
        REQUIRE(cfg);
        CHECK_FALSE(cfg->federation.xmpp);
    }
    {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(e.write("badfed-e.yaml", kEdgeE + R"(federation:
  xmpp:
    security: maybe
    deny: ["bad domain"]
    dns_cache_ttl: 2h
    sekurity: none
)"),
                                         &diag));
        CHECK(error_for(diag, "federation.xmpp.security").line == 14);
        CHECK(error_for(diag, "federation.xmpp.deny[0]").line == 15);
        CHECK(error_for(diag, "federation.xmpp.dns_cache_ttl").line == 16);
        CHECK(error_for(diag, "federation.xmpp.sekurity").message.find("did you mean \"security\"") !=
              std::string::npos);
    }
    {
        // Its listener conflicts like any other.
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(
            e.write("fedport-e.yaml", kEdgeE + "federation:\n  xmpp: {listen: \"127.0.0.1:8443\"}\n"),
            &diag));
        CHECK(error_for(diag, "federation.xmpp.listen").line == 13);
    }
}

TEST_CASE("edge-c: federation.xmpp needs IM&P nodes", "[config][edge_c][federation]") {
    auto& e = env();
    {
        auto cfg = load_edge_c_config(e.write("fed-c.yaml", kEdgeC + R"(federation:
  xmpp:
    listen: 127.0.19.4
    imp_nodes: [127.0.1.3, "127.0.1.4:15269"]
)"));
        REQUIRE(cfg);
        REQUIRE(cfg->federation.xmpp);
        const auto& fx = *cfg->federation.xmpp;
        CHECK(fx.listen.port == 5269);
        REQUIRE(fx.imp_nodes.size() == 2);
        CHECK(fx.imp_nodes[0].port == 5269);
        CHECK(fx.imp_nodes[1].port == 15269);
        CHECK(fx.imp_security == FederationSecurity::Required);
        CHECK_FALSE(fx.imp_tls_verify);
    }
    {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_c_config(
            e.write("badfed-c.yaml", kEdgeC + "federation:\n  xmpp:\n    listen: 127.0.19.4\n"), &diag));
        CHECK(error_for(diag, "federation.xmpp.imp_nodes").message == "missing required key");
    }
    {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_c_config(
            e.write("badfed2-c.yaml", kEdgeC + "federation:\n  xmpp:\n    imp_nodes: [imp1.example.com]\n"),
            &diag));
        CHECK(error_for(diag, "federation.xmpp.imp_nodes[0]").line == 20);
    }
}

TEST_CASE("edge-e: federation.sip keys, defaults and errors", "[config][edge_e][federation]") {
    auto& e = env();
    {
        auto cfg = load_edge_e_config(e.write("sipfed-e.yaml", kEdgeE + R"(federation:
  sip:
    local_domains: [Example.com]
    deny: ["*.denied.test"]
    dns_servers: ["127.0.0.1:5353"]
    tls_verify: false
)"));
        REQUIRE(cfg);
        REQUIRE(cfg->federation.sip);
        CHECK_FALSE(cfg->federation.xmpp);
        const auto& fs = *cfg->federation.sip;
        CHECK(fs.listen.port == 5062); // its own port: never the MRA SIP listener's 5061
        CHECK(fs.local_domains == std::vector<std::string>{"example.com"});
        CHECK(fs.deny == std::vector<std::string>{"*.denied.test"});
        REQUIRE(fs.dns_servers.size() == 1);
        CHECK(fs.dns_servers[0].port == 5353);
        CHECK_FALSE(fs.tls_verify);
        CHECK_FALSE(fs.verify_client); // most partners present no client certificate
        CHECK(fs.connect_timeout == 10s);
        CHECK(fs.max_message_size == 64 * 1024);
        CHECK_FALSE(fs.record_route); // the listener's address, when it is an IP
    }
    {
        // The public name partners reach the listener by; the port defaults to the listener's.
        auto cfg = load_edge_e_config(e.write("sipfedrr-e.yaml", kEdgeE + R"(federation:
  sip:
    listen: "*:5070"
    record_route: sip-fed.example.com
    verify_client: true
)"));
        REQUIRE(cfg);
        CHECK(cfg->federation.sip->verify_client);
        const auto& rr = cfg->federation.sip->record_route;
        REQUIRE(rr);
        CHECK(rr->host == "sip-fed.example.com");
        CHECK(rr->port == 5070);
    }
    {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(e.write("badsipfed-e.yaml", kEdgeE + R"(federation:
  sip:
    allow: ["bad domain"]
    max_message_size: 1
    tls_verfy: true
)"),
                                         &diag));
        CHECK(error_for(diag, "federation.sip.allow[0]").line == 14);
        CHECK(error_for(diag, "federation.sip.max_message_size").line == 15);
        CHECK(error_for(diag, "federation.sip.tls_verfy").message.find("did you mean \"tls_verify\"") !=
              std::string::npos);
    }
    {
        // Sharing the MRA SIP listener's address is refused like any other listener conflict.
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_e_config(
            e.write("sipfedport-e.yaml", kEdgeE + "federation:\n  sip: {listen: \"127.0.0.1:8443\"}\n"),
            &diag));
        CHECK(error_for(diag, "federation.sip.listen").line == 13);
    }
}

TEST_CASE("edge-c: federation.sip needs the IM&P routing node", "[config][edge_c][federation]") {
    auto& e = env();
    {
        auto cfg = load_edge_c_config(e.write("sipfed-c.yaml", kEdgeC + R"(federation:
  sip:
    listen: 127.0.19.4
    imp_nodes: [127.0.1.3, "127.0.1.4:15060"]
)"));
        REQUIRE(cfg);
        REQUIRE(cfg->federation.sip);
        const auto& fs = *cfg->federation.sip;
        CHECK(fs.listen.port == 5062);
        REQUIRE(fs.imp_nodes.size() == 2);
        CHECK(fs.imp_nodes[0].port == 5060);
        CHECK(fs.imp_nodes[1].port == 15060);
        CHECK(fs.dial_timeout == 30s);
        CHECK_FALSE(fs.record_route);
    }
    {
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_c_config(
            e.write("badsipfed-c.yaml", kEdgeC + "federation:\n  sip:\n    listen: 127.0.19.4\n"), &diag));
        CHECK(error_for(diag, "federation.sip.imp_nodes").message == "missing required key");
    }
    {
        // edge-c's entry is an IP (IM&P reaches the inside listener by address); a name is refused.
        auto cfg = load_edge_c_config(e.write("sipfedrr-c.yaml", kEdgeC + R"(federation:
  sip:
    listen: "*:5072"
    imp_nodes: [127.0.1.3]
    record_route: 10.0.0.2
)"));
        REQUIRE(cfg);
        REQUIRE(cfg->federation.sip->record_route);
        CHECK(cfg->federation.sip->record_route->str() == "10.0.0.2:5072");
        Diagnostics diag;
        REQUIRE_FALSE(load_edge_c_config(e.write("badsipfedrr-c.yaml", kEdgeC + R"(federation:
  sip:
    imp_nodes: [127.0.1.3]
    record_route: edge-c.example.com
)"),
                                         &diag));
        CHECK(error_for(diag, "federation.sip.record_route").line > 0);
    }
}

TEST_CASE("cluster.name on both edges: default empty, a bad name points at its line", "[config][cluster]") {
    auto& e = env();
    auto c = load_edge_c_config(e.write("cluster-c.yaml", kEdgeC + "cluster: {name: emea-1}\n"));
    INFO((c ? "" : c.error().message));
    REQUIRE(c);
    CHECK(c->cluster.name == "emea-1");
    auto e0 = load_edge_e_config(e.write("cluster-e0.yaml", kEdgeE));
    REQUIRE(e0);
    CHECK(e0->cluster.name.empty());
    auto ok = load_edge_e_config(e.write("cluster-e.yaml", kEdgeE + "cluster:\n  name: emea-1\n"));
    REQUIRE(ok);
    CHECK(ok->cluster.name == "emea-1");
    Diagnostics diag;
    // A comma would split the name in the link header that carries it.
    REQUIRE_FALSE(
        load_edge_e_config(e.write("cluster-bad.yaml", kEdgeE + "cluster:\n  name: \"emea,apac\"\n"), &diag));
    auto& d = error_for(diag, "cluster.name");
    CHECK(d.line == 13);
    CHECK_THAT(d.message, Catch::Contains("invalid cluster name \"emea,apac\""));
}
