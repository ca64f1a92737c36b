#include "common/app/main.h"

#include <cstdio>
#include <exception>

#include "common/core/version.h"

namespace edgepair::app {

namespace {

int usage(const MainSpec& spec, int rc) {
    const char* n = spec.name.c_str();
    std::fprintf(rc ? stderr : stdout, "usage: %s -c FILE [--check]\n%s       %s --version\n", n,
                 spec.usage_extra.c_str(), n);
    return rc;
}

} // namespace

int main(int argc, char** argv, const MainSpec& spec) {
    const char* n = spec.name.c_str();
    std::string config_path;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "-c" || a == "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (a == "--check") {
            check = true;
        } else if (a == "--version") {
            std::printf("%s %s\n", n, kVersion);
            return 0;
        } else if (a == "-h" || a == "--help") {
            return usage(spec, 0);
        } else if (auto r = spec.option ? spec.option(a, i, argc, argv) : MainSpec::Arg{}; r.exit) {
            return *r.exit;
        } else if (!r.taken) {
            std::fprintf(stderr, "%s: unknown argument \"%s\"\n", n, a.c_str());
            return usage(spec, 2);
        }
    }
    if (config_path.empty()) return usage(spec, 2);

    config::Diagnostics diag;
    auto loaded = spec.load(config_path, diag);
    for (auto& w : diag.warnings)
        std::fprintf(stderr, "%s\n", w.str().c_str());
    if (!loaded) {
        std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
        return 1;
    }
    if (check) {
        std::printf("%s: configuration is valid\n", config_path.c_str());
        return 0;
    }
    try {
        return spec.run(config_path);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", n, e.what());
        return 1;
    }
}

} // namespace edgepair::app
