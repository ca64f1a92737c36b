#include "common/http/h1_parser.h"

#include <http_parser.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace edgepair::http {

namespace {

constexpr size_t kMaxLeadingEmptyLines = 4; // RFC 9112 2.2: ignore at least one; more is noise or attack

bool is_tchar(unsigned char c) {
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

bool is_vchar_or_obs(unsigned char c) {
    return (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}
bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back()))
        s.remove_suffix(1);
    return s;
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Comma-separated list elements, OWS-trimmed. Empty elements are kept so that callers can reject them.
std::vector<std::string_view> split_list(std::string_view v) {
    std::vector<std::string_view> out;
    size_t start = 0;
    while (true) {
        size_t comma = v.find(',', start);
        out.push_back(trim_ows(v.substr(start, comma == std::string_view::npos ? v.npos : comma - start)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

// Framing fields get no whitespace latitude: at most one SP after the colon, nothing after the value.
// Whitespace handling is exactly where a front and a back parser diverge ("chunked\t", "  chunked").
bool framing_value_clean(std::string_view raw) {
    if (!raw.empty() && raw.front() == ' ') raw.remove_prefix(1);
    return !raw.empty() && !is_ows(raw.front()) && !is_ows(raw.back());
}

bool parse_version(std::string_view v, int& minor, bool& supported) {
    // HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive)
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return false;
    if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return false;
    minor = v[7] - '0';
    supported = v[5] == '1' && (v[7] == '0' || v[7] == '1');
    return true;
}

bool valid_host_value(std::string_view h) {
    if (h.empty()) return false;
    size_t i = 0;
    if (h[0] == '[') {
        size_t close = h.find(']');
        if (close == std::string_view::npos || close < 3) return false;
        for (size_t k = 1; k < close; ++k) {
            char c = h[k];
            if (!(hexval(c) >= 0 || c == ':' || c == '.')) return false;
        }
        i = close + 1;
    } else {
        while (i < h.size() && h[i] != ':') {
            unsigned char c = static_cast<unsigned char>(h[i]);
            bool ok = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
            if (!ok) return false;
            ++i;
        }
        if (i == 0) return false;
    }
    if (i == h.size()) return true;
    if (h[i] != ':') return false;
    std::string_view port = h.substr(i + 1);
    if (port.empty() || port.size() > 5) return false;
    return std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int status_for(ParseReason r) {
    switch (r) {
    case ParseReason::RequestLineTooLong:
        return 414;
    case ParseReason::HeaderTooLarge:
    case ParseReason::TooManyHeaders:
        return 431;
    case ParseReason::UnknownTransferCoding:
    case ParseReason::UnsupportedMethod:
        return 501;
    case ParseReason::UnsupportedVersion:
        return 505;
    case ParseReason::BodyTooLarge:
        return 413;
    default:
        return 400;
    }
}

ParseReason map_errno(http_errno e) {
    switch (e) {
    case HPE_INVALID_METHOD:
        return ParseReason::UnsupportedMethod;
    case HPE_INVALID_VERSION:
        return ParseReason::UnsupportedVersion;
    case HPE_INVALID_STATUS:
        return ParseReason::BadStatusLine;
    case HPE_INVALID_URL:
    case HPE_INVALID_HOST:
    case HPE_INVALID_PORT:
    case HPE_INVALID_PATH:
    case HPE_INVALID_QUERY_STRING:
    case HPE_INVALID_FRAGMENT:
        return ParseReason::BadTarget;
    case HPE_LF_EXPECTED:
        return ParseReason::BadLineEnding;
    case HPE_INVALID_HEADER_TOKEN:
        return ParseReason::InvalidHeaderChar;
    case HPE_INVALID_CONTENT_LENGTH:
        return ParseReason::BadContentLength;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        return ParseReason::DuplicateContentLength;
    case HPE_INVALID_TRANSFER_ENCODING:
        return ParseReason::BadTransferEncoding;
    case HPE_HEADER_OVERFLOW:
        return ParseReason::HeaderTooLarge;
    default:
        return ParseReason::ParserDisagreement;
    }
}

} // namespace

// ---- Headers ----------------------------------------------------------------------------------------

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

void Headers::add(std::string name, std::string value) {
    // A request or response head has about a dozen fields: one allocation up front instead of the four or
    // five growth steps (each moving every field) that callgrind showed per proxied request.
    if (fields_.capacity() == 0) fields_.reserve(16);
    fields_.push_back(Header{std::move(name), std::move(value)});
}

void Headers::set(std::string_view name, std::string value) {
    auto it =
        std::find_if(fields_.begin(), fields_.end(), [&](const Header& h) { return iequals(h.name, name); });
    if (it == fields_.end()) {
        fields_.push_back(Header{std::string(name), std::move(value)});
        return;
    }
    it->value = std::move(value);
    auto first = it - fields_.begin();
    fields_.erase(std::remove_if(fields_.begin() + first + 1, fields_.end(),
                                 [&](const Header& h) { return iequals(h.name, name); }),
                  fields_.end());
}

size_t Headers::remove(std::string_view name) {
    size_t before = fields_.size();
    fields_.erase(std::remove_if(fields_.begin(), fields_.end(),
                                 [&](const Header& h) { return iequals(h.name, name); }),
                  fields_.end());
    return before - fields_.size();
}

const std::string* Headers::find(std::string_view name) const {
    for (const auto& h : fields_)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

std::vector<std::string_view> Headers::find_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& h : fields_)
        if (iequals(h.name, name)) out.emplace_back(h.value);
    return out;
}

size_t Headers::count(std::string_view name) const {
    return static_cast<size_t>(std::count_if(fields_.begin(), fields_.end(),
                                             [&](const Header& h) { return iequals(h.name, name); }));
}

bool Headers::has_token(std::string_view name, std::string_view token) const {
    for (const auto& h : fields_) {
        if (!iequals(h.name, name)) continue;
        for (auto t : split_list(h.value))
            if (iequals(t, token)) return true;
    }
    return false;
}

bool is_token(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

bool is_field_value(std::string_view s) {
    if (!s.empty() && (is_ows(s.front()) || is_ows(s.back()))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return is_vchar_or_obs(u) || c == ' ' || c == '\t';
    });
}

std::string_view reason_name(ParseReason r) {
    switch (r) {
    case ParseReason::None:
        return "none";
    case ParseReason::BadRequestLine:
        return "bad_request_line";
    case ParseReason::BadStatusLine:
        return "bad_status_line";
    case ParseReason::BadTarget:
        return "bad_target";
    case ParseReason::RequestLineTooLong:
        return "request_line_too_long";
    case ParseReason::HeaderTooLarge:
        return "header_too_large";
    case ParseReason::TooManyHeaders:
        return "too_many_headers";
    case ParseReason::BadHeader:
        return "bad_header";
    case ParseReason::InvalidHeaderChar:
        return "invalid_header_char";
    case ParseReason::BadLineEnding:
        return "bad_line_ending";
    case ParseReason::SmugglingTeCl:
        return "smuggling_te_cl";
    case ParseReason::DuplicateContentLength:
        return "duplicate_content_length";
    case ParseReason::BadContentLength:
        return "bad_content_length";
    case ParseReason::BadTransferEncoding:
        return "bad_transfer_encoding";
    case ParseReason::UnknownTransferCoding:
        return "unknown_transfer_coding";
    case ParseReason::BadChunk:
        return "bad_chunk";
    case ParseReason::BadHost:
        return "bad_host";
    case ParseReason::UnsupportedVersion:
        return "unsupported_version";
    case ParseReason::UnsupportedMethod:
        return "unsupported_method";
    case ParseReason::BodyTooLarge:
        return "body_too_large";
    case ParseReason::Truncated:
        return "truncated";
    case ParseReason::DataAfterClose:
        return "data_after_close";
    case ParseReason::ParserDisagreement:
        return "parser_disagreement";
    }
    return "unknown";
}

// ---- http-parser glue -------------------------------------------------------------------------------

struct H1Parser::Native {
    http_parser parser{};
    http_parser_settings settings{};
    std::string url;
    std::vector<Header> fields;
    bool last_was_value = false;
    bool headers_done = false;

    static Native* self(http_parser* p) { return static_cast<Native*>(p->data); }

    Native() {
        fields.reserve(16); // as Headers::add: one allocation rather than several growth steps per head
        http_parser_settings_init(&settings);
        settings.on_url = [](http_parser* p, const char* at, size_t n) {
            self(p)->url.append(at, n);
            return 0;
        };
        settings.on_header_field = [](http_parser* p, const char* at, size_t n) {
            Native* s = self(p);
            if (s->fields.empty() || s->last_was_value) s->fields.emplace_back();
            s->fields.back().name.append(at, n);
            s->last_was_value = false;
            return 0;
        };
        settings.on_header_value = [](http_parser* p, const char* at, size_t n) {
            Native* s = self(p);
            if (s->fields.empty()) return 1;
            s->fields.back().value.append(at, n);
            s->last_was_value = true;
            return 0;
        };
        // 1 = "no body": framing is ours, http-parser only ever sees heads.
        settings.on_headers_complete = [](http_parser* p) {
            self(p)->headers_done = true;
            return 1;
        };
    }

    void reset(http_parser_type type) {
        http_parser_init(&parser, type);
        parser.data = this;
        url.clear();
        fields.clear();
        last_was_value = false;
        headers_done = false;
    }
};

// ---- H1Parser ---------------------------------------------------------------------------------------

H1Parser::H1Parser(Kind kind, H1Limits limits)
    : kind_(kind), limits_(limits), native_(std::make_unique<Native>()) {
    lex_fields_.reserve(16); // a parser often reads one head only (an upstream exchange): no growth steps
}
H1Parser::~H1Parser() = default;
H1Parser::H1Parser(H1Parser&&) noexcept = default;
H1Parser& H1Parser::operator=(H1Parser&&) noexcept = default;

void H1Parser::set_request_method(std::string_view method) {
    response_to_method_ = std::string(method);
}

H1Parser::FeedResult H1Parser::fail(ParseReason r, std::string detail, size_t consumed) {
    state_ = State::Failed;
    keep_alive_ = false;
    error_.reason = r;
    error_.status = kind_ == Kind::Request ? status_for(r) : 502;
    error_.detail = std::move(detail);
    return FeedResult{consumed, Status::Error, {}};
}

void H1Parser::start_message() {
    head_buf_.clear();
    line_start_ = 0;
    have_start_line_ = false;
    lex_fields_.clear();
    req_ = RequestHead{};
    resp_ = ResponseHead{};
    body_mode_ = BodyMode::None;
    content_length_.reset();
    remaining_ = 0;
    body_seen_ = 0;
    keep_alive_ = true;
    line_buf_.clear();
    trailer_bytes_ = 0;
}

H1Parser::FeedResult H1Parser::feed(const char* data, size_t len) {
    if (len == 0) data = ""; // a null pointer with zero length is legal input
    switch (state_) {
    case State::Failed:
        return FeedResult{0, Status::Error, {}};
    case State::Closed:
        if (len == 0) return FeedResult{0, Status::NeedMore, {}};
        return fail(ParseReason::DataAfterClose, "bytes after a message that closes the connection", 0);
    case State::Start:
    case State::Head:
        return feed_head(data, len);
    case State::PendingComplete:
        return message_done(0);
    case State::BodyLength: {
        if (remaining_ == 0) return message_done(0);
        if (len == 0) return FeedResult{0, Status::NeedMore, {}};
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, len));
        remaining_ -= n;
        body_seen_ += n;
        return FeedResult{n, Status::Body, std::string_view(data, n)};
    }
    case State::BodyUntilClose: {
        if (len == 0) return FeedResult{0, Status::NeedMore, {}};
        if (limits_.max_body && body_seen_ + len > *limits_.max_body)
            return fail(ParseReason::BodyTooLarge, "body exceeds the limit", 0);
        body_seen_ += len;
        return FeedResult{len, Status::Body, std::string_view(data, len)};
    }
    case State::ChunkSize:
    case State::ChunkData:
    case State::ChunkDataCR:
    case State::ChunkDataLF:
    case State::Trailer:
        return feed_chunked(data, len);
    }
    return fail(ParseReason::ParserDisagreement, "unreachable state", 0);
}

H1Parser::FeedResult H1Parser::finish() {
    switch (state_) {
    case State::Failed:
        return FeedResult{0, Status::Error, {}};
    case State::Closed:
        return FeedResult{0, Status::NeedMore, {}};
    case State::Start:
        return FeedResult{0, Status::NeedMore, {}};
    case State::Head:
        // Stray CRLFs after a message (some clients add one after a POST body) are not a message.
        if (!have_start_line_ && head_buf_.find_first_not_of('\r') == std::string::npos) {
            state_ = State::Closed;
            return FeedResult{0, Status::NeedMore, {}};
        }
        return fail(ParseReason::Truncated, "connection closed inside a head", 0);
    case State::PendingComplete:
        return message_done(0);
    case State::BodyLength:
        if (remaining_ == 0) return message_done(0);
        return fail(ParseReason::Truncated, "connection closed inside a body", 0);
    case State::BodyUntilClose:
        keep_alive_ = false;
        return message_done(0);
    default:
        return fail(ParseReason::Truncated, "connection closed inside a message", 0);
    }
}

H1Parser::FeedResult H1Parser::message_done(size_t consumed) {
    bool interim =
        kind_ == Kind::Response && resp_.status >= 100 && resp_.status < 200 && resp_.status != 101;
    if (kind_ == Kind::Response && !interim) response_to_method_ = "GET";
    state_ = keep_alive_ ? State::Start : State::Closed;
    // The parsed head stays readable until the first byte of the next message arrives.
    head_buf_.clear();
    return FeedResult{consumed, Status::MessageComplete, {}};
}

H1Parser::FeedResult H1Parser::feed_head(const char* data, size_t len) {
    if (state_ == State::Start) {
        if (len == 0) return FeedResult{0, Status::NeedMore, {}};
        start_message();
        state_ = State::Head;
    }
    size_t i = 0;
    while (i < len) {
        const void* lf = std::memchr(data + i, '\n', len - i);
        size_t take = lf ? static_cast<size_t>(static_cast<const char*>(lf) - (data + i)) + 1 : len - i;
        size_t line_len_after = head_buf_.size() - line_start_ + take;
        if (!have_start_line_ && line_len_after > limits_.max_request_line + 2) {
            return fail(kind_ == Kind::Request ? ParseReason::RequestLineTooLong : ParseReason::BadStatusLine,
                        "start line too long", i);
        }
        if (head_buf_.size() + take > limits_.max_header_bytes)
            return fail(ParseReason::HeaderTooLarge, "header section too large", i);
        head_buf_.append(data + i, take);
        i += take;
        if (!lf) break;

        std::string_view line(head_buf_.data() + line_start_, head_buf_.size() - line_start_ - 1);
        if (line.empty() || line.back() != '\r') return fail(ParseReason::BadLineEnding, "bare LF", i);
        line.remove_suffix(1);
        if (line.find('\r') != std::string_view::npos) return fail(ParseReason::BadLineEnding, "bare CR", i);

        ParseReason reason = ParseReason::None;
        std::string why;
        if (!have_start_line_) {
            if (line.empty()) {
                if (++leading_crlf_ > kMaxLeadingEmptyLines)
                    return fail(ParseReason::BadRequestLine, "too many empty lines before the start line", i);
                head_buf_.clear();
                line_start_ = 0;
                continue;
            }
            if (!lex_start_line(line, reason, why)) return fail(reason, why, i);
            have_start_line_ = true;
        } else if (line.empty()) {
            leading_crlf_ = 0;
            if (!head_complete(reason, why)) return fail(reason, why, i);
            return FeedResult{i, Status::HeadersComplete, {}};
        } else {
            if (!lex_field_line(line, lex_fields_, reason, why)) return fail(reason, why, i);
            if (lex_fields_.size() > limits_.max_headers)
                return fail(ParseReason::TooManyHeaders, "too many header fields", i);
        }
        line_start_ = head_buf_.size();
    }
    return FeedResult{len, Status::NeedMore, {}};
}

bool H1Parser::lex_start_line(std::string_view line, ParseReason& reason, std::string& why) {
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (kind_ == Kind::Request) {
        reason = ParseReason::BadRequestLine;
        if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
            line.find(' ', sp2 + 1) != std::string_view::npos) {
            why = "request line is not 'method SP target SP version'";
            return false;
        }
        std::string_view method = line.substr(0, sp1);
        std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        std::string_view version = line.substr(sp2 + 1);
        if (!is_token(method)) {
            why = "method is not a token";
            return false;
        }
        if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
                return static_cast<unsigned char>(c) >= 0x21 && static_cast<unsigned char>(c) <= 0x7e;
            })) {
            reason = ParseReason::BadTarget;
            why = "request-target has a byte outside visible ASCII";
            return false;
        }
        bool supported = false;
        if (!parse_version(version, req_.version_minor, supported)) {
            why = "malformed HTTP version";
            return false;
        }
        if (!supported) {
            reason = ParseReason::UnsupportedVersion;
            why = "only HTTP/1.0 and HTTP/1.1";
            return false;
        }
        if (method == "CONNECT") {
            // Tunnels are not part of MRA; authority-form would bypass path policy entirely.
            reason = ParseReason::UnsupportedMethod;
            why = "CONNECT is not supported";
            return false;
        }
        if (target == "*" ? method != "OPTIONS" : target[0] != '/' && target.find("://") == target.npos) {
            reason = ParseReason::BadTarget;
            why = "request-target form not allowed for this method";
            return false;
        }
        req_.method = std::string(method);
        req_.target = std::string(target);
        return true;
    }

    reason = ParseReason::BadStatusLine;
    // status-line = HTTP-version SP 3DIGIT SP [reason]; some servers omit the second SP when the reason
    // is empty, which is harmless.
    if (sp1 != 8) {
        why = "malformed status line";
        return false;
    }
    bool supported = false;
    if (!parse_version(line.substr(0, 8), resp_.version_minor, supported)) {
        why = "malformed HTTP version";
        return false;
    }
    if (!supported) {
        reason = ParseReason::UnsupportedVersion;
        why = "only HTTP/1.0 and HTTP/1.1";
        return false;
    }
    std::string_view rest = line.substr(9);
    if (rest.size() < 3 || !(rest.size() == 3 || rest[3] == ' ')) {
        why = "malformed status code";
        return false;
    }
    int code = 0;
    for (int k = 0; k < 3; ++k) {
        if (rest[k] < '0' || rest[k] > '9') {
            why = "malformed status code";
            return false;
        }
        code = code * 10 + (rest[k] - '0');
    }
    if (code < 100 || code > 599) {
        why = "status code out of range";
        return false;
    }
    std::string_view phrase = rest.size() > 3 ? rest.substr(4) : std::string_view{};
    if (!std::all_of(phrase.begin(), phrase.end(), [](char c) {
            return is_vchar_or_obs(static_cast<unsigned char>(c)) || c == ' ' || c == '\t';
        })) {
        why = "control byte in reason phrase";
        return false;
    }
    resp_.status = code;
    resp_.reason = std::string(phrase);
    return true;
}

bool H1Parser::lex_field_line(std::string_view line, std::vector<Header>& out, ParseReason& reason,
                              std::string& why) {
    if (is_ows(line.front())) {
        reason = ParseReason::BadHeader;
        why = "obs-fold (line folding) is rejected";
        return false;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        reason = ParseReason::BadHeader;
        why = "field line without a name and colon";
        return false;
    }
    std::string_view name = line.substr(0, colon);
    if (is_ows(name.back())) {
        reason = ParseReason::InvalidHeaderChar;
        why = "whitespace before colon";
        return false;
    }
    if (!is_token(name)) {
        reason = ParseReason::InvalidHeaderChar;
        why = "field name is not a token";
        return false;
    }
    std::string_view raw = line.substr(colon + 1);
    for (char c : raw) {
        auto u = static_cast<unsigned char>(c);
        if (!(is_vchar_or_obs(u) || c == ' ' || c == '\t')) {
            reason = ParseReason::InvalidHeaderChar;
            why = "control byte in field value";
            return false;
        }
    }
    bool framing = iequals(name, "transfer-encoding") || iequals(name, "content-length");
    if (framing && !framing_value_clean(raw)) {
        reason = iequals(name, "content-length") ? ParseReason::BadContentLength
                                                 : ParseReason::BadTransferEncoding;
        why = "whitespace around a framing field value";
        return false;
    }
    out.push_back(Header{std::string(name), std::string(trim_ows(raw))});
    return true;
}

bool H1Parser::head_complete(ParseReason& reason, std::string& why) {
    if (!decide_framing(reason, why)) return false;
    if (!run_http_parser(reason, why)) return false;
    Headers& h = kind_ == Kind::Request ? req_.headers : resp_.headers;
    for (auto& f : lex_fields_)
        h.add(std::move(f.name), std::move(f.value));
    lex_fields_.clear();

    switch (body_mode_) {
    case BodyMode::None:
        state_ = State::PendingComplete;
        break;
    case BodyMode::Length:
        state_ = State::BodyLength;
        break;
    case BodyMode::Chunked:
        state_ = State::ChunkSize;
        break;
    case BodyMode::UntilClose:
        state_ = State::BodyUntilClose;
        break;
    }
    return true;
}

bool H1Parser::decide_framing(ParseReason& reason, std::string& why) {
    auto named = [&](std::string_view n) {
        std::vector<std::string_view> v;
        for (const auto& f : lex_fields_)
            if (iequals(f.name, n)) v.emplace_back(f.value);
        return v;
    };
    const bool request = kind_ == Kind::Request;
    const int minor = request ? req_.version_minor : resp_.version_minor;

    if (request) {
        auto hosts = named("host");
        if (hosts.size() > 1) {
            reason = ParseReason::BadHost;
            why = "more than one Host";
            return false;
        }
        if (hosts.empty() && minor == 1 && limits_.require_host) {
            reason = ParseReason::BadHost;
            why = "HTTP/1.1 request without Host";
            return false;
        }
        if (!hosts.empty() && !valid_host_value(hosts[0])) {
            reason = ParseReason::BadHost;
            why = "malformed Host";
            return false;
        }
    }

    auto te = named("transfer-encoding");
    auto cl = named("content-length");
    bool chunked = false;
    if (!te.empty()) {
        if (!cl.empty()) {
            reason = ParseReason::SmugglingTeCl;
            why = "both Transfer-Encoding and Content-Length";
            return false;
        }
        if (minor == 0) {
            reason = ParseReason::BadTransferEncoding;
            why = "Transfer-Encoding in an HTTP/1.0 message";
            return false;
        }
        std::vector<std::string_view> codings;
        for (auto v : te)
            for (auto c : split_list(v))
                codings.push_back(c);
        for (size_t k = 0; k < codings.size(); ++k) {
            auto c = codings[k];
            if (c.empty() || !is_token(c)) {
                reason = ParseReason::BadTransferEncoding;
                why = "malformed transfer-coding list";
                return false;
            }
            if (iequals(c, "chunked")) {
                if (k + 1 != codings.size()) {
                    reason = ParseReason::BadTransferEncoding;
                    why = "chunked is not the final (and only) coding";
                    return false;
                }
                chunked = true;
            } else {
                reason = iequals(c, "identity") ? ParseReason::BadTransferEncoding
                                                : ParseReason::UnknownTransferCoding;
                why = "transfer-coding other than chunked";
                return false;
            }
        }
    }

    if (!cl.empty()) {
        if (cl.size() > 1 || cl[0].find(',') != std::string_view::npos) {
            reason = ParseReason::DuplicateContentLength;
            why = "more than one Content-Length";
            return false;
        }
        uint64_t n = 0;
        auto v = cl[0];
        if (v.empty() || v.size() > 19) {
            reason = ParseReason::BadContentLength;
            why = "Content-Length empty or too long";
            return false;
        }
        for (char c : v) {
            if (c < '0' || c > '9') {
                reason = ParseReason::BadContentLength;
                why = "Content-Length is not 1*DIGIT";
                return false;
            }
            n = n * 10 + static_cast<uint64_t>(c - '0'); // 19 digits cannot overflow uint64
        }
        content_length_ = n;
    }

    bool no_body = false;
    if (!request) {
        int s = resp_.status;
        no_body = (s >= 100 && s < 200) || s == 204 || s == 304 || iequals(response_to_method_, "HEAD");
    }

    if (no_body) {
        body_mode_ = BodyMode::None;
    } else if (chunked) {
        body_mode_ = BodyMode::Chunked;
    } else if (content_length_) {
        body_mode_ = *content_length_ == 0 ? BodyMode::None : BodyMode::Length;
        remaining_ = *content_length_;
    } else {
        body_mode_ = request ? BodyMode::None : BodyMode::UntilClose;
    }

    if (body_mode_ == BodyMode::Length && limits_.max_body && *content_length_ > *limits_.max_body) {
        reason = ParseReason::BodyTooLarge;
        why = "Content-Length exceeds the limit";
        return false;
    }

    bool close = false, ka = false;
    for (auto v : named("connection")) {
        for (auto t : split_list(v)) {
            if (iequals(t, "close")) close = true;
            if (iequals(t, "keep-alive")) ka = true;
        }
    }
    keep_alive_ = !close && (minor == 1 || ka);
    if (body_mode_ == BodyMode::UntilClose) keep_alive_ = false;
    if (!request && resp_.status == 101) keep_alive_ = false; // the bytes that follow are not HTTP
    return true;
}

bool H1Parser::run_http_parser(ParseReason& reason, std::string& why) {
    Native& n = *native_;
    n.reset(kind_ == Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE);
    size_t done = http_parser_execute(&n.parser, &n.settings, head_buf_.data(), head_buf_.size());
    auto err = HTTP_PARSER_ERRNO(&n.parser);
    if (err != HPE_OK) {
        reason = map_errno(err);
        why = std::string("http-parser: ") + http_errno_name(err);
        return false;
    }
    reason = ParseReason::ParserDisagreement;
    if (!n.headers_done || done != head_buf_.size()) {
        why = "http-parser did not end the head where we did";
        return false;
    }
    if (n.fields.size() != lex_fields_.size()) {
        why = "different number of header fields";
        return false;
    }
    for (size_t k = 0; k < n.fields.size(); ++k) {
        if (n.fields[k].name != lex_fields_[k].name || trim_ows(n.fields[k].value) != lex_fields_[k].value) {
            why = "different header field";
            return false;
        }
    }
    if (n.parser.http_major != 1) {
        why = "different version";
        return false;
    }
    if (kind_ == Kind::Request) {
        if (n.url != req_.target ||
            req_.method != http_method_str(static_cast<http_method>(n.parser.method)) ||
            n.parser.http_minor != req_.version_minor) {
            why = "different request line";
            return false;
        }
    } else if (static_cast<int>(n.parser.status_code) != resp_.status ||
               n.parser.http_minor != resp_.version_minor) {
        why = "different status line";
        return false;
    }
    reason = ParseReason::None;
    return true;
}

bool H1Parser::chunk_size_line(std::string_view line, ParseReason& reason, std::string& why) {
    reason = ParseReason::BadChunk;
    size_t i = 0;
    uint64_t size = 0;
    while (i < line.size() && hexval(line[i]) >= 0) {
        if (size > (std::numeric_limits<uint64_t>::max() >> 4)) {
            why = "chunk size overflows";
            return false;
        }
        size = (size << 4) | static_cast<uint64_t>(hexval(line[i]));
        ++i;
    }
    if (i == 0) {
        why = "chunk size is not hex";
        return false;
    }
    // chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ), without the BWS RFC 9112 tolerates.
    while (i < line.size()) {
        if (line[i] != ';') {
            why = "junk after chunk size";
            return false;
        }
        ++i;
        size_t s = i;
        while (i < line.size() && is_tchar(static_cast<unsigned char>(line[i])))
            ++i;
        if (i == s) {
            why = "empty chunk extension name";
            return false;
        }
        if (i < line.size() && line[i] == '=') {
            ++i;
            if (i < line.size() && line[i] == '"') {
                ++i;
                bool closed = false;
                while (i < line.size()) {
                    auto c = static_cast<unsigned char>(line[i]);
                    if (c == '"') {
                        closed = true;
                        ++i;
                        break;
                    }
                    if (c == '\\') {
                        if (++i >= line.size()) break;
                        c = static_cast<unsigned char>(line[i]);
                    }
                    if (!(is_vchar_or_obs(c) || c == ' ' || c == '\t')) break;
                    ++i;
                }
                if (!closed) {
                    why = "bad quoted chunk extension value";
                    return false;
                }
            } else {
                s = i;
                while (i < line.size() && is_tchar(static_cast<unsigned char>(line[i])))
                    ++i;
                if (i == s) {
                    why = "empty chunk extension value";
                    return false;
                }
            }
        }
    }
    if (size == 0) {
        state_ = State::Trailer;
        return true;
    }
    if (limits_.max_body && (size > *limits_.max_body || body_seen_ > *limits_.max_body - size)) {
        reason = ParseReason::BodyTooLarge;
        why = "chunked body exceeds the limit";
        return false;
    }
    remaining_ = size;
    state_ = State::ChunkData;
    return true;
}

H1Parser::FeedResult H1Parser::feed_chunked(const char* data, size_t len) {
    size_t i = 0;
    while (true) {
        switch (state_) {
        case State::ChunkData: {
            if (i == len) return FeedResult{len, Status::NeedMore, {}};
            if (remaining_ == 0) {
                state_ = State::ChunkDataCR;
                continue;
            }
            size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, len - i));
            remaining_ -= n;
            body_seen_ += n;
            if (remaining_ == 0) state_ = State::ChunkDataCR;
            return FeedResult{i + n, Status::Body, std::string_view(data + i, n)};
        }
        case State::ChunkDataCR:
        case State::ChunkDataLF: {
            if (i == len) return FeedResult{len, Status::NeedMore, {}};
            char want = state_ == State::ChunkDataCR ? '\r' : '\n';
            if (data[i] != want) return fail(ParseReason::BadChunk, "chunk data not followed by CRLF", i);
            ++i;
            state_ = state_ == State::ChunkDataCR ? State::ChunkDataLF : State::ChunkSize;
            continue;
        }
        case State::ChunkSize:
        case State::Trailer: {
            if (i == len) return FeedResult{len, Status::NeedMore, {}};
            const bool trailer = state_ == State::Trailer;
            const void* lf = std::memchr(data + i, '\n', len - i);
            size_t take = lf ? static_cast<size_t>(static_cast<const char*>(lf) - (data + i)) + 1 : len - i;
            size_t cap = trailer
                             ? limits_.max_trailer_bytes - std::min(trailer_bytes_, limits_.max_trailer_bytes)
                             : limits_.max_chunk_line + 2;
            if (line_buf_.size() + take > cap)
                return fail(trailer ? ParseReason::HeaderTooLarge : ParseReason::BadChunk,
                            trailer ? "trailer section too large" : "chunk size line too long", i);
            line_buf_.append(data + i, take);
            i += take;
            if (!lf) return FeedResult{len, Status::NeedMore, {}};
            std::string_view line(line_buf_.data(), line_buf_.size() - 1);
            if (line.empty() || line.back() != '\r')
                return fail(trailer ? ParseReason::BadLineEnding : ParseReason::BadChunk,
                            "bare LF in chunked body", i);
            line.remove_suffix(1);
            if (line.find('\r') != std::string_view::npos)
                return fail(trailer ? ParseReason::BadLineEnding : ParseReason::BadChunk,
                            "bare CR in chunked body", i);
            ParseReason reason = ParseReason::None;
            std::string why;
            if (!trailer) {
                bool ok = chunk_size_line(line, reason, why);
                line_buf_.clear();
                if (!ok) return fail(reason, why, i);
                continue;
            }
            trailer_bytes_ += line_buf_.size();
            if (line.empty()) {
                line_buf_.clear();
                return message_done(i);
            }
            // Trailer fields are validated like header fields and then dropped: a proxy may discard them
            // (RFC 9110 6.5.1), and forwarding them would let a late Content-Length or Host reach a
            // backend that merges trailers into headers.
            std::vector<Header> sink;
            bool ok = lex_field_line(line, sink, reason, why);
            line_buf_.clear();
            if (!ok) return fail(reason, why, i);
            continue;
        }
        default:
            return fail(ParseReason::ParserDisagreement, "unexpected state in chunked body", i);
        }
    }
}

// ---- serialisation ----------------------------------------------------------------------------------

namespace {

Result<void> append_fields(std::string& out, const Headers& headers) {
    for (const auto& h : headers) {
        if (!is_token(h.name)) return make_error("invalid header name: " + h.name);
        if (!is_field_value(h.value)) return make_error("invalid value for header " + h.name);
        out += h.name;
        out += ": ";
        out += h.value;
        out += "\r\n";
    }
    out += "\r\n";
    return {};
}

} // namespace

Result<std::string> serialize_request_head(const RequestHead& head) {
    if (!is_token(head.method)) return make_error("invalid method");
    if (head.target.empty() || !std::all_of(head.target.begin(), head.target.end(), [](char c) {
            return static_cast<unsigned char>(c) >= 0x21 && static_cast<unsigned char>(c) <= 0x7e;
        }))
        return make_error("invalid request-target");
    if (head.version_minor != 0 && head.version_minor != 1) return make_error("unsupported version");
    std::string out;
    out.reserve(64 + head.target.size() + head.headers.size() * 32);
    out += head.method;
    out += ' ';
    out += head.target;
    out += head.version_minor == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n";
    if (auto r = append_fields(out, head.headers); !r) return r.error();
    return out;
}

Result<std::string> serialize_response_head(const ResponseHead& head) {
    if (head.status < 100 || head.status > 599) return make_error("invalid status code");
    if (head.version_minor != 0 && head.version_minor != 1) return make_error("unsupported version");
    if (!std::all_of(head.reason.begin(), head.reason.end(), [](char c) {
            return is_vchar_or_obs(static_cast<unsigned char>(c)) || c == ' ' || c == '\t';
        }))
        return make_error("invalid reason phrase");
    std::string out;
    out.reserve(64 + head.headers.size() * 32);
    out += head.version_minor == 1 ? "HTTP/1.1 " : "HTTP/1.0 ";
    out += std::to_string(head.status);
    out += ' ';
    out += head.reason;
    out += "\r\n";
    if (auto r = append_fields(out, head.headers); !r) return r.error();
    return out;
}

} // namespace edgepair::http
