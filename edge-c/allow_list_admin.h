#pragma once
// The allow list's admin actions on edge-c (seeds/002 "Upload Rules to the HTTP Allow List", "Allow List
// Rules File Reference", "Allow List Tests File Reference"):
//   POST   /allowlist/rules   a rules CSV: its rules are added to the editable rules (?mode=replace replaces
//                             every rule imported before); 400 names each bad line and column
//   GET    /allowlist/rules   the editable rules (YAML and imported) as a rules CSV; ?automatic=1 adds the
//                             automatic ones
//   DELETE /allowlist/rules   drops every imported rule (the YAML ones stay)
//   POST   /allowlist/test    a tests CSV: one result line per test and a summary, against the allow list
//                             both edges enforce now
// Imported rules are kept in allow_list.rules_file, in the rules-CSV format, and republished to edge-e in
// the snapshot like every other editable rule.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/core/result.h"
#include "common/mra/allow_list_csv.h"
#include "common/mra/snapshot.h"

namespace edgepair::edge_c {

// The imported rules file. Missing file: no imported rules.
Result<std::vector<mra::AllowRule>> load_imported_rules(const std::string& path, const mra::CsvContext& ctx);
// The imported rules in the rules-file format (what the file holds, and what edge-c peers share).
Result<std::string> imported_rules_csv(const std::vector<mra::AllowRule>& rules);
// Written beside the target and renamed over it: a crash leaves the old file or the new one.
Result<void> save_imported_rules(const std::string& path, const std::vector<mra::AllowRule>& rules);
// Same URL, deployment, methods and match type (the description does not make a rule different).
bool same_rule(const mra::AllowRule& a, const mra::AllowRule& b);

struct AllowListAdmin {
    std::function<std::shared_ptr<const mra::Snapshot>()> snapshot; // what is enforced now (may be null)
    std::function<const std::vector<mra::AllowRule>&()> imported;
    // Checks that a snapshot with these imported rules builds; the error is the operator's (400).
    std::function<Result<void>(const std::vector<mra::AllowRule>&)> validate;
    // Persists and publishes; an error here is edge-c's (500): nothing changed.
    std::function<Result<void>(std::vector<mra::AllowRule>)> commit;
};

// Routes run on the admin (main) loop, like everything the callbacks touch.
void install_allow_list_routes(admin::Server& server, AllowListAdmin hooks);

} // namespace edgepair::edge_c
