#include "common/http/h2_request.h"

#include "common/http/url_path.h"

namespace edgepair::http {

namespace {

bool tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9113 8.2.1: lower-case tokens only (an upper-case name is malformed in HTTP/2).
bool valid_name(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n)
        if (!tchar(c)) return false;
    return true;
}

// RFC 9113 8.2.1: no NUL, CR, LF anywhere; no leading or trailing SP/HTAB. Other CTLs are refused too, as
// on the HTTP/1.1 side (docs/SECURITY.md): the upstream is an HTTP/1.1 server.
bool valid_value(std::string_view v) {
    if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t'))
        return false;
    for (unsigned char c : v)
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    return true;
}

bool valid_method(std::string_view m) {
    if (m.empty()) return false;
    for (char c : m)
        if (!(tchar(c) || (c >= 'A' && c <= 'Z'))) return false;
    return true;
}

// Connection-specific fields are malformed in HTTP/2 (RFC 9113 8.2.2): the framing they describe does not
// exist here, and forwarding them to an HTTP/1.1 upstream is exactly the smuggling the H1 rules refuse.
bool connection_specific(std::string_view n) {
    return n == "connection" || n == "keep-alive" || n == "proxy-connection" || n == "transfer-encoding" ||
           n == "upgrade";
}

} // namespace

void H2RequestBuilder::fail(bool malformed, int status, std::string label, std::string detail) {
    if (failed()) return;
    error_.malformed = malformed;
    error_.status = status;
    error_.label = std::move(label);
    error_.detail = std::move(detail);
}

void H2RequestBuilder::add(std::string_view name, std::string_view value) {
    if (failed()) return;
    ++count_;
    bytes_ += name.size() + value.size() + 32;
    if (bytes_ > limits_.max_header_bytes)
        return fail(false, 431, "header_too_large",
                    "header block over " + std::to_string(limits_.max_header_bytes) + " bytes");
    if (count_ > limits_.max_headers + 4) // the four pseudo-header fields do not count against the limit
        return fail(false, 431, "too_many_headers",
                    "more than " + std::to_string(limits_.max_headers) + " header fields");

    if (!name.empty() && name[0] == ':') {
        if (regular_seen_)
            return fail(true, 400, "h2_pseudo_after_regular", std::string(name) + " after a regular field");
        if (!valid_value(value)) return fail(true, 400, "invalid_header_char", std::string(name));
        auto once = [&](bool& seen) {
            if (seen) {
                fail(true, 400, "h2_duplicate_pseudo", "repeated " + std::string(name));
                return false;
            }
            seen = true;
            return true;
        };
        if (name == ":method") {
            if (once(seen_method_)) head_.method = std::string(value);
        } else if (name == ":scheme") {
            if (once(seen_scheme_)) scheme_ = std::string(value);
        } else if (name == ":path") {
            if (once(seen_path_)) head_.target = std::string(value);
        } else if (name == ":authority") {
            if (once(seen_authority_)) authority_ = std::string(value);
        } else {
            // :protocol (extended CONNECT) and :status are not request fields we serve.
            fail(true, 400, "h2_bad_pseudo", "pseudo-header " + std::string(name));
        }
        return;
    }
    regular_seen_ = true;
    if (!valid_name(name)) return fail(true, 400, "invalid_header_char", "field name");
    if (!valid_value(value)) return fail(true, 400, "invalid_header_char", "value of " + std::string(name));
    if (connection_specific(name))
        return fail(true, 400, "h2_connection_header", std::string(name) + " is connection-specific");
    if (name == "te") {
        if (value != "trailers") return fail(true, 400, "h2_connection_header", "te other than trailers");
        return; // meaningless towards an HTTP/1.1 upstream
    }
    if (name == "content-length") {
        if (has_cl_) return fail(true, 400, "duplicate_content_length", "repeated content-length");
        if (value.empty() || value.size() > 19)
            return fail(true, 400, "bad_content_length", "content-length");
        uint64_t v = 0;
        for (char c : value) {
            if (c < '0' || c > '9') return fail(true, 400, "bad_content_length", "content-length");
            v = v * 10 + uint64_t(c - '0');
        }
        has_cl_ = true;
        cl_ = v;
    }
    if (name == "host") {
        // Kept aside: the one Host forwarded is :authority (or this when there is none), never both.
        if (head_.headers.find("host")) return fail(false, 400, "bad_host", "repeated host");
        head_.headers.add("host", std::string(value));
        return;
    }
    if (name == "cookie") {
        // RFC 9113 8.2.3: crumbs are joined with "; " before an HTTP/1.1 hop. An empty crumb adds nothing:
        // joining it would leave the forwarded value ending in "; " (trailing whitespace, found by fuzzing).
        if (value.empty()) return;
        if (!cookie_.empty()) cookie_ += "; ";
        cookie_ += value;
        return;
    }
    head_.headers.add(std::string(name), std::string(value));
}

bool H2RequestBuilder::finish() {
    if (failed()) return false;
    if (!seen_method_ || !valid_method(head_.method)) {
        fail(true, 400, "h2_bad_pseudo", ":method missing or not a token");
        return false;
    }
    if (head_.method == "CONNECT") {
        fail(false, 501, "unsupported_method", "CONNECT");
        return false;
    }
    if (!seen_scheme_ || !seen_path_ || head_.target.empty()) {
        fail(true, 400, "h2_bad_pseudo", ":scheme or :path missing");
        return false;
    }
    if (scheme_ != "https") {
        fail(false, 400, "h2_bad_scheme", ":scheme " + scheme_ + " on a TLS listener");
        return false;
    }
    const std::string* host = head_.headers.find("host");
    if (seen_authority_) {
        if (!parse_authority(authority_, "https")) {
            fail(false, 400, "bad_host", ":authority");
            return false;
        }
        // Two names for one request is how routing and cache confusion start (RFC 9113 8.3.1 forbids it).
        if (host && !iequals(*host, authority_)) {
            fail(false, 400, "bad_host", ":authority and host differ");
            return false;
        }
        if (!host) head_.headers.add("host", authority_);
    } else if (!host || !parse_authority(*host, "https")) {
        fail(false, 400, "bad_host", "no :authority and no valid host");
        return false;
    }
    if (!cookie_.empty()) head_.headers.add("cookie", cookie_);
    head_.version_minor = 2;
    return true;
}

} // namespace edgepair::http
