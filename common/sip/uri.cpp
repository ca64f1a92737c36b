#include "common/sip/uri.h"

#include <algorithm>
#include <array>

#include "common/sip/lex.h"

namespace edgepair::sip {

using namespace lex;

namespace {

// One parameter of a normalised list, starting at `at` (a ';'); returns the position of the next one.
// Values are a quoted-string (which may hold ';') or a run without ';'.
size_t next_param(std::string_view text, size_t at, std::string_view& name,
                  std::optional<std::string_view>& value) {
    size_t i = at + 1;
    size_t n0 = i;
    while (i < text.size() && text[i] != '=' && text[i] != ';')
        ++i;
    name = text.substr(n0, i - n0);
    value.reset();
    if (i < text.size() && text[i] == '=') {
        size_t v0 = ++i;
        if (i < text.size() && text[i] == '"') {
            ++i;
            while (i < text.size() && text[i] != '"')
                i += text[i] == '\\' ? 2 : 1;
            i = std::min(i + 1, text.size());
        }
        i = std::min(text.find(';', i), text.size());
        value = text.substr(v0, i - v0);
    }
    return i;
}

} // namespace

Params::Found Params::locate(std::string_view name) const {
    std::string_view t = text_;
    std::string_view n;
    std::optional<std::string_view> v;
    for (size_t at = 0; at < t.size();) {
        size_t next = next_param(t, at, n, v);
        if (n.size() == name.size() && iequals(n, name)) return Found{at, next, n, v};
        at = next;
    }
    return {};
}

std::optional<std::string_view> Params::get(std::string_view name) const {
    Found f = locate(name);
    if (f.at == std::string::npos) return std::nullopt;
    return f.value ? *f.value : std::string_view{};
}

size_t Params::size() const {
    std::string_view t = text_;
    std::string_view n;
    std::optional<std::string_view> v;
    size_t count = 0;
    for (size_t at = 0; at < t.size(); ++count)
        at = next_param(t, at, n, v);
    return count;
}

void Params::set(std::string_view name, std::optional<std::string_view> value) {
    Found f = locate(name);
    // `value` may be a view into this list (p.set("x", p.get("y"))): it is copied before the text changes.
    std::string repl;
    if (value) {
        repl.reserve(value->size() + 1);
        repl += '=';
        repl += *value;
    }
    if (f.at != std::string::npos) {
        // Replace what follows the name: the old value (with its '=') or nothing.
        size_t from = f.at + 1 + f.name.size();
        text_.replace(from, f.next - from, repl);
        return;
    }
    text_ += ';';
    text_ += name;
    text_ += repl;
}

bool Params::remove(std::string_view name) {
    Found f = locate(name);
    if (f.at == std::string::npos) return false;
    text_.erase(f.at, f.next - f.at);
    return true;
}

namespace {

// gen-value = token / host / quoted-string; ':' and brackets cover IPv6 hosts, including the
// unbracketed form RFC 5118 allows in Via received.
bool is_gen_value_char(char c) {
    return is_token_char(c) || c == ':' || c == '[' || c == ']';
}

// Characters allowed (unescaped) somewhere in a SIP URI: unreserved, reserved and '%' escapes.
// Excludes what can never appear: controls, space, '<', '>', '"', non-ASCII. A table, as every character
// of every URI is checked.
constexpr auto kUriChars = [] {
    std::array<bool, 256> t{};
    for (int c = 0x21; c < 0x7f; ++c)
        t[size_t(c)] = true;
    for (unsigned char c : std::string_view("<>\"\\{}|^"))
        t[c] = false;
    return t;
}();
bool is_uri_char(char c) {
    return kUriChars[static_cast<unsigned char>(c)];
}

bool valid_uri_part(std::string_view s, std::string_view also_forbidden) {
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (!is_uri_char(c)) return false;
        // Not string_view::find: that is a memchr call per character of the URI.
        for (char f : also_forbidden)
            if (c == f) return false;
        if (c == '%') {
            if (i + 2 >= s.size()) return false;
            if (!is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
            i += 2;
        }
    }
    return true;
}

bool valid_scheme(std::string_view s) {
    if (s.empty() || !is_alpha(s[0])) return false;
    for (char c : s)
        if (!is_alnum(c) && c != '+' && c != '-' && c != '.') return false;
    return true;
}

Result<std::optional<uint16_t>> parse_port(std::string_view s) {
    uint64_t v = 0;
    if (s.size() > 5 || parse_uint(s, 65535, v) != Number::ok) return make_error("bad port");
    return std::optional<uint16_t>(static_cast<uint16_t>(v));
}

} // namespace

bool valid_host(std::string_view host) {
    if (host.empty()) return false;
    if (host.front() == '[') {
        if (host.size() < 4 || host.back() != ']') return false;
        std::string_view in = host.substr(1, host.size() - 2);
        if (in.find(':') == std::string_view::npos) return false;
        for (char c : in)
            if (!is_hex(c) && c != ':' && c != '.') return false;
        return true;
    }
    // '_' is outside RFC 1034 but common in internal host names; rejecting it helps nobody.
    for (char c : host)
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_') return false;
    return host.front() != '.' && host.front() != '-';
}

Result<Params> parse_header_params(std::string_view s) {
    Params params;
    skip_ws(s);
    if (s.empty()) return params;
    params.reserve(s.size());
    while (!s.empty()) {
        if (s.front() != ';') return make_error("expected ';' before parameter");
        s.remove_prefix(1);
        skip_ws(s);
        std::string_view name = take_token(s);
        if (name.empty()) return make_error("empty parameter name");
        skip_ws(s);
        std::optional<std::string_view> value;
        if (!s.empty() && s.front() == '=') {
            s.remove_prefix(1);
            skip_ws(s);
            if (auto q = take_quoted(s)) {
                value = *q;
            } else {
                size_t n = 0;
                while (n < s.size() && is_gen_value_char(s[n]))
                    ++n;
                if (n == 0) return make_error("empty parameter value");
                value = s.substr(0, n);
                s.remove_prefix(n);
            }
            skip_ws(s);
        }
        params.append_parsed(name, value);
    }
    return params;
}

bool Uri::is_sip() const {
    return iequals(scheme, "sip") || iequals(scheme, "sips");
}
bool Uri::is_sips() const {
    return iequals(scheme, "sips");
}

Result<void> Uri::parse_into(std::string_view text, Uri& u) {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos || !valid_scheme(text.substr(0, colon)))
        return make_error("URI without a valid scheme");
    u.scheme = std::string(text.substr(0, colon));
    std::string_view rest = text.substr(colon + 1);
    if (!u.is_sip()) {
        if (rest.empty() || !valid_uri_part(rest, "")) return make_error("malformed URI");
        u.opaque = std::string(rest);
        return {};
    }
    // The user part may contain ';', '?' and '/', but no part of a SIP URI may contain an
    // unescaped '@' except the userinfo delimiter, so the first '@' is the delimiter.
    size_t at = rest.find('@');
    if (at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        size_t pc = userinfo.find(':');
        std::string_view user = userinfo.substr(0, pc);
        if (user.empty() || !valid_uri_part(user, ":@")) return make_error("malformed URI user");
        u.user = std::string(user);
        if (pc != std::string_view::npos) {
            std::string_view pw = userinfo.substr(pc + 1);
            if (!valid_uri_part(pw, "@")) return make_error("malformed URI password");
            u.password = std::string(pw);
        }
        rest = rest.substr(at + 1);
    }
    size_t q = rest.find('?');
    std::string_view before_headers = rest.substr(0, q);
    if (q != std::string_view::npos) {
        std::string_view h = rest.substr(q + 1);
        if (!valid_uri_part(h, "@")) return make_error("malformed URI headers");
        u.headers = std::string(h);
    }
    size_t semi = before_headers.find(';');
    std::string_view hostport = before_headers.substr(0, semi);
    std::string_view host = hostport;
    std::string_view port;
    bool has_port = false;
    if (!hostport.empty() && hostport.front() == '[') {
        size_t close = hostport.find(']');
        if (close == std::string_view::npos) return make_error("malformed IPv6 reference");
        host = hostport.substr(0, close + 1);
        std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return make_error("junk after IPv6 reference");
            port = after.substr(1);
            has_port = true;
        }
    } else if (size_t pc = hostport.find(':'); pc != std::string_view::npos) {
        host = hostport.substr(0, pc);
        port = hostport.substr(pc + 1);
        has_port = true;
    }
    if (!valid_host(host)) return make_error("malformed URI host");
    u.host = std::string(host);
    if (has_port) {
        auto p = parse_port(port);
        if (!p) return p.error();
        u.port = *p;
    }
    if (semi != std::string_view::npos) {
        std::string_view ps = before_headers.substr(semi + 1);
        u.params.reserve(ps.size() + 1);
        while (true) {
            size_t next = ps.find(';');
            std::string_view one = ps.substr(0, next);
            size_t eq = one.find('=');
            std::string_view name = one.substr(0, eq);
            if (name.empty() || !valid_uri_part(name, "=@")) return make_error("malformed URI parameter");
            std::optional<std::string_view> value;
            if (eq != std::string_view::npos) {
                value = one.substr(eq + 1);
                if (value->empty() || !valid_uri_part(*value, "=@"))
                    return make_error("malformed URI parameter");
            }
            u.params.append_parsed(name, value);
            if (next == std::string_view::npos) break;
            ps = ps.substr(next + 1);
        }
    }
    return {};
}

Result<Uri> Uri::parse(std::string_view text) {
    Uri u;
    if (auto r = parse_into(text, u); !r) return r.error();
    return u;
}

std::string Uri::to_string() const {
    std::string out = scheme;
    out += ':';
    if (!is_sip()) {
        out += opaque;
        return out;
    }
    if (!user.empty()) {
        out += user;
        if (password) {
            out += ':';
            out += *password;
        }
        out += '@';
    }
    out += host;
    if (port) {
        out += ':';
        out += std::to_string(*port);
    }
    out += params.to_string();
    if (headers) {
        out += '?';
        out += *headers;
    }
    return out;
}

Result<void> NameAddr::parse_into(std::string_view text, NameAddr& na) {
    std::string_view s = trim(text);
    std::string_view display;
    bool name_addr = false;
    if (!s.empty() && s.front() == '"') {
        auto q = take_quoted(s);
        if (!q) return make_error("unterminated quoted display name");
        display = *q;
        skip_ws(s);
        if (s.empty() || s.front() != '<') return make_error("expected '<' after display name");
        name_addr = true;
    } else {
        // A run of tokens and whitespace followed by '<' is a display name; anything else
        // (typically the ':' of a scheme) means addr-spec form.
        size_t n = 0;
        while (n < s.size() && (is_token_char(s[n]) || is_ws(s[n])))
            ++n;
        if (n < s.size() && s[n] == '<') {
            display = trim(s.substr(0, n));
            s.remove_prefix(n);
            name_addr = true;
        }
    }
    na.display = std::string(display);
    if (name_addr) {
        size_t close = s.find('>');
        if (close == std::string_view::npos) return make_error("missing '>'");
        // LAQUOT/RAQUOT allow no whitespace inside the brackets (RFC 4475 badaspec).
        if (auto u = Uri::parse_into(s.substr(1, close - 1), na.uri); !u) return u.error();
        na.angle = true;
        s.remove_prefix(close + 1);
    } else {
        // In addr-spec form, ';' starts header parameters, and a URI with ',', '?' or ';'
        // would have to be bracketed (RFC 3261 20.10; RFC 4475 regbadct).
        size_t semi = s.find(';');
        std::string_view us = trim(s.substr(0, semi));
        if (us.find_first_of("?,") != std::string_view::npos)
            return make_error("URI with '?' or ',' must be in angle brackets");
        if (auto u = Uri::parse_into(us, na.uri); !u) return u.error();
        na.angle = false;
        s = semi == std::string_view::npos ? std::string_view{} : s.substr(semi);
    }
    auto params = parse_header_params(s);
    if (!params) return params.error();
    na.params = std::move(*params);
    return {};
}

Result<NameAddr> NameAddr::parse(std::string_view text) {
    NameAddr na;
    if (auto r = parse_into(text, na); !r) return r.error();
    return na;
}

std::string NameAddr::to_string() const {
    std::string out;
    append_to(out, uri.to_string());
    return out;
}

void NameAddr::append_to(std::string& out, std::string_view uri_text) const {
    if (!display.empty()) {
        out += display;
        out += ' ';
    }
    out += '<';
    out += uri_text;
    out += '>';
    out += params.to_string();
}

} // namespace edgepair::sip
