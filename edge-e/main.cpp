// edge-e: the external (DMZ) edge of an edgepair MRA pair.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>

#include "common/app/main.h"
#include "common/config/auth_db.h"
#include "common/config/edge_e_config.h"
#include "edge-e/edge_e.h"

namespace {

// --hash-password USER: reads the password from stdin and prints the auth database line.
int hash_password(const std::string& user) {
    std::string password;
    if (isatty(STDIN_FILENO)) std::fprintf(stderr, "password for %s: ", user.c_str());
    std::getline(std::cin, password);
    std::string line = edgepair::config::make_auth_line(user, password);
    if (line.empty()) {
        std::fprintf(stderr, "edge-e: invalid user name \"%s\"\n", user.c_str());
        return 2;
    }
    std::printf("%s\n", line.c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    using namespace edgepair;
    std::optional<config::EdgeEConfig> cfg;
    app::MainSpec spec;
    spec.name = "edge-e";
    spec.usage_extra =
        "       edge-e --hash-password USER   (reads the password from stdin; prints an auth DB line)\n";
    spec.option = [](std::string_view a, int& i, int argc, char** argv) {
        app::MainSpec::Arg r;
        if (a == "--hash-password" && i + 1 < argc) {
            r.taken = true;
            r.exit = hash_password(argv[++i]);
        }
        return r;
    };
    spec.load = app::load_into(cfg, config::load_edge_e_config);
    spec.run = [&cfg](const std::string& path) {
        edge_e::EdgeE edge(path, std::move(*cfg));
        return edge.run();
    };
    return app::main(argc, argv, spec);
}
