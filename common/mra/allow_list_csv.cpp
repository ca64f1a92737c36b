#include "common/mra/allow_list_csv.h"

#include <algorithm>
#include <array>

#include "common/mra/csv.h"

namespace edgepair::mra {

namespace {

constexpr std::array<std::string_view, 5> kRuleColumns{"Url", "Deployment", "HttpMethods", "MatchType",
                                                       "Description"};
constexpr std::array<std::string_view, 5> kTestColumns{"Url", "ExpectedResult", "Deployment", "Description",
                                                       "HttpMethod"};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return out;
}

// RFC 9110 tchar, so a test's method is a real token even when the matcher does not know it.
bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                        std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        if (!ok) {
            return false;
        }
    }
    return true;
}

class Errors {
  public:
    void add(std::size_t line, std::size_t col, std::string_view name, std::string_view msg) {
        add_line(line,
                 ", column " + std::to_string(col + 1) + " (" + std::string(name) + "): " + std::string(msg));
    }
    void add_line(std::size_t line, std::string_view rest) {
        if (!msg_.empty()) {
            msg_.push_back('\n');
        }
        msg_ += "line " + std::to_string(line) + std::string(rest);
        ++count_;
    }
    bool empty() const { return count_ == 0; }
    Error error() const { return make_error(msg_); }

  private:
    std::string msg_;
    std::size_t count_ = 0;
};

template <std::size_t N>
bool check_header(const CsvRecord& rec, const std::array<std::string_view, N>& names, Errors& errs) {
    bool ok = rec.fields.size() == N;
    for (std::size_t i = 0; ok && i < N; ++i) {
        ok = iequals(trim(rec.fields[i]), names[i]);
    }
    if (!ok) {
        std::string expected;
        for (std::string_view n : names) {
            expected += expected.empty() ? "" : ",";
            expected += n;
        }
        errs.add_line(rec.line, ": the first line must list the parameter names: " + expected);
    }
    return ok;
}

template <std::size_t N>
bool check_width(const CsvRecord& rec, const std::array<std::string_view, N>& names, Errors& errs) {
    if (rec.fields.size() > N) {
        errs.add_line(rec.line, ": " + std::to_string(rec.fields.size()) + " fields, at most " +
                                    std::to_string(N) + " (" + std::string(names.back()) +
                                    " is the last; quote values with commas, e.g. \"GET,PUT\")");
        return false;
    }
    return true;
}

std::string_view field(const CsvRecord& rec, std::size_t i) {
    return i < rec.fields.size() ? trim(rec.fields[i]) : std::string_view{};
}

bool known_deployment(const CsvContext& ctx, std::string_view name) {
    return std::find(ctx.deployments.begin(), ctx.deployments.end(), name) != ctx.deployments.end();
}

} // namespace

CsvContext csv_context_of(const Snapshot& s) {
    CsvContext ctx;
    ctx.default_deployment = s.default_deployment;
    for (const Deployment& d : s.deployments) {
        ctx.deployments.push_back(d.name);
    }
    return ctx;
}

Result<std::vector<AllowRule>> import_rules_csv(std::string_view text, const CsvContext& ctx) {
    auto recs = parse_csv(text);
    if (!recs) {
        return recs.error();
    }
    Errors errs;
    if (recs->empty()) {
        return make_error("line 1: the rules file is empty (it needs the header line)");
    }
    if (!check_header(recs->front(), kRuleColumns, errs)) {
        return errs.error();
    }
    std::vector<AllowRule> out;
    for (std::size_t i = 1; i < recs->size(); ++i) {
        const CsvRecord& rec = (*recs)[i];
        if (!check_width(rec, kRuleColumns, errs)) {
            continue;
        }
        AllowRule r;
        bool ok = true;
        auto bad = [&](std::size_t col, std::string_view msg) {
            errs.add(rec.line, col, kRuleColumns[col], msg);
            ok = false;
        };

        if (std::string_view url = field(rec, 0); url.empty()) {
            bad(0, "a URL is required");
        } else if (auto u = parse_rule_url(url); !u) {
            bad(0, u.error().message);
        } else {
            r.url = std::move(*u);
        }

        // "Required when you have more than one deployment, otherwise supply an empty argument." (Table 4)
        if (std::string_view dep = field(rec, 1); dep.empty()) {
            if (ctx.deployments.size() > 1) {
                bad(1, "a deployment is required when there is more than one deployment");
            }
            r.deployment = ctx.default_deployment;
        } else if (!known_deployment(ctx, dep)) {
            bad(1, "unknown deployment '" + std::string(dep) + "'");
        } else {
            r.deployment = std::string(dep);
        }

        // "Comma-delimited list of HTTP methods, optionally in double-quotes" (Table 4). Empty: the defaults.
        if (std::string_view methods = field(rec, 2); !methods.empty()) {
            MethodSet set;
            std::size_t start = 0;
            while (start <= methods.size()) {
                std::size_t comma = methods.find(',', start);
                if (comma == std::string_view::npos) {
                    comma = methods.size();
                }
                const std::string name = to_upper(trim(methods.substr(start, comma - start)));
                if (auto m = parse_method(name)) {
                    set.add(*m);
                } else {
                    bad(2, name.empty() ? std::string("empty method in the list")
                                        : "unknown HTTP method '" + name + "'");
                    break;
                }
                start = comma + 1;
            }
            r.methods = set;
        }

        // "exact or prefix. Default is prefix" (Table 4)
        if (std::string_view mt = field(rec, 3); mt.empty() || iequals(mt, "prefix")) {
            r.match = MatchType::Prefix;
        } else if (iequals(mt, "exact")) {
            r.match = MatchType::Exact;
        } else {
            bad(3, "match type must be exact or prefix");
        }

        r.description = std::string(field(rec, 4));
        r.origin = RuleOrigin::Editable;
        if (ok) {
            out.push_back(std::move(r));
        }
    }
    if (!errs.empty()) {
        return errs.error();
    }
    return out;
}

std::string export_rules_csv(const AllowList& list, bool include_automatic) {
    std::string out = "Url,Deployment,HttpMethods,MatchType,Description\r\n";
    for (const AllowRule& r : list.rules()) {
        if (r.origin == RuleOrigin::Automatic && !include_automatic) {
            continue;
        }
        out += csv_field(to_string(r.url));
        out += ',';
        out += csv_field(r.deployment);
        out += ',';
        out += r.methods ? csv_field(r.methods->to_string()) : std::string();
        out += ',';
        out += to_string(r.match);
        out += ',';
        out += csv_field(r.description);
        out += "\r\n";
    }
    return out;
}

Result<std::vector<AllowListTest>> parse_tests_csv(std::string_view text, const CsvContext& ctx) {
    auto recs = parse_csv(text);
    if (!recs) {
        return recs.error();
    }
    Errors errs;
    if (recs->empty()) {
        return make_error("line 1: the tests file is empty (it needs the header line)");
    }
    if (!check_header(recs->front(), kTestColumns, errs)) {
        return errs.error();
    }
    std::vector<AllowListTest> out;
    for (std::size_t i = 1; i < recs->size(); ++i) {
        const CsvRecord& rec = (*recs)[i];
        if (!check_width(rec, kTestColumns, errs)) {
            continue;
        }
        AllowListTest t;
        t.line = rec.line;
        bool ok = true;
        auto bad = [&](std::size_t col, std::string_view msg) {
            errs.add(rec.line, col, kTestColumns[col], msg);
            ok = false;
        };

        t.url_text = std::string(field(rec, 0));
        if (t.url_text.empty()) {
            bad(0, "a URL is required");
        } else if (auto u = parse_rule_url(t.url_text); !u) {
            bad(0, u.error().message);
        } else {
            t.url = std::move(*u);
        }

        if (std::string_view exp = field(rec, 1); iequals(exp, "allow")) {
            t.expect_allow = true;
        } else if (iequals(exp, "block")) {
            t.expect_allow = false;
        } else {
            bad(1, "expected result must be allow or block");
        }

        // "If you omit this argument, the test will use the default deployment." (Table 5)
        if (std::string_view dep = field(rec, 2); dep.empty()) {
            t.deployment = ctx.default_deployment;
        } else if (!known_deployment(ctx, dep)) {
            bad(2, "unknown deployment '" + std::string(dep) + "'");
        } else {
            t.deployment = std::string(dep);
        }

        t.description = std::string(field(rec, 3));

        // "Specify one HTTP method to test eg. PUT. Defaults to GET if not supplied." (Table 5) An unknown
        // method is a fair test (it must be blocked), so only the token syntax is checked.
        if (std::string_view m = field(rec, 4); !m.empty()) {
            if (!is_token(m)) {
                bad(4, "HTTP method must be a single token, e.g. PUT");
            } else {
                t.method = to_upper(m);
            }
        }
        if (ok) {
            out.push_back(std::move(t));
        }
    }
    if (!errs.empty()) {
        return errs.error();
    }
    return out;
}

std::vector<TestOutcome> run_allow_list_tests(const AllowList& list,
                                              const std::vector<AllowListTest>& tests) {
    std::vector<TestOutcome> out;
    out.reserve(tests.size());
    for (const AllowListTest& t : tests) {
        TestOutcome o;
        o.line = t.line;
        o.url = t.url_text;
        o.method = t.method;
        o.deployment = t.deployment;
        o.description = t.description;
        o.expected_allow = t.expect_allow;
        RequestTarget req;
        req.scheme = t.url.scheme;
        req.host = t.url.host;
        req.port = t.url.port;
        req.path = t.url.path.empty() ? std::string_view{"/"} : std::string_view{t.url.path};
        req.method = t.method;
        req.deployment = t.deployment;
        const MatchResult m = list.match(req);
        o.actual_allow = m.allowed;
        o.passed = o.actual_allow == o.expected_allow;
        if (m.rule != nullptr) {
            o.rule =
                to_string(m.rule->url) + " (" + std::string(to_string(m.rule->match)) + ", " +
                list.effective_methods(*m.rule).to_string() + ", deployment '" + m.rule->deployment + "'" +
                (m.rule->description.empty() ? std::string() : ", \"" + m.rule->description + "\"") + ")";
        }
        o.reason = m.reason;
        out.push_back(std::move(o));
    }
    return out;
}

std::string format_test_report(const std::vector<TestOutcome>& outcomes) {
    std::string out;
    std::size_t passed = 0;
    for (const TestOutcome& o : outcomes) {
        passed += o.passed ? 1 : 0;
        out += "line " + std::to_string(o.line) + ": " + (o.passed ? "PASS " : "FAIL ") + o.method + " " +
               o.url + " (deployment '" + o.deployment + "'): expected " +
               (o.expected_allow ? "allow" : "block") + ", got " + (o.actual_allow ? "allow" : "block");
        if (o.actual_allow) {
            out += " by rule " + o.rule;
        } else {
            out += ": " + o.reason;
            if (!o.rule.empty()) {
                out += "; nearest rule " + o.rule;
            }
        }
        if (!o.description.empty()) {
            out += " [" + o.description + "]";
        }
        out += "\n";
    }
    out += std::to_string(passed) + " passed, " + std::to_string(outcomes.size() - passed) + " failed\n";
    return out;
}

} // namespace edgepair::mra
