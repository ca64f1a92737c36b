// The edge-e link authentication database: format, verification, diagnostics.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "common/config/auth_db.h"

using namespace edgepair::config;

TEST_CASE("make_auth_line produces a line that verifies", "[config][auth_db]") {
    auto line = make_auth_line("edgepair-link", "s3cret", kAuthMinIterations);
    REQUIRE_FALSE(line.empty());
    CHECK_THAT(line, Catch::StartsWith("edgepair-link:pbkdf2-sha256:1000:"));
    auto db = parse_auth_db(line + "\n", "users.txt");
    REQUIRE(db);
    REQUIRE(db->users().size() == 1);
    CHECK(db->users()[0].salt.size() == 16);
    CHECK(db->users()[0].hash.size() == 32);
    CHECK(db->verify("edgepair-link", "s3cret"));
    CHECK_FALSE(db->verify("edgepair-link", "s3cret "));
    CHECK_FALSE(db->verify("edgepair-link", ""));
    CHECK_FALSE(db->verify("someone-else", "s3cret"));

    // Fresh salt each time: the same password never gives the same line.
    CHECK(make_auth_line("edgepair-link", "s3cret", kAuthMinIterations) != line);
}

TEST_CASE("make_auth_line refuses bad input", "[config][auth_db]") {
    CHECK(make_auth_line("bad:name", "x").empty());
    CHECK(make_auth_line("", "x").empty());
    CHECK(make_auth_line("ok", "x", 10).empty());
}

TEST_CASE("matches an independent PBKDF2-HMAC-SHA256 implementation", "[config][auth_db]") {
    // Computed with Python's hashlib.pbkdf2_hmac("sha256", b"Password", b"NaClNaCl", 80000, 32).
    std::string line = "u:pbkdf2-sha256:80000:4e61436c4e61436c:"
                       "43d5f94d89bb00fa370edf06296bcf4987aa45f94d1204256e070ee1a032063a";
    auto db = parse_auth_db(line, "v.txt");
    REQUIRE(db);
    CHECK(db->verify("u", "Password"));
    CHECK_FALSE(db->verify("u", "password"));
}

TEST_CASE("the demo database verifies the demo password", "[config][auth_db]") {
    auto db = load_auth_db(std::string(EP_SOURCE_DIR) + "/conf/link-users.txt");
    INFO((db ? std::string() : db.error().message));
    REQUIRE(db);
    CHECK(db->verify("edgepair-link", "demo-link-secret"));
    CHECK_FALSE(db->verify("edgepair-link", "wrong"));

    std::ifstream in(std::string(EP_SOURCE_DIR) + "/conf/link-password.txt");
    std::string pw;
    std::getline(in, pw);
    CHECK(db->verify("edgepair-link", pw));
}

TEST_CASE("malformed lines are all reported with line numbers", "[config][auth_db]") {
    auto good = make_auth_line("alice", "pw", kAuthMinIterations);
    std::string text = "# comment\n" // 1
                       "\n"          // 2
                       + good +
                       "\n"                                                                 // 3
                       "bob:pbkdf2-sha256:1000:00112233\n"                                  // 4: 4 fields
                       "carol:md5:1000:0011223344556677:00112233445566778899aabbccddeeff\n" // 5: scheme
                       "dave:pbkdf2-sha256:12:0011223344556677:00112233445566778899aabbccddeeff\n"   // 6
                       "erin:pbkdf2-sha256:1000:zz11223344556677:00112233445566778899aabbccddeeff\n" // 7
                       + good +
                       "\n" // 8: duplicate
                       "b@d name:pbkdf2-sha256:1000:0011223344556677:00112233445566778899aabbccddeeff\n"; // 9
    std::vector<Diagnostic> diag;
    auto db = parse_auth_db(text, "link-users.txt", &diag);
    REQUIRE_FALSE(db);
    REQUIRE(diag.size() == 6);
    CHECK(diag[0].line == 4);
    CHECK_THAT(diag[0].message, Catch::Contains("4 fields"));
    CHECK(diag[1].line == 5);
    CHECK_THAT(diag[1].message, Catch::Contains("unsupported scheme"));
    CHECK(diag[2].line == 6);
    CHECK_THAT(diag[2].message, Catch::Contains("iterations"));
    CHECK(diag[3].line == 7);
    CHECK_THAT(diag[3].message, Catch::Contains("salt"));
    CHECK(diag[4].str() == "link-users.txt:8: duplicate user \"alice\" (first on line 3)");
    CHECK(diag[5].line == 9);
    CHECK_THAT(db.error().message, Catch::Contains("link-users.txt:4: "));
    CHECK_THAT(db.error().message, Catch::Contains("\nlink-users.txt:9: "));
}

TEST_CASE("comments, blank lines, CRLF and an empty file", "[config][auth_db]") {
    auto good = make_auth_line("alice", "pw", kAuthMinIterations);
    auto db = parse_auth_db("  # indented comment\r\n\r\n" + good + "\r\n", "u.txt");
    REQUIRE(db);
    REQUIRE(db->users().size() == 1);
    CHECK(db->users()[0].line == 3);
    CHECK(db->verify("alice", "pw"));

    auto empty = parse_auth_db("", "u.txt");
    REQUIRE(empty);
    CHECK(empty->users().empty());
}

TEST_CASE("missing database file", "[config][auth_db]") {
    std::vector<Diagnostic> diag;
    auto db = load_auth_db("/nonexistent/link-users.txt", &diag);
    REQUIRE_FALSE(db);
    REQUIRE(diag.size() == 1);
    CHECK_THAT(diag[0].message, Catch::Contains("No such file or directory"));
}
