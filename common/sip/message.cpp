#include "common/sip/message.h"

#include "common/sip/lex.h"

#include <cstdint>

namespace edgepair::sip {

using namespace lex;

std::optional<size_t> parse_content_length(std::string_view value) {
    uint64_t v = 0;
    switch (parse_uint(trim(value), SIZE_MAX, v)) {
    case Number::ok:
        return static_cast<size_t>(v);
    case Number::overflow:
        return SIZE_MAX;
    case Number::invalid:
        break;
    }
    return std::nullopt;
}

namespace {

Result<void> parse_start_line(std::string_view line, bool& request, std::string& method, std::string& uri,
                              std::string& version, int& status, std::string& reason) {
    if (istarts_with(line, "SIP/")) {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; an empty reason with or
        // without the trailing SP is tolerated (RFC 4475 noreason).
        size_t sp = line.find(' ');
        if (sp == std::string_view::npos) return make_error("malformed status line");
        std::string_view code = line.substr(sp + 1, 3);
        if (code.size() != 3 || !is_digit(code[0]) || !is_digit(code[1]) || !is_digit(code[2]))
            return make_error("malformed status code");
        std::string_view after = line.substr(sp + 4);
        if (!after.empty() && after.front() != ' ') return make_error("malformed status code");
        int c = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
        if (c < 100 || c > 699) return make_error("status code out of range");
        for (char ch : after)
            if (ch == '\0') return make_error("NUL in reason phrase");
        request = false;
        version = std::string(line.substr(0, sp));
        status = c;
        reason = std::string(after.empty() ? after : after.substr(1));
        return {};
    }
    // Request-Line = Method SP Request-URI SP SIP-Version. The URI is taken between the first and
    // the last SP and checked later, so a request with a bad URI can still get its 400.
    // Trailing whitespace stays in the version (RFC 4475 trws) so validate() answers 400 for it
    // instead of the framer closing the connection.
    size_t first = line.find(' ');
    size_t end = line.find_last_not_of(" \t");
    size_t last = end == std::string_view::npos ? std::string_view::npos : line.rfind(' ', end);
    if (first == std::string_view::npos || first == last) return make_error("malformed request line");
    std::string_view m = line.substr(0, first);
    std::string_view v = line.substr(last + 1);
    if (!is_token(m)) return make_error("malformed method");
    if (!istarts_with(v, "SIP/")) return make_error("not a SIP request line");
    request = true;
    method = std::string(m);
    uri = std::string(line.substr(first + 1, last - first - 1));
    version = std::string(v);
    return {};
}

} // namespace

Result<Message> Message::parse_head(std::string_view head) {
    Message m;
    // A REGISTER or INVITE from Jabber has 12-20 header fields: one allocation instead of growing by doubling
    // (five allocations and the moves between them per message).
    m.headers_.reserve(16);
    size_t pos = 0;
    bool first = true;
    while (pos < head.size()) {
        // RFC 3261 allows only CRLF as line terminator; a bare CR or LF can hide a header from one
        // parser and show it to another. The first CR ends the line and must be followed by LF; an LF
        // before it is a bare one. (Two vectorised scans per line, not a scan for CRLF and two more.)
        size_t le = head.find('\r', pos);
        if (le != std::string_view::npos && (le + 1 >= head.size() || head[le + 1] != '\n'))
            return make_error("bare CR or LF");
        std::string_view line = head.substr(pos, le == std::string_view::npos ? head.size() - pos : le - pos);
        pos = le == std::string_view::npos ? head.size() : le + 2;
        if (line.find('\n') != std::string_view::npos) return make_error("bare CR or LF");
        if (first) {
            auto r = parse_start_line(line, m.request_, m.method_, m.uri_, m.version_, m.status_, m.reason_);
            if (!r) return r.error();
            first = false;
            continue;
        }
        if (line.empty()) {
            if (pos != head.size()) return make_error("data after end of header section");
            break;
        }
        if (is_ws(line.front())) {
            if (m.headers_.empty()) return make_error("continuation line without header");
            std::string_view more = trim(line);
            std::string& v = m.headers_.back().value;
            if (!more.empty()) {
                if (!v.empty()) v += ' ';
                v += more;
            }
            continue;
        }
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) return make_error("header line without ':'");
        std::string_view name = trim(line.substr(0, colon));
        if (!is_token(name)) return make_error("malformed header name");
        Header h;
        h.id = header_id(name);
        h.name = h.id == HeaderId::other ? std::string(name) : std::string(header_name(h.id));
        h.value = std::string(trim(line.substr(colon + 1)));
        m.headers_.push_back(std::move(h));
    }
    if (first) return make_error("empty message");
    return m;
}

Result<Message> Message::parse(std::string_view bytes) {
    size_t end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos) return make_error("no end of header section");
    auto m = parse_head(bytes.substr(0, end + 2));
    if (!m) return m;
    std::string_view body = bytes.substr(end + 4);
    size_t cl_count = 0;
    for (const auto& h : m->headers_) {
        if (h.id != HeaderId::content_length) continue;
        if (++cl_count > 1) return make_error("more than one Content-Length");
        auto cl = parse_content_length(h.value);
        if (!cl) return make_error("malformed Content-Length");
        if (*cl > body.size()) return make_error("Content-Length larger than the body");
        body = body.substr(0, *cl);
    }
    m->body_ = std::string(body);
    return m;
}

Message Message::request(std::string method, std::string request_uri) {
    Message m;
    m.request_ = true;
    m.method_ = std::move(method);
    m.uri_ = std::move(request_uri);
    return m;
}

Message Message::response(int status, std::string reason) {
    Message m;
    m.request_ = false;
    m.status_ = status;
    m.reason_ = std::move(reason);
    return m;
}

const Header* Message::find(HeaderId id) const {
    for (const auto& h : headers_)
        if (h.id == id) return &h;
    return nullptr;
}

const Header* Message::find(std::string_view name) const {
    HeaderId id = header_id(name);
    if (id != HeaderId::other) return find(id);
    for (const auto& h : headers_)
        if (h.id == HeaderId::other && iequals(h.name, name)) return &h;
    return nullptr;
}

size_t Message::count(HeaderId id) const {
    size_t n = 0;
    for (const auto& h : headers_)
        if (h.id == id) ++n;
    return n;
}

std::vector<std::string_view> Message::values(HeaderId id) const {
    std::vector<std::string_view> out;
    bool split = is_list_header(id);
    for (const auto& h : headers_) {
        if (h.id != id) continue;
        if (split) {
            for (auto v : split_list(h.value))
                out.push_back(v);
        } else {
            out.push_back(h.value);
        }
    }
    return out;
}

void Message::append_header(std::string_view name, std::string value) {
    Header h;
    h.id = header_id(name);
    h.name = h.id == HeaderId::other ? std::string(name) : std::string(header_name(h.id));
    h.value = std::move(value);
    headers_.push_back(std::move(h));
}

void Message::prepend_header(HeaderId id, std::string value) {
    auto it = headers_.begin();
    while (it != headers_.end() && it->id != id)
        ++it;
    if (it == headers_.end()) it = headers_.begin();
    headers_.insert(it, Header{std::string(header_name(id)), std::move(value), id});
}

void Message::set_header(HeaderId id, std::string value) {
    bool done = false;
    for (auto it = headers_.begin(); it != headers_.end();) {
        if (it->id != id) {
            ++it;
        } else if (!done) {
            it->value = std::move(value);
            done = true;
            ++it;
        } else {
            it = headers_.erase(it);
        }
    }
    if (!done) headers_.push_back(Header{std::string(header_name(id)), std::move(value), id});
}

size_t Message::remove_headers(HeaderId id) {
    size_t before = headers_.size();
    std::erase_if(headers_, [id](const Header& h) { return h.id == id; });
    return before - headers_.size();
}

void Message::set_body(std::string body, std::string_view content_type) {
    body_ = std::move(body);
    if (!content_type.empty())
        set_header(HeaderId::content_type, std::string(content_type));
    else if (body_.empty())
        remove_headers(HeaderId::content_type);
}

std::string Message::serialize() const {
    std::string out;
    size_t est = body_.size() + 64 + uri_.size();
    for (const auto& h : headers_)
        est += h.name.size() + h.value.size() + 4;
    out.reserve(est);
    if (request_) {
        out += method_;
        out += ' ';
        out += uri_;
        out += ' ';
        out += version_;
    } else {
        out += version_;
        out += ' ';
        out += std::to_string(status_);
        out += ' ';
        out += reason_;
    }
    out += "\r\n";
    bool cl_written = false;
    auto write_cl = [&] {
        out += "Content-Length: ";
        out += std::to_string(body_.size());
        out += "\r\n";
        cl_written = true;
    };
    for (const auto& h : headers_) {
        if (h.id == HeaderId::content_length) {
            if (!cl_written) write_cl();
            continue;
        }
        out += h.name;
        out += ": ";
        out += h.value;
        out += "\r\n";
    }
    if (!cl_written) write_cl();
    out += "\r\n";
    out += body_;
    return out;
}

namespace {
template <class T> Result<T> parse_single(const Message& m, HeaderId id, const char* what) {
    const Header* h = m.find(id);
    if (!h) return make_error(std::string("missing ") + what);
    return T::parse(h->value);
}
} // namespace

Result<Via> Message::top_via() const {
    const Header* h = find(HeaderId::via);
    if (!h) return make_error("missing Via");
    return Via::parse(first_element(h->value).first);
}

Result<CSeq> Message::cseq() const {
    return parse_single<CSeq>(*this, HeaderId::cseq, "CSeq");
}
Result<NameAddr> Message::from() const {
    return parse_single<NameAddr>(*this, HeaderId::from, "From");
}
Result<NameAddr> Message::to() const {
    return parse_single<NameAddr>(*this, HeaderId::to, "To");
}

} // namespace edgepair::sip
