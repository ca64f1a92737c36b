// libFuzzer target: arbitrary bytes through the CSV reader, the rules-file import, the tests-file parser and,
// for whatever parses, export/re-import and the test runner. Invariants checked beyond "no crash": every
// imported rule round-trips through export_rules_csv, and a rule list built from the input answers every
// parsed test without touching freed memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/mra/allow_list_csv.h"
#include "common/mra/csv.h"

using namespace edgepair::mra;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    if (auto recs = parse_csv(text); recs.ok()) {
        for (const CsvRecord& r : *recs) {
            for (const std::string& f : r.fields) {
                (void)parse_rule_url(f);
                // Every field written back must read back as itself.
                auto back = parse_csv(csv_field(f) + "\n");
                if (!back.ok() || back->empty() || back->front().fields.size() != 1 ||
                    back->front().fields[0] != f) {
                    // A field of only blanks is the one value a one-field line cannot carry (blank line).
                    if (!(back.ok() && back->empty() && f.find_first_not_of(" \t") == std::string::npos)) {
                        std::abort();
                    }
                }
            }
        }
    }

    CsvContext ctx;
    ctx.default_deployment = "default";
    ctx.deployments = {"default", "b"};
    auto rules = import_rules_csv(text, ctx);
    AllowList list(MethodSet{Method::Get});
    if (rules.ok()) {
        for (const AllowRule& r : *rules) {
            if (!list.add(r).ok()) {
                std::abort(); // import resolves deployments and hosts, so add must accept it
            }
        }
        auto again = import_rules_csv(export_rules_csv(list), ctx);
        if (!again.ok() || again->size() != rules->size()) {
            std::abort();
        }
    }

    // The same bytes as a tests file (header swapped so more inputs get past it).
    std::string as_tests(text);
    if (as_tests.rfind("Url,Deployment,HttpMethods,MatchType,Description", 0) == 0) {
        as_tests.replace(0, 48, "Url,ExpectedResult,Deployment,Description,HttpMethod");
    }
    if (auto tests = parse_tests_csv(as_tests, ctx); tests.ok()) {
        auto out = run_allow_list_tests(list, *tests);
        (void)format_test_report(out);
    }
    return 0;
}
