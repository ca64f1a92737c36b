#pragma once
// edge-load's command line. Parsing is separate from running so that a bad option or a refused target
// exits 2 before any thread or socket exists.
#include <cstdint>
#include <optional>
#include <string>

#include "common/core/result.h"
#include "common/net/address.h"

namespace edgepair::load {

enum class Scenario { Handshake, Http, EdgeConfig, Idle };

struct Options {
    Scenario scenario = Scenario::Http;
    std::string scenario_name;
    std::string target; // as given
    std::string host;   // without brackets
    uint16_t port = 0;
    std::string sni;
    std::string cafile;
    bool insecure = false;
    bool plain = false; // no TLS at all (plain HTTP targets, tests)
    unsigned threads = 1;
    unsigned connections = 0; // 0 = scenario default
    double rate = 0;          // arrivals per second; 0 = closed loop
    std::optional<uint64_t> requests;
    double duration_s = 60;
    std::string path = "/";
    std::string domain = "example.com";
    std::string user, password;
    bool request = false; // handshake/idle: one request on each connection
    bool json = false;
    bool progress = true;
    double timeout_s = 10;
    std::optional<int> expect_status; // unset: any status below 400 succeeds
    std::string ready_file;           // idle: touched once every connection has been tried
};

// The usage text (stdout for --help, stderr on errors).
std::string usage_text();

enum class ParseOutcome { Run, Help, Version };
// Errors are usage errors (exit 2). "not yet implemented" scenarios are errors too.
Result<ParseOutcome> parse_options(int argc, char** argv, Options& out);

// The address to dial. Refuses anything that is not loopback (127.0.0.0/8, ::1, ::ffff:127.x): edge-load
// is a load generator, and CI must never be able to point it at somebody else's server.
Result<net::SockAddr> resolve_loopback_target(const std::string& host, uint16_t port);
bool is_loopback(const net::SockAddr& a);

} // namespace edgepair::load
