#include "common/config/yaml_reader.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace edgepair::config {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string quoted_list(std::span<const std::string_view> names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) out += i + 1 == names.size() ? " or " : ", ";
        out += names[i];
    }
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Digits then an optional unit; nullopt when the number part is missing or overflows.
std::optional<std::pair<uint64_t, std::string>> number_and_unit(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
        ++i;
    if (i == 0) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + i, v);
    if (ec != std::errc() || p != s.data() + i) return std::nullopt;
    return std::pair{v, lower(s.substr(i))};
}

} // namespace

std::string Address::str() const {
    std::string h = kind == Kind::Any ? "*" : kind == Kind::IPv6 ? "[" + host + "]" : host;
    return h + ":" + std::to_string(port);
}

const char* to_string(LogLevel l) {
    switch (l) {
    case LogLevel::Trace:
        return "trace";
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warn:
        return "warn";
    case LogLevel::Error:
        return "error";
    }
    return "?";
}
const char* to_string(LogFormat f) {
    return f == LogFormat::Json ? "json" : "text";
}
const char* to_string(TlsVersion v) {
    return v == TlsVersion::V1_3 ? "1.3" : "1.2";
}

// ---- free helpers ----

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

bool valid_dns_name(std::string_view name, bool allow_wildcard) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > 253) return false;
    if (allow_wildcard && name.starts_with("*.")) name.remove_prefix(2);
    bool all_numeric = true;
    std::size_t start = 0;
    while (start <= name.size()) {
        auto end = name.find('.', start);
        if (end == std::string_view::npos) end = name.size();
        auto label = name.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
            if (!ok) return false;
        }
        if (end == name.size()) {
            // RFC 3696 2: a top-level label is never all-numeric, which also keeps "1.2.3.999" out.
            all_numeric = all_digits(label);
            break;
        }
        start = end + 1;
    }
    return !all_numeric;
}

bool is_ip_literal(std::string_view host) {
    std::string h(host);
    unsigned char buf[16];
    return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::string join_path(const std::string& parent, std::string_view key) {
    if (parent.empty()) return std::string(key);
    return parent + "." + std::string(key);
}

std::string resolve_path(const std::string& dir, const std::string& path) {
    std::filesystem::path p(path);
    if (p.is_absolute() || dir.empty()) return p.lexically_normal().string();
    return (std::filesystem::path(dir) / p).lexically_normal().string();
}

std::string check_readable_file(const std::string& shown, const std::string& resolved) {
    int fd = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "cannot read file \"" + shown + "\": " + std::strerror(errno);
    struct stat st {};
    std::string err;
    if (::fstat(fd, &st) != 0)
        err = "cannot read file \"" + shown + "\": " + std::strerror(errno);
    else if (S_ISDIR(st.st_mode))
        err = "cannot read file \"" + shown + "\": " + std::strerror(EISDIR);
    else if (!S_ISREG(st.st_mode))
        err = "cannot read file \"" + shown + "\": not a regular file";
    ::close(fd);
    return err;
}

std::optional<YAML::Node> load_yaml_file(const std::string& path, Diagnostics& diag) {
    if (auto err = check_readable_file(path, path); !err.empty()) {
        // The message already names the file; keep the `file: message` shape.
        auto reason = err.substr(err.find("\": ") + 3);
        diag.error(path, 0, "", "cannot read configuration: " + reason);
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        YAML::Node root = YAML::Load(ss.str());
        return root;
    } catch (const YAML::Exception& e) {
        diag.error(path, e.mark.is_null() ? 0 : e.mark.line + 1, "", "YAML syntax error: " + e.msg);
        return std::nullopt;
    }
}

// ---- Reader / Node ----

Reader::Reader(std::string file, Diagnostics& diag, SourceMap& source)
    : file_(std::move(file)), diag_(diag), source_(source) {}

Node::Node(Reader& r, YAML::Node n, std::string path, int key_line)
    : r_(&r), node_(std::move(n)), path_(std::move(path)), key_line_(key_line) {}

int Node::line() const {
    if (!node_.IsDefined() || node_.IsNull()) return key_line_;
    auto m = node_.Mark();
    return m.is_null() ? key_line_ : m.line + 1;
}

void Node::error(std::string message) const {
    r_->diag().error(r_->file(), line(), path_, std::move(message));
}

void Node::warn(std::string message) const {
    r_->diag().warn(r_->file(), line(), path_, std::move(message));
}

const char* Node::type_name() const {
    if (!node_.IsDefined() || node_.IsNull()) return "nothing";
    if (node_.IsMap()) return "a mapping";
    if (node_.IsSequence()) return "a sequence";
    return "a scalar";
}

std::optional<std::string> Node::scalar(const char* what) const {
    if (!node_.IsScalar()) {
        error(std::string("expected ") + what + ", got " + type_name());
        return std::nullopt;
    }
    return node_.Scalar();
}

std::optional<std::string> Node::as_string(bool allow_empty) const {
    auto s = scalar("a string");
    if (s && s->empty() && !allow_empty) {
        error("must not be empty");
        return std::nullopt;
    }
    return s;
}

std::optional<bool> Node::as_bool() const {
    auto s = scalar("a boolean");
    if (!s) return std::nullopt;
    auto l = lower(*s);
    if (l == "true" || l == "on" || l == "yes") return true;
    if (l == "false" || l == "off" || l == "no") return false;
    error("expected a boolean (true/false, on/off, yes/no), got \"" + *s + "\"");
    return std::nullopt;
}

std::optional<int64_t> Node::as_int(int64_t min, int64_t max) const {
    auto s = scalar("an integer");
    if (!s) return std::nullopt;
    int64_t v = 0;
    const char* b = s->data();
    const char* e = b + s->size();
    auto [p, ec] = std::from_chars(b, e, v);
    if (s->empty() || ec == std::errc::invalid_argument || p != e) {
        error("expected an integer, got \"" + *s + "\"");
        return std::nullopt;
    }
    if (ec == std::errc::result_out_of_range || v < min || v > max) {
        error("value " + *s + " out of range " + std::to_string(min) + ".." + std::to_string(max));
        return std::nullopt;
    }
    return v;
}

static std::string duration_text(Duration d) {
    auto ms = d.count();
    if (ms % 3600000 == 0 && ms) return std::to_string(ms / 3600000) + "h";
    if (ms % 60000 == 0 && ms) return std::to_string(ms / 60000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

std::optional<Duration> Node::as_duration(Duration min, Duration max) const {
    auto s = scalar("a duration");
    if (!s) return std::nullopt;
    auto nu = number_and_unit(*s);
    uint64_t mult = 0;
    if (nu) {
        const auto& u = nu->second;
        if (u.empty() || u == "s")
            mult = 1000;
        else if (u == "ms")
            mult = 1;
        else if (u == "m")
            mult = 60'000;
        else if (u == "h")
            mult = 3'600'000;
        else if (u == "d")
            mult = 86'400'000;
    }
    if (!nu || mult == 0) {
        error("expected a duration such as 500ms, 10s, 5m, 8h or 1d, got \"" + *s + "\"");
        return std::nullopt;
    }
    constexpr uint64_t cap = uint64_t(1) << 53; // far beyond any sane timeout; keeps the multiply exact
    if (nu->first > cap / mult || Duration(nu->first * mult) < min || Duration(nu->first * mult) > max) {
        error("duration " + *s + " out of range " + duration_text(min) + ".." + duration_text(max));
        return std::nullopt;
    }
    return Duration(static_cast<int64_t>(nu->first * mult));
}

std::optional<uint64_t> Node::as_size(uint64_t min, uint64_t max) const {
    auto s = scalar("a size");
    if (!s) return std::nullopt;
    auto nu = number_and_unit(*s);
    uint64_t mult = 0;
    if (nu) {
        const auto& u = nu->second;
        if (u.empty() || u == "b")
            mult = 1;
        else if (u == "k" || u == "kb")
            mult = 1024;
        else if (u == "m" || u == "mb")
            mult = 1024 * 1024;
        else if (u == "g" || u == "gb")
            mult = 1024 * 1024 * 1024;
    }
    if (!nu || mult == 0) {
        error("expected a size such as 512, 16k, 100m or 1g, got \"" + *s + "\"");
        return std::nullopt;
    }
    if (nu->first > UINT64_MAX / mult || nu->first * mult < min || nu->first * mult > max) {
        error("size " + *s + " out of range " + std::to_string(min) + ".." + std::to_string(max) + " bytes");
        return std::nullopt;
    }
    return nu->first * mult;
}

std::optional<Address> Node::as_address(const AddressRules& rules) const {
    auto s = scalar("an address");
    if (!s) return std::nullopt;
    const std::string& t = *s;
    auto fail = [&](const std::string& why) {
        error("invalid address \"" + t + "\": " + why);
        return std::nullopt;
    };
    std::string host;
    std::string port;
    bool have_port = false;
    if (!t.empty() && t.front() == '[') {
        auto close = t.find(']');
        if (close == std::string::npos) return fail("missing ']'");
        host = t.substr(1, close - 1);
        if (close + 1 < t.size()) {
            if (t[close + 1] != ':') return fail("expected ':' after ']'");
            port = t.substr(close + 2);
            have_port = true;
        }
        unsigned char buf[16];
        if (inet_pton(AF_INET6, host.c_str(), buf) != 1) return fail("not an IPv6 address inside [ ]");
    } else {
        auto colon = t.rfind(':');
        if (colon != std::string::npos && t.find(':') != colon) {
            // Several colons: a bare IPv6 literal. Only acceptable when no port is needed.
            unsigned char buf[16];
            if (rules.default_port && inet_pton(AF_INET6, t.c_str(), buf) == 1) {
                host = t;
            } else {
                return fail("write IPv6 addresses as [addr]:port");
            }
        } else if (colon != std::string::npos) {
            host = t.substr(0, colon);
            port = t.substr(colon + 1);
            have_port = true;
        } else {
            host = t;
        }
    }
    Address a;
    if (have_port) {
        int64_t p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (!all_digits(port) || ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535)
            return fail("port must be 1..65535");
        a.port = static_cast<uint16_t>(p);
    } else if (rules.default_port) {
        a.port = *rules.default_port;
    } else {
        return fail("expected host:port");
    }
    unsigned char buf[16];
    if (host == "*") {
        if (!rules.allow_any) return fail("\"*\" is not allowed here");
        a.kind = Address::Kind::Any;
    } else if (host.empty()) {
        return fail("missing host");
    } else if (inet_pton(AF_INET, host.c_str(), buf) == 1) {
        a.kind = Address::Kind::IPv4;
        a.host = host;
    } else if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
        a.kind = Address::Kind::IPv6;
        a.host = host;
    } else if (!rules.allow_hostname) {
        return fail("expected an IP address" + std::string(rules.allow_any ? " or \"*\"" : ""));
    } else if (valid_dns_name(host)) {
        a.kind = Address::Kind::Name;
        a.host = lower(host);
    } else {
        return fail("invalid host name");
    }
    if (a.kind == Address::Kind::IPv4 && a.host == "0.0.0.0" && !rules.allow_any)
        return fail("the wildcard address is not allowed here");
    return a;
}

std::optional<std::string> Node::as_hostname() const {
    auto s = as_string();
    if (!s) return std::nullopt;
    if (is_ip_literal(*s)) {
        error("expected a host name, got the IP address \"" + *s + "\"");
        return std::nullopt;
    }
    if (!valid_dns_name(*s)) {
        error("invalid host name \"" + *s + "\"");
        return std::nullopt;
    }
    return lower(*s);
}

std::optional<std::string> Node::enum_value(std::span<const std::string_view> names) const {
    auto s = scalar("one of the listed words");
    if (!s) return std::nullopt;
    auto l = lower(*s);
    for (auto n : names)
        if (l == n) return std::string(n);
    error("expected " + quoted_list(names) + ", got \"" + *s + "\"");
    return std::nullopt;
}

std::optional<std::string> Node::as_path() const {
    auto s = as_string();
    if (!s) return std::nullopt;
    return resolve_path(r_->dir(), *s);
}

std::optional<std::string> Node::as_readable_file() const {
    auto s = as_string();
    if (!s) return std::nullopt;
    auto resolved = resolve_path(r_->dir(), *s);
    if (auto err = check_readable_file(*s, resolved); !err.empty()) {
        error(err);
        return std::nullopt;
    }
    return resolved;
}

Map Node::as_map(std::initializer_list<std::string_view> keys) const {
    return Map(*this, keys);
}

std::optional<std::vector<Node>> Node::as_seq() const {
    std::vector<Node> out;
    if (node_.IsNull()) return out;
    if (!node_.IsSequence()) {
        error(std::string("expected a sequence, got ") + type_name());
        return std::nullopt;
    }
    std::size_t i = 0;
    for (YAML::Node item : node_) {
        auto m = item.Mark();
        int line = m.is_null() ? key_line_ : m.line + 1;
        std::string p = path_ + "[" + std::to_string(i++) + "]";
        r_->source().lines.emplace(p, line);
        out.emplace_back(*r_, item, std::move(p), line);
    }
    return out;
}

// ---- Map ----

Map Node::as_open_map() const {
    return Map(*this, Map::AnyKey{});
}

Map::Map(const Node& n, std::initializer_list<std::string_view> keys) : self_(n) {
    init(keys, false);
}
Map::Map(const Node& n, AnyKey) : self_(n) {
    init({}, true);
}

std::vector<std::pair<std::string, Node>> Map::items() const {
    std::vector<std::pair<std::string, Node>> out;
    for (const auto& e : entries_)
        out.emplace_back(e.key, Node(self_.reader(), e.value, join_path(self_.path(), e.key), e.key_line));
    return out;
}

void Map::init(std::initializer_list<std::string_view> keys, bool any_key) {
    const Node& n = self_;
    if (n.node_.IsNull()) {
        valid_ = true;
        return;
    }
    if (!n.node_.IsMap()) {
        n.error(std::string("expected a mapping, got ") + n.type_name());
        return;
    }
    valid_ = true;
    for (auto it = n.node_.begin(); it != n.node_.end(); ++it) {
        const YAML::Node k = it->first;
        const YAML::Node v = it->second;
        auto km = k.Mark();
        int kline = km.is_null() ? n.line() : km.line + 1;
        if (!k.IsScalar()) {
            n.reader().diag().error(n.reader().file(), kline, n.path(), "mapping keys must be plain words");
            continue;
        }
        const std::string& name = k.Scalar();
        std::string kpath = join_path(n.path(), name);
        if (!any_key && std::find(keys.begin(), keys.end(), name) == keys.end()) {
            std::string msg = "unknown key \"" + name + "\"";
            std::string_view best;
            std::size_t best_d = 3;
            for (auto cand : keys) {
                auto d = edit_distance(lower(name), cand);
                // Two edits turn any three-letter word into another; only suggest when most of it survives.
                if (d < best_d && d * 2 < name.size()) {
                    best_d = d;
                    best = cand;
                }
            }
            if (!best.empty()) msg += " (did you mean \"" + std::string(best) + "\"?)";
            n.reader().diag().error(n.reader().file(), kline, kpath, msg);
            continue;
        }
        if (find(name)) {
            n.reader().diag().error(n.reader().file(), kline, kpath, "duplicate key \"" + name + "\"");
            continue;
        }
        n.reader().source().lines.emplace(kpath, kline);
        entries_.push_back({name, v, kline});
    }
}

const Map::Entry* Map::find(std::string_view key) const {
    for (const auto& e : entries_)
        if (e.key == key) return &e;
    return nullptr;
}

std::optional<Node> Map::get(std::string_view key) const {
    auto* e = find(key);
    if (!e) return std::nullopt;
    return Node(self_.reader(), e->value, join_path(self_.path(), key), e->key_line);
}

std::optional<Node> Map::require(std::string_view key) const {
    auto n = get(key);
    if (!n && valid_) {
        auto& r = self_.reader();
        // A missing key is reported where its parent mapping starts (no line for the document root).
        r.diag().error(r.file(), self_.path().empty() ? 0 : self_.key_line(), join_path(self_.path(), key),
                       "missing required key");
    }
    return n;
}

bool Map::string(std::string_view key, std::string& out, bool required) const {
    auto n = required ? require(key) : get(key);
    if (!n) return false;
    auto v = n->as_string();
    if (v) out = *v;
    return v.has_value();
}

bool Map::boolean(std::string_view key, bool& out) const {
    if (auto n = get(key))
        if (auto v = n->as_bool()) {
            out = *v;
            return true;
        }
    return false;
}

bool Map::duration(std::string_view key, Duration& out, Duration min, Duration max) const {
    if (auto n = get(key))
        if (auto v = n->as_duration(min, max)) {
            out = *v;
            return true;
        }
    return false;
}

bool Map::size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) const {
    if (auto n = get(key))
        if (auto v = n->as_size(min, max)) {
            out = *v;
            return true;
        }
    return false;
}

bool Map::address(std::string_view key, Address& out, const AddressRules& rules, bool required) const {
    auto n = required ? require(key) : get(key);
    if (!n) return false;
    auto v = n->as_address(rules);
    if (v) out = *v;
    return v.has_value();
}

bool Map::readable_file(std::string_view key, std::string& out, bool required) const {
    auto n = required ? require(key) : get(key);
    if (!n) return false;
    auto v = n->as_readable_file();
    if (v) out = *v;
    return v.has_value();
}

} // namespace edgepair::config
