#include "edge-c/allow_list_admin.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <unistd.h>

#include "common/obs/log.h"

namespace edgepair::edge_c {

Result<std::vector<mra::AllowRule>> load_imported_rules(const std::string& path, const mra::CsvContext& ctx) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        if (errno == ENOENT) return std::vector<mra::AllowRule>{};
        return make_error(fmt::format("{}: {}", path, std::strerror(errno)));
    }
    std::stringstream ss;
    ss << f.rdbuf();
    auto rules = mra::import_rules_csv(ss.str(), ctx);
    if (!rules) return make_error(fmt::format("{}: {}", path, rules.error().message));
    return rules;
}

Result<std::string> imported_rules_csv(const std::vector<mra::AllowRule>& rules) {
    // export_rules_csv writes an AllowList; one built from the imported rules alone writes exactly them.
    mra::AllowList list;
    for (const auto& r : rules)
        if (auto added = list.add(r); !added)
            return make_error("rule " + mra::to_string(r.url) + ": " + added.error().message);
    return mra::export_rules_csv(list);
}

Result<void> save_imported_rules(const std::string& path, const std::vector<mra::AllowRule>& rules) {
    auto csv = imported_rules_csv(rules);
    if (!csv) return csv.error();
    const std::string& text = *csv;
    std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    {
        std::ofstream f(tmp, std::ios::trunc | std::ios::binary);
        if (!f) return make_error(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
        f << text;
        f.flush();
        if (!f) {
            std::remove(tmp.c_str());
            return make_error("cannot write " + tmp);
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        std::remove(tmp.c_str());
        return make_error(fmt::format("cannot replace {}: {}", path, std::strerror(e)));
    }
    return {};
}

bool same_rule(const mra::AllowRule& a, const mra::AllowRule& b) {
    return a.url.scheme == b.url.scheme && a.url.host == b.url.host && a.url.port == b.url.port &&
           a.url.path == b.url.path && a.deployment == b.deployment && a.methods == b.methods &&
           a.match == b.match;
}

namespace {

bool query_flag(const std::string& query, std::string_view key, std::string_view value) {
    std::string want = std::string(key) + "=" + std::string(value);
    size_t i = 0;
    while (i <= query.size()) {
        size_t j = query.find('&', i);
        if (j == std::string::npos) j = query.size();
        if (query.compare(i, j - i, want) == 0) return true;
        i = j + 1;
    }
    return false;
}

admin::Response csv(int status, std::string body) {
    return admin::Response{status, "text/csv; charset=utf-8", std::move(body)};
}

admin::Response import(const AllowListAdmin& h, const admin::Request& r) {
    auto snap = h.snapshot();
    if (!snap) return admin::text(503, "no valid MRA configuration yet: rules cannot be checked\n");
    auto rules = mra::import_rules_csv(r.body, mra::csv_context_of(*snap));
    if (!rules) return admin::text(400, rules.error().message + "\n");
    const bool replace = query_flag(r.query, "mode", "replace");
    std::vector<mra::AllowRule> next = replace ? std::vector<mra::AllowRule>{} : h.imported();
    size_t added = 0, present = 0;
    for (auto& rule : *rules) {
        bool dup = false;
        for (const auto& have : next)
            dup = dup || same_rule(have, rule);
        for (const auto& have : snap->allow_list.rules())
            dup = dup || (!replace && have.origin == mra::RuleOrigin::Editable && same_rule(have, rule));
        if (dup) {
            ++present;
            continue;
        }
        next.push_back(std::move(rule));
        ++added;
    }
    if (auto v = h.validate(next); !v) return admin::text(400, v.error().message + "\n");
    size_t total = next.size();
    if (auto c = h.commit(std::move(next)); !c) {
        EP_ERROR("allowlist", "rules import not applied: {}", c.error().message);
        return admin::text(500, "not applied: " + c.error().message + "\n");
    }
    EP_INFO("allowlist", "rules import: {} added, {} already present, {} imported rules in all{}", added,
            present, total, replace ? " (replaced)" : "");
    return admin::text(200, fmt::format("imported {} rules ({} already present); {} imported rules in all\n",
                                        added, present, total));
}

} // namespace

void install_allow_list_routes(admin::Server& server, AllowListAdmin hooks) {
    auto h = std::make_shared<AllowListAdmin>(std::move(hooks));
    server.route("/allowlist/rules", [h](const admin::Request& r) -> admin::Response {
        if (r.method == "POST") return import(*h, r);
        if (r.method == "GET" || r.method == "HEAD") {
            auto snap = h->snapshot();
            if (!snap) return admin::text(503, "no valid MRA configuration yet\n");
            return csv(200, mra::export_rules_csv(snap->allow_list, query_flag(r.query, "automatic", "1")));
        }
        if (r.method == "DELETE") {
            size_t n = h->imported().size();
            if (auto c = h->commit({}); !c)
                return admin::text(500, "not applied: " + c.error().message + "\n");
            EP_INFO("allowlist", "{} imported rules deleted", n);
            return admin::text(200, fmt::format("deleted {} imported rules\n", n));
        }
        return admin::text(405, "use GET, POST or DELETE\n");
    });
    server.route("/allowlist/test", [h](const admin::Request& r) -> admin::Response {
        if (r.method != "POST") return admin::text(405, "use POST with a tests CSV\n");
        auto snap = h->snapshot();
        if (!snap) return admin::text(503, "no valid MRA configuration yet\n");
        auto tests = mra::parse_tests_csv(r.body, mra::csv_context_of(*snap));
        if (!tests) return admin::text(400, tests.error().message + "\n");
        return admin::text(200, mra::format_test_report(mra::run_allow_list_tests(snap->allow_list, *tests)));
    });
}

} // namespace edgepair::edge_c
