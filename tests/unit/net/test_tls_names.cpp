#include <catch2/catch.hpp>

#include "common/net/tls_context.h"
#include "common/net/x509_check.h"

using namespace edgepair::net;

TEST_CASE("DNS SAN matching follows RFC 6125: one left-most wildcard label, no CN", "[x509]") {
    CHECK(dns_name_matches("expe1.example.com", "EXPE1.Example.com."));
    CHECK(dns_name_matches("*.example.org", "jabber.example.org"));
    CHECK_FALSE(dns_name_matches("*.example.org", "example.org"));
    CHECK_FALSE(dns_name_matches("*.example.org", "a.b.example.org"));
    CHECK_FALSE(dns_name_matches("*.com", "example.com"));
    CHECK_FALSE(dns_name_matches("ex*.example.com", "expe1.example.com"));
    CHECK_FALSE(dns_name_matches("*.0.0.1", "127.0.0.1"));

    CertInfo info;
    info.dns_sans = {"expe1.example.com", "*.example.org"};
    info.ip_sans = {"127.0.0.1", "::1"};
    CHECK(san_matches(info, "127.0.0.1"));
    CHECK(san_matches(info, "0:0:0:0:0:0:0:1"));
    CHECK_FALSE(san_matches(info, "127.0.0.2"));
    info.subject_cn = "cn-only.example.com";
    CHECK_FALSE(san_matches(info, "cn-only.example.com"));
}

TEST_CASE("usage checks name the missing SAN, EKU or expiry", "[x509]") {
    CertInfo info;
    CHECK(check_usage(info, Eku::ServerAuth) == "certificate has no subjectAltName");
    info.dns_sans = {"expc1.example.com"};
    CHECK(check_usage(info, Eku::ClientAuth) == "certificate has no extendedKeyUsage");
    info.has_eku = true;
    info.server_auth = true;
    CHECK(check_usage(info, Eku::ClientAuth) == "certificate lacks the clientAuth extended key usage");
    info.client_auth = true;
    CHECK(check_usage(info, Eku::ClientAuth, "expc1.example.com").empty());
    CHECK(check_usage(info, Eku::ClientAuth, "other.example.com").find("does not contain") !=
          std::string::npos);
    info.not_after_days = -1;
    CHECK(check_usage(info, Eku::ServerAuth) == "certificate has expired");
}

TEST_CASE("SNI store: exact names win over wildcards, unknown names fall back to the default", "[sni]") {
    SniStore s;
    s.add("*.example.org", 1);
    s.add("collab-edge.example.org", 2);
    s.add("Example.COM", 3);
    CHECK(s.find("collab-edge.example.org") == 2);
    CHECK(s.find("jabber.example.org") == 1);
    CHECK(s.find("example.com.") == 3);
    CHECK(s.find("example.org") == -1);
    CHECK(s.find("x.y.example.org") == -1);
    CHECK(s.find("") == -1);
}
