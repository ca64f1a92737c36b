// edge-e: the external (DMZ) edge of an edgepair MRA pair.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <unistd.h>

#include "common/config/auth_db.h"
#include "common/config/edge_e_config.h"
#include "common/core/version.h"
#include "edge-e/edge_e.h"

namespace {

int usage(int rc) {
    std::fprintf(
        rc ? stderr : stdout,
        "usage: edge-e -c FILE [--check]\n"
        "       edge-e --hash-password USER   (reads the password from stdin; prints an auth DB line)\n"
        "       edge-e --version\n");
    return rc;
}

} // namespace

int main(int argc, char** argv) {
    using namespace edgepair;
    std::string config_path;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "-c" || a == "--config") && i + 1 < argc)
            config_path = argv[++i];
        else if (a == "--check")
            check = true;
        else if (a == "--version") {
            std::printf("edge-e %s\n", kVersion);
            return 0;
        } else if (a == "--hash-password" && i + 1 < argc) {
            std::string user = argv[++i], password;
            if (isatty(STDIN_FILENO)) std::fprintf(stderr, "password for %s: ", user.c_str());
            std::getline(std::cin, password);
            std::string line = config::make_auth_line(user, password);
            if (line.empty()) {
                std::fprintf(stderr, "edge-e: invalid user name \"%s\"\n", user.c_str());
                return 2;
            }
            std::printf("%s\n", line.c_str());
            return 0;
        } else if (a == "-h" || a == "--help")
            return usage(0);
        else {
            std::fprintf(stderr, "edge-e: unknown argument \"%s\"\n", a.c_str());
            return usage(2);
        }
    }
    if (config_path.empty()) return usage(2);

    config::Diagnostics diag;
    auto cfg = config::load_edge_e_config(config_path, &diag);
    for (auto& w : diag.warnings)
        std::fprintf(stderr, "%s\n", w.str().c_str());
    if (!cfg) {
        std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
        return 1;
    }
    if (check) {
        std::printf("%s: configuration is valid\n", config_path.c_str());
        return 0;
    }
    try {
        edge_e::EdgeE app(config_path, std::move(*cfg));
        return app.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edge-e: %s\n", e.what());
        return 1;
    }
}
