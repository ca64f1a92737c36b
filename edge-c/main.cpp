// edge-c: the internal edge of an edgepair MRA pair.
#include <optional>
#include <string>

#include "common/app/main.h"
#include "common/config/edge_c_config.h"
#include "edge-c/discovery.h"
#include "edge-c/edge_c.h"

int main(int argc, char** argv) {
    using namespace edgepair;
    std::optional<config::EdgeCConfig> cfg;
    bool discover = false;
    app::MainSpec spec;
    spec.name = "edge-c";
    spec.usage_extra = "       edge-c -c FILE discover   (or --discover: one-shot UC discovery)\n";
    spec.option = [&discover](std::string_view a, int&, int, char**) {
        app::MainSpec::Arg r;
        r.taken = a == "discover" || a == "--discover";
        discover = discover || r.taken;
        return r;
    };
    spec.load = app::load_into(cfg, config::load_edge_c_config);
    spec.run = [&](const std::string& path) {
        if (discover) return edge_c::run_discover_cli(*cfg);
        edge_c::EdgeC edge(path, std::move(*cfg));
        return edge.run();
    };
    return app::main(argc, argv, spec);
}
