#pragma once
// A thin reader over yaml-cpp that knows the file name and the key path of every node, so every problem
// becomes `file:line: key.path: message`. Modelled on h2o's configurator (declared keys per mapping,
// unknown keys rejected) and HAProxy's habit of collecting every alert before giving up.
//
// Getters never throw: on a problem they record an error in the shared Diagnostics and return nullopt,
// leaving the caller's default in place so parsing can go on and find the next problem.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/config/diagnostics.h"
#include "common/config/types.h"

namespace edgepair::config {

template <class E> struct EnumName {
    std::string_view name;
    E value;
};

struct AddressRules {
    bool allow_hostname = false;          // listeners need literal IPs; peers may be names
    bool allow_any = false;               // "*" as the host
    std::optional<uint16_t> default_port; // when set, the ":port" part may be left out
};

// Shared state of one file's parse.
class Reader {
  public:
    Reader(std::string file, Diagnostics& diag, SourceMap& source);
    const std::string& file() const { return file_; }
    const std::string& dir() const { return source_.dir; }
    Diagnostics& diag() { return diag_; }
    SourceMap& source() { return source_; }

  private:
    std::string file_;
    Diagnostics& diag_;
    SourceMap& source_;
};

class Map;

class Node {
  public:
    Node(Reader& r, YAML::Node n, std::string path, int key_line);

    const std::string& path() const { return path_; }
    // Line of the value (1-based); falls back to the key's line for empty values.
    int line() const;
    // Line of the key that introduced this node (or of the item, for sequence items).
    int key_line() const { return key_line_; }
    bool is_null() const { return node_.IsNull(); }
    bool is_map() const { return node_.IsMap(); }
    bool is_seq() const { return node_.IsSequence(); }
    bool is_scalar() const { return node_.IsScalar(); }
    Reader& reader() const { return *r_; }

    void error(std::string message) const;
    void warn(std::string message) const;

    // Typed views. Each returns nullopt after recording an error.
    std::optional<std::string> as_string(bool allow_empty = false) const;
    std::optional<bool> as_bool() const;
    std::optional<int64_t> as_int(int64_t min, int64_t max) const;
    // "500ms", "10s", "5m", "8h", "1d"; a plain integer is seconds.
    std::optional<Duration> as_duration(Duration min, Duration max) const;
    // "512", "16k", "1m", "2g" (powers of 1024).
    std::optional<uint64_t> as_size(uint64_t min, uint64_t max) const;
    std::optional<Address> as_address(const AddressRules& rules) const;
    std::optional<std::string> as_hostname() const; // FQDN or single label; no IP literal
    template <class E>
    std::optional<E> as_enum(std::span<const EnumName<std::type_identity_t<E>>> names) const;
    // Path resolved against the config file's directory; must name a readable regular file.
    std::optional<std::string> as_readable_file() const;
    // Path resolved against the config file's directory; need not exist (state files, sockets).
    std::optional<std::string> as_path() const;

    // Children. Null counts as an empty mapping / sequence (`https:` alone enables with defaults).
    Map as_map(std::initializer_list<std::string_view> keys) const;
    // A mapping whose keys are data (log modules): any key accepted, duplicates still rejected.
    Map as_open_map() const;
    std::optional<std::vector<Node>> as_seq() const;

  private:
    friend class Map;
    std::optional<std::string> scalar(const char* what) const;
    std::optional<std::string> enum_value(std::span<const std::string_view> names) const;
    const char* type_name() const;

    Reader* r_;
    YAML::Node node_;
    std::string path_;
    int key_line_;
};

// A mapping with declared keys. Construction reports unknown keys (with a "did you mean" hint),
// duplicate keys and non-mapping values.
class Map {
  public:
    Map(const Node& n, std::initializer_list<std::string_view> keys);
    struct AnyKey {};
    Map(const Node& n, AnyKey);
    // Present keys in document order.
    std::vector<std::pair<std::string, Node>> items() const;
    bool valid() const { return valid_; }
    bool has(std::string_view key) const { return find(key) != nullptr; }
    std::optional<Node> get(std::string_view key) const;
    // Records "missing required key" (at the mapping's key line) when absent.
    std::optional<Node> require(std::string_view key) const;
    const Node& node() const { return self_; }

    // Typed helpers: assign `out` only when the key is present and its value is valid.
    bool string(std::string_view key, std::string& out, bool required = false) const;
    bool boolean(std::string_view key, bool& out) const;
    template <class T> bool integer(std::string_view key, T& out, int64_t min, int64_t max) const {
        if (auto n = get(key))
            if (auto v = n->as_int(min, max)) {
                out = static_cast<T>(*v);
                return true;
            }
        return false;
    }
    bool duration(std::string_view key, Duration& out, Duration min, Duration max) const;
    bool size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) const;
    bool address(std::string_view key, Address& out, const AddressRules& rules, bool required = false) const;
    bool readable_file(std::string_view key, std::string& out, bool required = false) const;
    template <class E>
    bool enumeration(std::string_view key, E& out,
                     std::span<const EnumName<std::type_identity_t<E>>> names) const {
        if (auto n = get(key))
            if (auto v = n->template as_enum<E>(names)) {
                out = *v;
                return true;
            }
        return false;
    }

  private:
    struct Entry {
        std::string key;
        YAML::Node value;
        int key_line;
    };
    const Entry* find(std::string_view key) const;
    void init(std::initializer_list<std::string_view> keys, bool any_key);

    Node self_;
    std::vector<Entry> entries_;
    bool valid_ = false;
};

// Parses a whole file into a root Node; errors (missing file, unreadable, YAML syntax) go to diag.
std::optional<YAML::Node> load_yaml_file(const std::string& path, Diagnostics& diag);

// Helpers exposed for reuse (auth DB, validation) and tests.
std::size_t edit_distance(std::string_view a, std::string_view b);
bool valid_dns_name(std::string_view name, bool allow_wildcard = false);
bool is_ip_literal(std::string_view host);
std::string join_path(const std::string& parent, std::string_view key);
// `path` resolved against `dir` unless absolute; lexically normalised.
std::string resolve_path(const std::string& dir, const std::string& path);
// Empty when readable, else "cannot read file \"x\": reason".
std::string check_readable_file(const std::string& shown, const std::string& resolved);

template <class E>
std::optional<E> Node::as_enum(std::span<const EnumName<std::type_identity_t<E>>> names) const {
    std::vector<std::string_view> plain;
    for (const auto& n : names)
        plain.push_back(n.name);
    auto v = enum_value(plain);
    if (!v) return std::nullopt;
    for (const auto& n : names)
        if (n.name == *v) return n.value;
    return std::nullopt;
}

} // namespace edgepair::config
