// edge-c: the internal edge of an edgepair MRA pair.
#include <cstdio>
#include <cstring>
#include <string>

#include "common/config/edge_c_config.h"
#include "common/core/version.h"
#include "edge-c/discovery.h"
#include "edge-c/edge_c.h"

namespace {

int usage(int rc) {
    std::fprintf(rc ? stderr : stdout,
                 "usage: edge-c -c FILE [--check]\n"
                 "       edge-c -c FILE discover   (or --discover: one-shot UC discovery)\n"
                 "       edge-c --version\n");
    return rc;
}

} // namespace

int main(int argc, char** argv) {
    using namespace edgepair;
    std::string config_path;
    bool check = false;
    bool discover = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "-c" || a == "--config") && i + 1 < argc)
            config_path = argv[++i];
        else if (a == "--check")
            check = true;
        else if (a == "discover" || a == "--discover")
            discover = true;
        else if (a == "--version") {
            std::printf("edge-c %s\n", kVersion);
            return 0;
        } else if (a == "-h" || a == "--help")
            return usage(0);
        else {
            std::fprintf(stderr, "edge-c: unknown argument \"%s\"\n", a.c_str());
            return usage(2);
        }
    }
    if (config_path.empty()) return usage(2);

    config::Diagnostics diag;
    auto cfg = config::load_edge_c_config(config_path, &diag);
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
    if (discover) return edge_c::run_discover_cli(*cfg);
    try {
        edge_c::EdgeC app(config_path, std::move(*cfg));
        return app.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edge-c: %s\n", e.what());
        return 1;
    }
}
