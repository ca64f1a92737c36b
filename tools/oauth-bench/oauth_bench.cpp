// oauth-bench: OAuth access-token validations per CPU-second, with edge-c's own validator
// (edge-c/oauth_validator.h: RS256 JWS verify + dir/A128CBC-HS256 JWE decrypt + claims checks). A tool, not a
// timed test: docs/BENCHMARKS.md records its figures and the command.
//
//   oauth-bench --keys JWKS --issuer ISS --tokens FILE [--count N]
//
// FILE holds one access token a line (tools/fixtures/oauth_issuer.py --mint writes such a file); they are
// validated round-robin, N times in all (default 20000). Every validation must succeed: a refused token ends
// the run with its reason (a benchmark of refusals would measure something else).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "edge-c/oauth_validator.h"
#include "tools/cpu_seconds.h"

using namespace edgepair;

namespace {

using edgepair::tools::cpu_seconds;

int usage() {
    std::fprintf(stderr, "usage: oauth-bench --keys JWKS --issuer ISS --tokens FILE [--count N]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    config::OAuthClusterConfig c;
    c.name = "bench";
    std::string tokens_file;
    unsigned long count = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view a = argv[i];
        if (a == "--keys")
            c.keys_file = argv[i + 1];
        else if (a == "--issuer")
            c.issuer = argv[i + 1];
        else if (a == "--tokens")
            tokens_file = argv[i + 1];
        else if (a == "--count")
            count = std::strtoul(argv[i + 1], nullptr, 10);
        else
            return usage();
    }
    if (argc % 2 == 0 || c.keys_file.empty() || c.issuer.empty() || tokens_file.empty() || count == 0)
        return usage();
    edge_c::JwksFileKeySource src;
    auto cluster = src.load(c);
    if (!cluster) {
        std::fprintf(stderr, "oauth-bench: %s\n", cluster.error().message.c_str());
        return 1;
    }
    std::vector<edge_c::OAuthCluster> clusters;
    clusters.push_back(std::move(*cluster));
    edge_c::OAuthValidator v(std::move(clusters), 30);
    std::vector<std::string> tokens;
    std::ifstream f(tokens_file);
    for (std::string line; std::getline(f, line);)
        if (!line.empty()) tokens.push_back(line);
    if (tokens.empty()) {
        std::fprintf(stderr, "oauth-bench: no token in %s\n", tokens_file.c_str());
        return 1;
    }
    const uint64_t now = uint64_t(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    const double cpu0 = cpu_seconds();
    const auto wall0 = std::chrono::steady_clock::now();
    size_t token_bytes = 0;
    for (unsigned long i = 0; i < count; ++i) {
        const std::string& t = tokens[i % tokens.size()];
        auto r = v.validate(t, "", now);
        if (auto* why = std::get_if<edge_c::OAuthRefusal>(&r)) {
            std::fprintf(stderr, "oauth-bench: token %zu refused: %s\n", size_t(i % tokens.size()),
                         edge_c::refusal_label(*why));
            return 1;
        }
        token_bytes += t.size();
    }
    const double cpu = cpu_seconds() - cpu0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    std::printf("{\"validations\":%lu,\"tokens\":%zu,\"mean_token_bytes\":%zu,\"cpu_s\":%.3f,\"wall_s\":%.3f,"
                "\"validations_per_cpu_s\":%.0f,\"us_per_validation\":%.1f}\n",
                count, tokens.size(), token_bytes / count, cpu, wall, double(count) / cpu,
                cpu * 1e6 / double(count));
    return 0;
}
