#pragma once
// SIP URIs (RFC 3261 19.1) and name-addr / addr-spec header values (RFC 3261 20.10), parsed far
// enough to route: scheme, user, host, port, parameters. Values are kept as received (escapes are
// not decoded) so a URI can be re-serialised without changing what the next hop compares.
#include "common/core/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::sip {

// A parameter list (";a=b;c"), held as its normalised text in one string: a Contact or Via carries up to a
// dozen parameters, and a vector of name/value strings cost an allocation for most of them on every parse
// of every message (issue 18's SIP profile). Lists are short, so a look-up scans the text.
class Params {
  public:
    // The value of `name` (case-insensitive, as RFC 3261 19.1.4); an empty view for a parameter without
    // value, nullopt when absent. Quoted-string values keep their quotes. Views are invalidated by
    // set/remove.
    std::optional<std::string_view> get(std::string_view name) const;
    bool has(std::string_view name) const { return get(name).has_value(); }
    // Replaces the first parameter of that name in place, or appends one. `value` may be a view into this
    // list; `name` may not.
    void set(std::string_view name, std::optional<std::string_view> value);
    bool remove(std::string_view name);
    size_t size() const;
    const std::string& to_string() const { return text_; } // ";a=b;c"
    bool empty() const { return text_.empty(); }

    // Appends without looking for an existing one, for parsers that already checked the grammar; the views
    // must not point into this list.
    void append_parsed(std::string_view name, std::optional<std::string_view> value) {
        text_ += ';';
        text_ += name;
        if (value) {
            text_ += '=';
            text_ += *value;
        }
    }
    void reserve(size_t n) { text_.reserve(n); }

  private:
    // One parameter's place in text_: [at, next) from its ';', its name and value as views.
    struct Found {
        size_t at = std::string::npos;
        size_t next = 0;
        std::string_view name;
        std::optional<std::string_view> value;
    };
    Found locate(std::string_view name) const;

    std::string text_;
};

// Header parameters: *( SEMI generic-param ), where SEMI and EQUAL allow surrounding whitespace.
Result<Params> parse_header_params(std::string_view s);

struct Uri {
    std::string scheme; // as received; compare with is_sip()/is_sips()
    std::string user;
    std::optional<std::string> password;
    std::string host; // IPv6 references keep their brackets
    std::optional<uint16_t> port;
    Params params;
    std::optional<std::string> headers; // after '?', raw
    std::string opaque;                 // everything after "scheme:" for non-SIP schemes (tel:, urn:)

    static Result<Uri> parse(std::string_view text);
    // Into a default-constructed Uri (a member of a larger object): saves the moves out of a Result.
    static Result<void> parse_into(std::string_view text, Uri& out);

    bool is_sip() const; // sip: or sips:
    bool is_sips() const;
    bool lr() const { return params.has("lr"); }
    bool ob() const { return params.has("ob"); }
    std::optional<std::string_view> transport() const { return params.get("transport"); }
    std::string to_string() const;
};

// Validates a host as used in sent-by and URIs: hostname, IPv4 address or bracketed IPv6 reference.
bool valid_host(std::string_view host);

struct NameAddr {
    std::string display; // raw: a quoted-string with its quotes, or the token sequence; may be empty
    Uri uri;
    bool angle = true; // received in name-addr form (<...>)
    Params params;     // header parameters (tag, expires, +sip.instance, reg-id, q, ...)

    static Result<NameAddr> parse(std::string_view text);
    static Result<void> parse_into(std::string_view text, NameAddr& out); // into a default-constructed one

    std::optional<std::string_view> tag() const { return params.get("tag"); }
    // Always writes the URI in angle brackets: required once it carries ',', ';' or '?' (RFC 3261
    // 20.10) and harmless otherwise.
    std::string to_string() const;
    // The same form with `uri_text` in place of the URI, appended to `out`.
    void append_to(std::string& out, std::string_view uri_text) const;
};

} // namespace edgepair::sip
