#pragma once
// The allow-list rules file and tests file, in the formats of shared/seeds/002 "Allow List Rules File
// Reference" (Table 4) and "Allow List Tests File Reference" (Table 5):
//   rules: Url,Deployment,HttpMethods,MatchType,Description
//   tests: Url,ExpectedResult,Deployment,Description,HttpMethod
// The first line lists the parameter names; later columns may be left off a line (they are optional).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/result.h"
#include "common/mra/allow_list.h"
#include "common/mra/snapshot.h"

namespace edgepair::mra {

// What the files' Deployment columns are checked against.
struct CsvContext {
    std::vector<std::string> deployments;
    std::string default_deployment = std::string(kDefaultDeploymentName);
};
CsvContext csv_context_of(const Snapshot& s);

// Rules come back with their deployment resolved, origin Editable, and methods nullopt when HttpMethods is
// empty ("use defaults"). Errors name every bad line as "line L, column N (Name): message", one per line.
Result<std::vector<AllowRule>> import_rules_csv(std::string_view text, const CsvContext& ctx);

// The editable rules (automatic ones too when asked) in the rules-file format; import_rules_csv reads it
// back.
std::string export_rules_csv(const AllowList& list, bool include_automatic = false);

struct AllowListTest {
    std::size_t line = 0;
    std::string url_text; // as written, for reports
    RuleUrl url;
    bool expect_allow = false;
    std::string deployment; // resolved: the default deployment when the column is empty
    std::string description;
    std::string method = "GET"; // "Defaults to GET if not supplied."
};
Result<std::vector<AllowListTest>> parse_tests_csv(std::string_view text, const CsvContext& ctx);

struct TestOutcome {
    std::size_t line = 0;
    std::string url;
    std::string method;
    std::string deployment;
    std::string description;
    bool expected_allow = false;
    bool actual_allow = false;
    bool passed = false;
    std::string rule;   // the allowing rule (or the nearest miss on a block), "" when none
    std::string reason; // why it was blocked
};
std::vector<TestOutcome> run_allow_list_tests(const AllowList& list, const std::vector<AllowListTest>& tests);

// One line per test: "line 2: PASS GET https://host:443/p (deployment 'd'): expected block, got block: ..."
// followed by a "N passed, M failed" summary line.
std::string format_test_report(const std::vector<TestOutcome>& outcomes);

} // namespace edgepair::mra
