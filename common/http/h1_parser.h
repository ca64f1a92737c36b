#pragma once
// HTTP/1.1 message parser (requests and responses) for an edge proxy that must never disagree with the
// server behind it about where a message ends. Pure: no I/O, no allocation proportional to the body.
//
// Two parsers must agree on every head: a strict RFC 9112 lexer of ours (CRLF only, no obs-fold, token
// names, no control bytes) and the nodejs http-parser. Debian's libhttp_parser.so is compiled with
// HTTP_PARSER_STRICT=0 (bare LF, obs-fold, "Host :" and a garbage chunk-data terminator are all accepted),
// so body framing (Content-Length counting, chunked decoding) is done here, strictly, and http-parser only
// ever sees complete heads. docs/SECURITY.md lists every rule and the reason for it.
#include "common/core/result.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::http {

struct Header {
    std::string name;
    std::string value;
};

// Field lines in wire order. Names keep their received spelling; lookups ignore case.
class Headers {
  public:
    void add(std::string name, std::string value);
    // Replaces every field named `name` with one field (appended where the first one was, or at the end).
    void set(std::string_view name, std::string value);
    size_t remove(std::string_view name);
    const std::string* find(std::string_view name) const; // first match
    std::vector<std::string_view> find_all(std::string_view name) const;
    size_t count(std::string_view name) const;
    bool has_token(std::string_view name, std::string_view token) const; // comma-list, case-insensitive

    const std::vector<Header>& fields() const { return fields_; }
    size_t size() const { return fields_.size(); }
    bool empty() const { return fields_.empty(); }
    void clear() { fields_.clear(); }
    auto begin() const { return fields_.begin(); }
    auto end() const { return fields_.end(); }

  private:
    std::vector<Header> fields_;
};

bool iequals(std::string_view a, std::string_view b);

struct RequestHead {
    std::string method;
    std::string target; // raw request-target; normalise with url_path before any decision
    int version_minor = 1;
    Headers headers;
};

struct ResponseHead {
    int status = 0;
    std::string reason;
    int version_minor = 1;
    Headers headers;
};

enum class ParseReason : uint8_t {
    None,
    BadRequestLine,
    BadStatusLine,
    BadTarget,
    RequestLineTooLong, // 414
    HeaderTooLarge,     // 431
    TooManyHeaders,     // 431
    BadHeader,          // malformed field line, obs-fold, empty name
    InvalidHeaderChar,  // NUL/CR/LF/CTL in a value, space before colon, non-token name
    BadLineEnding,      // bare LF or bare CR
    SmugglingTeCl,      // both Transfer-Encoding and Content-Length
    DuplicateContentLength,
    BadContentLength,
    BadTransferEncoding,   // anything but exactly "chunked"
    UnknownTransferCoding, // 501
    BadChunk,
    BadHost,
    UnsupportedVersion, // 505
    UnsupportedMethod,  // 501
    BodyTooLarge,       // 413
    Truncated,          // EOF inside a message
    DataAfterClose,     // bytes after a message that ended the connection
    ParserDisagreement, // our lexer and http-parser saw different heads
};

// Stable snake_case label, safe as a metric label value.
std::string_view reason_name(ParseReason r);

struct ParseError {
    ParseReason reason = ParseReason::None;
    int status = 0; // what to answer: request errors 400/413/414/431/501/505, response errors 502
    std::string detail;
    std::string_view name() const { return reason_name(reason); }
};

struct H1Limits {
    size_t max_request_line = 8192;  // request line or status line, without CRLF
    size_t max_header_bytes = 16384; // whole head: start line, field lines, terminators
    size_t max_headers = 100;
    std::optional<uint64_t> max_body; // unset: no limit here (the caller may still stream forever)
    size_t max_chunk_line = 1024;     // chunk-size line including extensions
    size_t max_trailer_bytes = 4096;  // trailer section of a chunked body (validated, then dropped)
    bool require_host = true;         // HTTP/1.1 requests need exactly one Host
};

class H1Parser {
  public:
    enum class Kind { Request, Response };
    enum class Status { NeedMore, HeadersComplete, Body, MessageComplete, Error };
    enum class BodyMode { None, Length, Chunked, UntilClose };

    struct FeedResult {
        size_t consumed = 0;
        Status status = Status::NeedMore;
        std::string_view body; // Status::Body only: a view into the caller's input, never copied
    };

    explicit H1Parser(Kind kind, H1Limits limits = {});
    ~H1Parser();
    H1Parser(const H1Parser&) = delete;
    H1Parser& operator=(const H1Parser&) = delete;
    H1Parser(H1Parser&&) noexcept;
    H1Parser& operator=(H1Parser&&) noexcept;

    // Returns at most one event per call and stops after MessageComplete so that the caller can pause a
    // pipeline. NeedMore means every byte was consumed. Call again with the unconsumed rest (possibly zero
    // bytes: HeadersComplete of a body-less message is followed by MessageComplete without more input).
    FeedResult feed(const char* data, size_t len);
    FeedResult feed(std::string_view s) { return feed(s.data(), s.size()); }
    // The peer closed. Completes a read-until-close response; an unfinished message is an Error.
    FeedResult finish();

    // Response parsing only: the method of the request this response answers (HEAD and CONNECT change
    // framing). Applies to the next response head; reset to GET after each response.
    void set_request_method(std::string_view method);

    Kind kind() const { return kind_; }
    const RequestHead& request() const { return req_; }
    const ResponseHead& response() const { return resp_; }
    const Headers& headers() const { return kind_ == Kind::Request ? req_.headers : resp_.headers; }
    BodyMode body_mode() const { return body_mode_; }
    std::optional<uint64_t> content_length() const { return content_length_; }
    uint64_t body_bytes() const { return body_seen_; }
    // Valid from HeadersComplete on; false once the message has to end the connection.
    bool keep_alive() const { return keep_alive_; }
    bool failed() const { return state_ == State::Failed; }
    const ParseError& error() const { return error_; }
    // True between messages: no byte of a new message has been seen.
    bool idle() const { return state_ == State::Start && head_buf_.empty(); }

  private:
    enum class State {
        Start,
        Head,
        PendingComplete, // head done, no body: next call reports MessageComplete
        BodyLength,
        BodyUntilClose,
        ChunkSize, // accumulating a chunk-size line in line_buf_
        ChunkData,
        ChunkDataCR,
        ChunkDataLF,
        Trailer,
        Closed, // last message ended the connection
        Failed,
    };

    FeedResult fail(ParseReason r, std::string detail, size_t consumed);
    FeedResult feed_head(const char* data, size_t len);
    FeedResult feed_chunked(const char* data, size_t len);
    FeedResult message_done(size_t consumed);
    bool lex_start_line(std::string_view line, ParseReason& reason, std::string& why);
    bool lex_field_line(std::string_view line, std::vector<Header>& out, ParseReason& reason,
                        std::string& why);
    bool head_complete(ParseReason& reason, std::string& why);
    bool run_http_parser(ParseReason& reason, std::string& why);
    bool decide_framing(ParseReason& reason, std::string& why);
    bool chunk_size_line(std::string_view line, ParseReason& reason, std::string& why);
    void start_message();

    Kind kind_;
    H1Limits limits_;
    State state_ = State::Start;
    ParseError error_;

    std::string head_buf_;  // bounded by limits_.max_header_bytes
    size_t line_start_ = 0; // start of the current line in head_buf_
    bool have_start_line_ = false;
    size_t leading_crlf_ = 0;        // tolerated empty lines before a start line
    std::vector<Header> lex_fields_; // our lexer's view, compared against http-parser's

    RequestHead req_;
    ResponseHead resp_;
    std::string response_to_method_ = "GET";
    BodyMode body_mode_ = BodyMode::None;
    std::optional<uint64_t> content_length_;
    uint64_t remaining_ = 0; // Length: bytes left; ChunkData: bytes left in chunk
    uint64_t body_seen_ = 0;
    bool keep_alive_ = true;
    std::string line_buf_; // chunk-size and trailer lines (bounded)
    size_t trailer_bytes_ = 0;

    struct Native; // http-parser state, kept out of this header
    std::unique_ptr<Native> native_;
};

// Serialising heads for the proxy's own writes. Refuses anything that would let a field or the start
// line smuggle a line break or a control byte onto the wire.
Result<std::string> serialize_request_head(const RequestHead& head);
Result<std::string> serialize_response_head(const ResponseHead& head);

bool is_token(std::string_view s);
bool is_field_value(std::string_view s); // VCHAR / obs-text / SP / HTAB, no leading/trailing whitespace

} // namespace edgepair::http
