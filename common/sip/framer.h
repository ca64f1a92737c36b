#pragma once
// Message framing for SIP over a stream transport (TCP, TLS; RFC 3261 18.3): bytes in, complete
// messages out. Content-Length is mandatory on streams, so a message without it cannot be framed and
// the connection has to be closed. CRLF keep-alives (RFC 5626 4.4.1) are reported as events: a
// double CRLF is a "ping" the caller answers with a single CRLF "pong".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgepair::sip {

struct FramerLimits {
    size_t max_message_size = 64 * 1024; // header section + body
    size_t max_headers = 128;            // header fields (continuation lines not counted)
};

enum class FrameErrorCode : uint8_t {
    bad_start_line,         // not SIP at all (TLS record, HTTP, binary garbage)
    bad_header,             // header line without a name/colon, bare CR or LF
    missing_content_length, // mandatory on stream transports
    bad_content_length,     // not 1*DIGIT, or more than one Content-Length
    message_too_large,
    too_many_headers,
};

// Stable label for metrics and logs ("sip_frame_errors_total{reason=...}").
std::string_view metric_label(FrameErrorCode code);

struct FrameError {
    FrameErrorCode code = FrameErrorCode::bad_start_line;
    std::string detail;
    // True when the header section is a request whose start line, Via, Call-ID, CSeq, From and To
    // could be parsed: the caller may answer 400 (Message::parse_head(head) then make_response)
    // before closing (513 Message Too Large fits message_too_large better). The connection must be
    // closed either way: framing is lost.
    bool can_reply_400 = false;
    std::string head; // the header section, set when can_reply_400
};

enum class FrameEventType : uint8_t {
    need_more,      // feed more bytes
    message,        // `message` holds one complete message
    keepalive_ping, // CRLFCRLF: answer with CRLF
    keepalive_pong, // single CRLF between messages (a pong, or ignorable per RFC 3261 7.5)
    error,          // see `error`; the framer stays failed
};

struct FrameEvent {
    FrameEventType type = FrameEventType::need_more;
    std::string_view message; // valid until the next feed() or next()
    size_t head_size = 0;     // bytes of `message` before the body
    const FrameError* error = nullptr;
};

class Framer {
  public:
    explicit Framer(FramerLimits limits = {}) : limits_(limits) {}

    void feed(std::string_view bytes);
    // Call until it returns need_more (or error).
    FrameEvent next();

    bool failed() const { return failed_; }
    size_t buffered() const { return buf_.size() - pos_; }

  private:
    FrameEvent fail(FrameErrorCode code, std::string detail, std::string_view head = {});
    FrameEvent parse_head(size_t head_len);

    FramerLimits limits_;
    std::string buf_;
    size_t pos_ = 0;        // start of the unconsumed data
    size_t scan_ = 0;       // where the search for the end of the header section resumes
    size_t line_scan_ = 0;  // where the search for the end of the start line resumes (from pos_)
    bool start_ok_ = false; // the current message's start line is complete and plausible
    size_t head_len_ = 0;   // 0 while the header section is incomplete
    size_t body_len_ = 0;
    bool failed_ = false;
    FrameError error_;
};

} // namespace edgepair::sip
