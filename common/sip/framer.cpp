#include "common/sip/framer.h"

#include "common/sip/lex.h"
#include "common/sip/message.h"

namespace edgepair::sip {

using namespace lex;

std::string_view metric_label(FrameErrorCode code) {
    switch (code) {
    case FrameErrorCode::bad_start_line:
        return "bad_start_line";
    case FrameErrorCode::bad_header:
        return "bad_header";
    case FrameErrorCode::missing_content_length:
        return "missing_content_length";
    case FrameErrorCode::bad_content_length:
        return "bad_content_length";
    case FrameErrorCode::message_too_large:
        return "message_too_large";
    case FrameErrorCode::too_many_headers:
        return "too_many_headers";
    }
    return "unknown";
}

namespace {

// Decides from a possibly incomplete first line whether it can still become a SIP start line, so a
// peer speaking TLS or HTTP to the SIP port is dropped at once instead of after 64 KiB.
bool plausible_start_line(std::string_view line, bool complete) {
    constexpr std::string_view sip = "SIP/";
    if (!complete && line.size() < sip.size() && istarts_with(sip, line)) return true; // may become "SIP/"
    if (istarts_with(line, sip)) {
        if (!complete) return true;
        size_t sp = line.find(' ');
        return sp != std::string_view::npos && line.size() >= sp + 4 && is_digit(line[sp + 1]) &&
               is_digit(line[sp + 2]) && is_digit(line[sp + 3]);
    }
    // Bounding the method keeps the check of an incomplete line cheap; the longest method in
    // RFC 4475 (intmeth) has 43 characters.
    constexpr size_t kMaxMethod = 256;
    size_t n = 0;
    while (n < line.size() && n <= kMaxMethod && is_token_char(line[n]))
        ++n;
    if (n > kMaxMethod) return false;
    if (n == line.size()) return !complete;
    if (n == 0 || line[n] != ' ') return false;
    if (!complete) return true;
    size_t end = line.find_last_not_of(" \t");
    size_t last = line.rfind(' ', end);
    return last != n && istarts_with(line.substr(last + 1), sip);
}

bool has_routing_headers(const Message& m) {
    return m.is_request() && m.find(HeaderId::via) && m.find(HeaderId::call_id) && m.find(HeaderId::cseq) &&
           m.find(HeaderId::from) && m.find(HeaderId::to);
}

} // namespace

void Framer::feed(std::string_view bytes) {
    if (failed_) return;
    // Compact here rather than per message: a read full of small pipelined messages would
    // otherwise move the remaining buffer once per message.
    if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
}

FrameEvent Framer::fail(FrameErrorCode code, std::string detail, std::string_view head) {
    failed_ = true;
    error_.code = code;
    error_.detail = std::move(detail);
    if (!head.empty()) {
        auto m = Message::parse_head(head);
        if (m && has_routing_headers(*m)) {
            error_.can_reply_400 = true;
            error_.head = std::string(head);
        }
    }
    buf_.clear();
    pos_ = 0;
    FrameEvent ev;
    ev.type = FrameEventType::error;
    ev.error = &error_;
    return ev;
}

FrameEvent Framer::next() {
    if (failed_) {
        FrameEvent ev;
        ev.type = FrameEventType::error;
        ev.error = &error_;
        return ev;
    }
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    std::string_view d = std::string_view(buf_).substr(pos_); // offsets below are relative to pos_
    if (head_len_ == 0) {
        // A start line never begins with CR, so CR here can only be a keep-alive.
        if (!d.empty() && d.front() == '\r') {
            if (d.size() < 2) return {};
            if (d[1] != '\n') return fail(FrameErrorCode::bad_start_line, "CR without LF before start line");
            if (d.size() < 3) return {};
            FrameEvent ev;
            if (d[2] == '\r') {
                if (d.size() < 4) return {};
                if (d[3] == '\n') {
                    pos_ += 4;
                    ev.type = FrameEventType::keepalive_ping;
                    return ev;
                }
            }
            pos_ += 2;
            ev.type = FrameEventType::keepalive_pong;
            return ev;
        }
        if (d.empty()) return {};
        // Each check below resumes where the previous call stopped, so a peer trickling a long
        // header section byte by byte costs linear time, not quadratic.
        if (!start_ok_) {
            size_t le = d.find("\r\n", line_scan_);
            if (le == std::string_view::npos) {
                line_scan_ = d.size() - 1;
                if (!plausible_start_line(d, false))
                    return fail(FrameErrorCode::bad_start_line, "not a SIP start line");
                if (d.size() > limits_.max_message_size)
                    return fail(FrameErrorCode::message_too_large, "start line exceeds the size limit");
                return {};
            }
            if (!plausible_start_line(d.substr(0, le), true))
                return fail(FrameErrorCode::bad_start_line, "not a SIP start line");
            start_ok_ = true;
            line_scan_ = 0;
        }
        size_t idx = d.find("\r\n\r\n", scan_);
        if (idx == std::string_view::npos) {
            scan_ = d.size() >= 3 ? d.size() - 3 : 0;
            if (d.size() > limits_.max_message_size)
                return fail(FrameErrorCode::message_too_large, "header section exceeds the size limit");
            return {};
        }
        scan_ = 0;
        if (idx + 4 > limits_.max_message_size)
            return fail(FrameErrorCode::message_too_large, "header section exceeds the size limit");
        FrameEvent ev = parse_head(idx + 4);
        if (ev.type == FrameEventType::error) return ev;
    }
    if (d.size() < head_len_ + body_len_) return {};
    FrameEvent ev;
    ev.type = FrameEventType::message;
    ev.message = d.substr(0, head_len_ + body_len_);
    ev.head_size = head_len_;
    pos_ += head_len_ + body_len_;
    start_ok_ = false;
    head_len_ = 0;
    body_len_ = 0;
    return ev;
}

FrameEvent Framer::parse_head(size_t head_len) {
    std::string_view head = std::string_view(buf_).substr(pos_, head_len);
    size_t pos = head.find("\r\n") + 2;
    size_t headers = 0;
    bool cl_seen = false;
    bool in_cl = false;
    std::string cl_value;
    while (pos < head_len) {
        size_t le = head.find("\r\n", pos);
        std::string_view line = head.substr(pos, le - pos);
        pos = le + 2;
        if (line.empty()) break;
        if (line.find_first_of("\r\n") != std::string_view::npos)
            return fail(FrameErrorCode::bad_header, "bare CR or LF in header section");
        if (is_ws(line.front())) {
            if (headers == 0) return fail(FrameErrorCode::bad_header, "continuation line without header");
            if (in_cl) {
                cl_value += ' ';
                cl_value += line;
            }
            continue;
        }
        size_t colon = line.find(':');
        std::string_view name = trim(line.substr(0, colon));
        if (colon == std::string_view::npos || !is_token(name))
            return fail(FrameErrorCode::bad_header, "malformed header line");
        if (++headers > limits_.max_headers)
            return fail(FrameErrorCode::too_many_headers, "too many header fields", head);
        in_cl = header_id(name) == HeaderId::content_length;
        if (in_cl) {
            // Two lengths are a request-smuggling vector even when equal (RFC 4475 mcl01).
            if (cl_seen)
                return fail(FrameErrorCode::bad_content_length, "more than one Content-Length", head);
            cl_seen = true;
            cl_value = std::string(line.substr(colon + 1));
        }
    }
    if (!cl_seen) return fail(FrameErrorCode::missing_content_length, "no Content-Length on a stream", head);
    auto cl = parse_content_length(cl_value);
    if (!cl) return fail(FrameErrorCode::bad_content_length, "malformed Content-Length", head);
    if (*cl > limits_.max_message_size - head_len)
        return fail(FrameErrorCode::message_too_large, "Content-Length exceeds the size limit", head);
    head_len_ = head_len;
    body_len_ = *cl;
    return {};
}

} // namespace edgepair::sip
