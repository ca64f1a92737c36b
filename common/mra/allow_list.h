#pragma once
// The HTTP allow list: which internal http(s)://host:port/path a remote client may reach through the pair.
// Automatic rules come from discovered nodes and cannot be deleted; editable rules come from the operator
// (admin, YAML or the rules CSV). Source: shared/seeds/002, "About the HTTP Server Allow List on
// Expressway-C", "Automatically Added Allow List Rules" (Table 2), "Edit the HTTP Allow List" (Table 3).
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/result.h"
#include "common/mra/model.h"

namespace edgepair::mra {

enum class Scheme { Http, Https };
std::string_view to_string(Scheme s);
std::uint16_t default_port(Scheme s); // 80 / 443 (Table 3, Url b.)

// The HTTP methods a rule can name. HTTP method tokens are case-sensitive (RFC 9110 9.1): a request method
// "get" is not GET and is never allowed.
enum class Method : std::uint16_t {
    Get = 1u << 0,
    Head = 1u << 1,
    Post = 1u << 2,
    Put = 1u << 3,
    Delete = 1u << 4,
    Options = 1u << 5,
    Patch = 1u << 6,
    Propfind = 1u << 7,
};
std::optional<Method> parse_method(std::string_view token); // exact, uppercase
std::string_view to_string(Method m);

class MethodSet {
  public:
    MethodSet() = default;
    MethodSet(std::initializer_list<Method> ms) {
        for (Method m : ms) {
            add(m);
        }
    }
    void add(Method m) { bits_ |= static_cast<std::uint16_t>(m); }
    bool contains(Method m) const { return (bits_ & static_cast<std::uint16_t>(m)) != 0; }
    bool empty() const { return bits_ == 0; }
    std::string to_string() const; // "GET,PUT" in enum order, the CSV form
    bool operator==(const MethodSet&) const = default;

  private:
    std::uint16_t bits_ = 0;
};

enum class MatchType { Exact, Prefix };
std::string_view to_string(MatchType m);

enum class RuleOrigin { Automatic, Editable };

// protocol://host[:port][/path] (Table 4, argument 0). host is kept lowercase; port is always explicit after
// parsing; path is empty when the URL had none.
struct RuleUrl {
    Scheme scheme = Scheme::Https;
    std::string host;
    std::uint16_t port = 443;
    std::string path;
};
Result<RuleUrl> parse_rule_url(std::string_view text);
// A DNS name, an IPv4 address or a bracketed IPv6 literal, as Table 4 allows for a rule's host.
bool is_valid_host(std::string_view host);
std::string to_string(const RuleUrl& u); // with the port always written

struct AllowRule {
    std::uint32_t id = 0; // assigned by AllowList
    RuleUrl url;
    std::string deployment; // resolved name, never empty inside an AllowList
    // nullopt: "Use defaults". The defaults are looked up at match time because "when you change the
    // default methods, all rules that you previously created with the default methods will use the new
    // defaults" (Edit the HTTP Allow List, step 2).
    std::optional<MethodSet> methods;
    MatchType match = MatchType::Prefix;
    std::string description;
    RuleOrigin origin = RuleOrigin::Editable;
    // The path segment right after url.path is a user id, and the rule allows the request only when that id
    // is the signed-in user's (UDS user resources: Jabber writes its own settings with PUT/DELETE under
    // /cucm-uds/user/<id>/, and must never write another user's). Automatic rules only; the CSV has no
    // column for it.
    bool own_user_only = false;
};

// For a rule with own_user_only: the user id `match_path` names (the segment after the rule path,
// percent-decoded); empty when there is none or it does not decode to a plain id, which the gate refuses.
std::string owner_user_of(const AllowRule& rule, std::string_view match_path);
// UDS user ids compare case-insensitively (ASCII).
bool same_user(std::string_view a, std::string_view b);

// A request as the edge sees it after common/http has normalised it: scheme and port of the connection to
// the node, canonical host, normalised path without the query, the request method as sent.
struct RequestTarget {
    Scheme scheme = Scheme::Https;
    std::string_view host;
    std::uint16_t port = 443;
    std::string_view path;
    std::string_view method;
    std::string_view deployment;
};

// Where a blocked request fell out of the match, for metrics and reports: the furthest any rule of the host
// got before it failed, so a request with only the wrong method says Method, not Host. The reason prose
// below is for people; the stage is what code and metric labels use.
enum class BlockStage : std::uint8_t {
    None,         // allowed
    Unnormalised, // the request path was not normalised (a caller bug; refused, never matched)
    Host,         // no rule names the host
    Port,         // rules for the host, none for this port
    Scheme,       // rules for the host and port, none for this scheme
    Deployment,   // rules for scheme://host:port, none in the request's deployment
    Path,         // ... none whose path covers the request path
    Method,       // ... none that allows the method
    User,         // allowed only for the signed-in user's own resources, and the path names another user
                  // (never from AllowList::match, which does not know the user: edge-c decides it)
};
inline constexpr std::size_t kBlockStageCount = std::size_t(BlockStage::User) + 1;
// The stable metric label: "none", "unnormalised", "host", "port", "scheme", "deployment", "path", "method",
// "user".
std::string_view block_stage_label(BlockStage s);

struct MatchResult {
    bool allowed = false;
    BlockStage stage = BlockStage::None; // set whenever allowed is false
    // The allowing rule (one without own_user_only when several allow); on block, the nearest miss if any
    // (for reports).
    const AllowRule* rule = nullptr;
    std::string reason; // why it was blocked, for logs; empty when allowed
};

// Immutable once built into a Snapshot; rule pointers stay valid as long as the list does.
class AllowList {
  public:
    explicit AllowList(MethodSet default_methods = MethodSet{Method::Get})
        : default_methods_(default_methods) {}

    // Rejects a rule whose deployment is empty (callers resolve the default deployment first).
    Result<std::uint32_t> add(AllowRule rule);
    // Automatic rules "cannot be deleted" (About the HTTP Server Allow List).
    Result<void> remove(std::uint32_t id);

    MatchResult match(const RequestTarget& req) const;

    const std::vector<AllowRule>& rules() const { return rules_; }
    const AllowRule* find(std::uint32_t id) const;
    MethodSet default_methods() const { return default_methods_; }
    MethodSet effective_methods(const AllowRule& r) const {
        return r.methods ? *r.methods : default_methods_;
    }

  private:
    void reindex();

    MethodSet default_methods_;
    std::vector<AllowRule> rules_;
    std::unordered_map<std::string, std::vector<std::size_t>> by_host_;
    std::uint32_t next_id_ = 1;
};

// True when `path` (a normalised request path) is inside the rule path under `match`. See the .cpp for the
// prefix semantics (segment-aware).
bool path_matches(MatchType match, std::string_view rule_path, std::string_view path);

// The rules edge-c adds for one discovered node. Table 2 defines the columns (type, protocol, ports, match
// type, path, methods), not the rows; the rows are listed in allow_list.cpp with where each comes from.
std::vector<AllowRule> automatic_rules_for(const UcNode& node, std::string_view deployment);

} // namespace edgepair::mra
