#pragma once
// Message framing for SIP over a stream transport (TCP, TLS; RFC 3261 18.3): bytes in, complete
// messages out. Content-Length is mandatory on streams, so a message without it cannot be framed and
// the connection has to be closed. CRLF keep-alives (RFC 5626 4.4.1) are reported as events: a
// double CRLF is a "ping" the caller answers with a single CRLF "pong".
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace edgepair::sip {

struct FramerLimits {
    size_t max_message_size = 64 * 1024; // header section + body
    size_t max_headers = 128;            // header fields (continuation lines not counted)
    // Recover from errors that leave the message boundary known (issue #14 items 7 and 10): a message
    // over max_message_size or max_headers, or with a malformed header line, is reported as a non-fatal
    // error, its bytes are skipped and framing goes on with the next message. A connection shared by many
    // flows (edge-c to a Unified CM node) then loses one message instead of every flow. Off, every error
    // is fatal, as a connection that is closed on any error wants.
    bool recover = false;
    // Report STUN messages between SIP messages (RFC 5626 4.4.2 keep-alives, common/sip/stun.h) instead of
    // failing on them as a bad start line. On for client flows only.
    bool stun = false;
};

// What a recovering framer skips at most: beyond this the peer is not sending SIP, and skipping would
// only let it hold the connection busy. A header section without its end is cut at kMaxSkippedHead.
inline constexpr size_t kMaxSkippedHead = 1024 * 1024;
inline constexpr size_t kMaxSkippedMessage = 16 * 1024 * 1024;

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
    // False: the message was skipped and framing goes on (FramerLimits::recover). True: framing is
    // lost, the framer stays failed and the connection must be closed.
    bool fatal = true;
    // True when the header section is a request whose start line, Via, Call-ID, CSeq, From and To
    // could be parsed: the caller may answer reply_status(code) (Message::parse_head(head) then
    // make_response), before closing when fatal.
    bool can_reply = false;
    // The header section, set when can_reply. Malformed header lines are left out of it, and for a
    // header section over the size limit it holds only the start line and the routing headers.
    std::string head;
};

// The answer to a request the framer refused: 513 Message Too Large for the size limit, else 400.
int reply_status(FrameErrorCode code);

enum class FrameEventType : uint8_t {
    need_more,      // feed more bytes
    message,        // `message` holds one complete message
    keepalive_ping, // CRLFCRLF: answer with CRLF
    keepalive_pong, // single CRLF between messages (a pong, or ignorable per RFC 3261 7.5)
    stun,           // `message` holds one whole STUN message (FramerLimits::stun)
    error,          // see `error`; unless error->fatal the framer goes on with the next message
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
    // A non-fatal error: the message's remaining `skip` bytes (from pos_) are discarded.
    FrameEvent reject(FrameErrorCode code, std::string detail, std::string_view head, size_t skip);
    FrameEvent parse_head(size_t head_len);
    FrameEvent scan_big_head();
    FrameEvent big_head_line(std::string_view line, bool partial);
    void reset_message();

    // A header section over the size limit, scanned line by line and discarded as it goes (recover mode):
    // only Content-Length and the routing headers needed for a 513 are kept.
    struct BigHead {
        std::string kept;       // start line and routing header lines, CRLF-terminated
        size_t seen = 0;        // bytes of the header section so far
        bool long_line = false; // the current line was already classified and is being discarded
        bool cl_seen = false;
        std::string cl_value;
        enum class Last : uint8_t { none, cl, kept } last = Last::none;
    };

    FramerLimits limits_;
    std::string buf_;
    size_t pos_ = 0;        // start of the unconsumed data
    size_t scan_ = 0;       // where the search for the end of the header section resumes
    size_t line_scan_ = 0;  // where the search for the end of the start line resumes (from pos_)
    bool start_ok_ = false; // the current message's start line is complete and plausible
    size_t head_len_ = 0;   // 0 while the header section is incomplete
    size_t body_len_ = 0;
    size_t skip_ = 0; // bytes of a rejected message still to discard
    std::unique_ptr<BigHead> big_;
    bool failed_ = false;
    FrameError error_;
};

} // namespace edgepair::sip
