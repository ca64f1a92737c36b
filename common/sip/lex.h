#pragma once
// Character classes and small scanners shared by the SIP parsers (RFC 3261 section 25 grammar).
// Header values reach these helpers already unfolded, so linear white space is only SP / HTAB.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::sip::lex {

constexpr bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
inline bool is_alnum(char c) {
    return is_alpha(c) || is_digit(c);
}
inline bool is_ws(char c) {
    return c == ' ' || c == '\t';
}
inline bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A bare CR or LF inside a line (RFC 3261 allows only CRLF as a terminator; a lone one can hide a header from
// one parser and show it to another). Two vectorised scans: string_view::find_first_of with a two-character
// set calls memchr on the set once per character of the line, which was ~15 % of edge-c's SIP CPU.
inline bool has_cr_or_lf(std::string_view s) {
    return s.find('\r') != std::string_view::npos || s.find('\n') != std::string_view::npos;
}

// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"). A table: every character
// of every header name, parameter and method goes through here.
inline constexpr auto kTokenChars = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[size_t(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (unsigned char c : std::string_view("-.!%*_+`'~"))
        t[c] = true;
    return t;
}();
inline bool is_token_char(char c) {
    return kTokenChars[static_cast<unsigned char>(c)];
}

inline bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_token_char(c)) return false;
    return true;
}

constexpr char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = lower(c);
    return out;
}

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ws(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ws(s.back()))
        s.remove_suffix(1);
    return s;
}

inline void skip_ws(std::string_view& s) {
    while (!s.empty() && is_ws(s.front()))
        s.remove_prefix(1);
}

inline std::string_view take_token(std::string_view& s) {
    size_t n = 0;
    while (n < s.size() && is_token_char(s[n]))
        ++n;
    std::string_view t = s.substr(0, n);
    s.remove_prefix(n);
    return t;
}

// Consumes a quoted-string (with quoted-pairs) and returns it including the quotes; nullopt when
// the string does not start with a quote or is unterminated. quoted-pair may escape any octet but
// CR and LF, so a NUL after a backslash is legal (RFC 4475 intmeth relies on it).
inline std::optional<std::string_view> take_quoted(std::string_view& s) {
    if (s.empty() || s.front() != '"') return std::nullopt;
    size_t i = 1;
    while (i < s.size()) {
        char c = s[i];
        if (c == '\\') {
            if (i + 1 >= s.size() || s[i + 1] == '\r' || s[i + 1] == '\n') return std::nullopt;
            i += 2;
            continue;
        }
        if (c == '"') {
            std::string_view q = s.substr(0, i + 1);
            s.remove_prefix(i + 1);
            return q;
        }
        // qdtext excludes the control characters other than HTAB.
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return std::nullopt;
        ++i;
    }
    return std::nullopt;
}

// The position of the first comma at or after `from` that is outside quoted strings and angle brackets
// (a list separator); npos when there is none.
inline size_t next_list_comma(std::string_view value, size_t from) {
    // Most list headers carry one element: without a comma there is nothing to scan for (a vectorised
    // search instead of the character loop below).
    if (value.find(',', from) == std::string_view::npos) return std::string_view::npos;
    bool in_quote = false;
    bool in_angle = false;
    for (size_t i = from; i < value.size(); ++i) {
        char c = value[i];
        if (in_quote) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_quote = false;
            continue;
        }
        if (c == '"')
            in_quote = true;
        else if (c == '<')
            in_angle = true;
        else if (c == '>')
            in_angle = false;
        else if (c == ',' && !in_angle)
            return i;
    }
    return std::string_view::npos;
}

// Splits a header value on list separators (next_list_comma). Empty elements are kept so the element
// parser can reject them (RFC 4475 badinv01).
inline std::vector<std::string_view> split_list(std::string_view value) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (size_t comma; (comma = next_list_comma(value, start)) != std::string_view::npos; start = comma + 1)
        out.push_back(trim(value.substr(start, comma - start)));
    out.push_back(trim(value.substr(start)));
    return out;
}

// The first element of a list header value and where the rest starts (after its comma; npos when the
// value has one element), without splitting the whole list.
struct FirstElement {
    std::string_view first;
    size_t rest = std::string_view::npos;
};
inline FirstElement first_element(std::string_view value) {
    size_t comma = next_list_comma(value, 0);
    if (comma == std::string_view::npos) return {trim(value)};
    return {trim(value.substr(0, comma)), comma + 1};
}

enum class Number { ok, invalid, overflow };

// Parses 1*DIGIT with no sign; values above `max` report overflow so callers can tell an
// attacker-sized scalar (RFC 4475 scalar02) from garbage.
inline Number parse_uint(std::string_view s, uint64_t max, uint64_t& out) {
    if (s.empty()) return Number::invalid;
    uint64_t v = 0;
    bool over = false;
    for (char c : s) {
        if (!is_digit(c)) return Number::invalid;
        if (!over) {
            uint64_t d = static_cast<uint64_t>(c - '0');
            if (v > (max - d) / 10)
                over = true;
            else
                v = v * 10 + d;
        }
    }
    if (over) return Number::overflow;
    out = v;
    return Number::ok;
}

} // namespace edgepair::sip::lex
