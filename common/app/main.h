#pragma once
// main() for both edges: `-c FILE [--check]`, `--version`, `-h`, plus each edge's own arguments. The
// configuration is loaded (warnings to stderr) before anything runs, so a bad file fails at once with
// `file:line` messages and `--check` validates without starting anything.
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/config/diagnostics.h"
#include "common/core/result.h"
#include "common/obs/log.h"

namespace edgepair::app {

struct MainSpec {
    std::string name;        // "edge-c"
    std::string usage_extra; // usage lines between `-c FILE [--check]` and `--version`
    // An argument the common parser does not know, at argv[i]; it may consume more by advancing i.
    struct Arg {
        bool taken = false;
        std::optional<int> exit; // end the process now with this status
    };
    std::function<Arg(std::string_view arg, int& i, int argc, char** argv)> option;
    // Parses and validates the file, keeping the configuration for `run`.
    std::function<Result<void>(const std::string& path, config::Diagnostics& diag)> load;
    // With the loaded configuration: the process's exit status. An exception is reported and exits 1.
    std::function<int(const std::string& path)> run;
};

int main(int argc, char** argv, const MainSpec& spec);

// A MainSpec::load that keeps the configuration `load` (load_edge_x_config) returns in `out`.
template <class Config, class Load> auto load_into(std::optional<Config>& out, Load load) {
    return [&out, load](const std::string& path, config::Diagnostics& diag) -> Result<void> {
        auto cfg = load(path, &diag);
        if (!cfg) return cfg.error();
        out = std::move(*cfg);
        return {};
    };
}

// Loads a configuration for a reload; its warnings go to the log.
template <class Load> auto load_for_reload(const std::string& path, Load load) {
    config::Diagnostics diag;
    auto cfg = load(path, &diag);
    if (cfg)
        for (auto& w : diag.warnings)
            EP_WARN("config", "{}", w.str());
    return cfg;
}

// The value, or its error thrown: for a constructor's failures, which main() reports.
template <class T> T value_or_throw(Result<T> r) {
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(*r);
}

// Roles::prepare for an edge whose generation `build` makes from its configuration: the loaded and built
// generation lands in `out`, or the error says why not.
template <class Load, class Build, class Gen>
Result<void> prepare_generation(const std::string& path, Load load, Build build,
                                std::shared_ptr<const Gen>& out) {
    auto cfg = load_for_reload(path, load);
    if (!cfg) return cfg.error();
    auto g = build(std::move(*cfg));
    if (!g) return g.error();
    out = *g;
    return {};
}

} // namespace edgepair::app
