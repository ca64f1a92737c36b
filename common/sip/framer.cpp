#include "common/sip/framer.h"

#include <algorithm>

#include "common/sip/lex.h"
#include "common/sip/message.h"
#include "common/sip/stun.h"

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

int reply_status(FrameErrorCode code) {
    return code == FrameErrorCode::message_too_large ? 513 : 400;
}

namespace {

// Routing headers kept from an oversized header section, enough for make_response.
bool routing_header(HeaderId id) {
    return id == HeaderId::via || id == HeaderId::from || id == HeaderId::to || id == HeaderId::call_id ||
           id == HeaderId::cseq;
}
// Bounds what an oversized header section may keep and how long a line the scanner buffers.
constexpr size_t kMaxKept = 8 * 1024;
constexpr size_t kMaxLine = 8 * 1024;

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
    error_ = {};
    error_.code = code;
    error_.detail = std::move(detail);
    if (!head.empty()) {
        auto m = Message::parse_head(head);
        if (m && has_routing_headers(*m)) {
            error_.can_reply = true;
            error_.head = std::string(head);
        }
    }
    buf_.clear();
    pos_ = 0;
    big_.reset();
    FrameEvent ev;
    ev.type = FrameEventType::error;
    ev.error = &error_;
    return ev;
}

FrameEvent Framer::reject(FrameErrorCode code, std::string detail, std::string_view head, size_t skip) {
    error_ = {};
    error_.code = code;
    error_.detail = std::move(detail);
    error_.fatal = false;
    if (!head.empty()) {
        auto m = Message::parse_head(head);
        if (m && has_routing_headers(*m)) {
            error_.can_reply = true;
            error_.head = std::string(head);
        }
    }
    reset_message();
    skip_ = skip;
    FrameEvent ev;
    ev.type = FrameEventType::error;
    ev.error = &error_;
    return ev;
}

void Framer::reset_message() {
    start_ok_ = false;
    line_scan_ = 0;
    scan_ = 0;
    head_len_ = 0;
    body_len_ = 0;
    big_.reset();
}

FrameEvent Framer::big_head_line(std::string_view line, bool partial) {
    BigHead& b = *big_;
    using Last = BigHead::Last;
    if (lex::has_cr_or_lf(line)) {
        b.last = Last::none; // a bad line: skipped with the rest of the message
        return {};
    }
    if (!line.empty() && is_ws(line.front())) {
        if (b.last == Last::cl) return fail(FrameErrorCode::bad_content_length, "folded Content-Length");
        if (b.last == Last::kept && !partial && b.kept.size() + line.size() + 2 <= kMaxKept) {
            b.kept.append(line);
            b.kept.append("\r\n");
        }
        return {};
    }
    b.last = Last::none;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return {};
    std::string_view name = trim(line.substr(0, colon));
    if (!is_token(name)) return {};
    HeaderId id = header_id(name);
    if (id == HeaderId::content_length) {
        if (partial) return fail(FrameErrorCode::bad_content_length, "overlong Content-Length line");
        if (b.cl_seen) return fail(FrameErrorCode::bad_content_length, "more than one Content-Length");
        b.cl_seen = true;
        b.cl_value = std::string(line.substr(colon + 1));
        b.last = Last::cl;
    } else if (routing_header(id) && !partial && b.kept.size() + line.size() + 2 <= kMaxKept) {
        b.kept.append(line);
        b.kept.append("\r\n");
        b.last = Last::kept;
    }
    return {};
}

FrameEvent Framer::scan_big_head() {
    BigHead& b = *big_;
    for (;;) {
        std::string_view d = std::string_view(buf_).substr(pos_);
        size_t le = d.find("\r\n");
        if (le == std::string_view::npos) {
            // Keep a possible CR so a CRLF split across reads is still seen.
            size_t drop = d.size() > 0 && d.back() == '\r' ? d.size() - 1 : d.size();
            if (d.size() > kMaxLine) {
                if (!b.long_line) {
                    FrameEvent ev = big_head_line(d.substr(0, drop), true);
                    if (ev.type == FrameEventType::error) return ev;
                    b.long_line = true;
                }
                pos_ += drop;
                b.seen += drop;
            }
            if (b.seen + (d.size() - drop) > kMaxSkippedHead)
                return fail(FrameErrorCode::message_too_large, "header section exceeds the skippable size");
            return {};
        }
        std::string_view line = d.substr(0, le);
        pos_ += le + 2;
        b.seen += le + 2;
        if (b.seen > kMaxSkippedHead)
            return fail(FrameErrorCode::message_too_large, "header section exceeds the skippable size");
        if (b.long_line) {
            b.long_line = false;
            continue;
        }
        if (line.empty()) break;
        FrameEvent ev = big_head_line(line, false);
        if (ev.type == FrameEventType::error) return ev;
    }
    std::string head = std::move(b.kept);
    if (!b.cl_seen)
        return fail(FrameErrorCode::missing_content_length, "no Content-Length on a stream", head);
    auto cl = parse_content_length(b.cl_value);
    if (!cl) return fail(FrameErrorCode::bad_content_length, "malformed Content-Length", head);
    if (*cl > kMaxSkippedMessage)
        return fail(FrameErrorCode::message_too_large, "Content-Length exceeds the skippable size", head);
    return reject(FrameErrorCode::message_too_large, "header section exceeds the size limit", head, *cl);
}

FrameEvent Framer::next() {
    if (failed_) {
        FrameEvent ev;
        ev.type = FrameEventType::error;
        ev.error = &error_;
        return ev;
    }
    if (skip_ > 0) {
        size_t n = std::min(skip_, buf_.size() - pos_);
        pos_ += n;
        skip_ -= n;
        if (skip_ > 0) {
            buf_.clear(); // everything buffered was skipped
            pos_ = 0;
            return {};
        }
    }
    if (big_) return scan_big_head();
    if (pos_ == buf_.size()) {
        // Everything was consumed: give the storage back rather than keep it. A held flow spends nearly all
        // of its life here, and a buffer keeps the largest capacity any read of it ever needed (a refresh and
        // a keep-alive in one read, a burst): about 1 kB per flow after minutes (issue #18, massif). The
        // price is one allocation per read, against microseconds of I/O per message.
        std::string().swap(buf_);
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
        if (limits_.stun && !start_ok_ && static_cast<unsigned char>(d.front()) <= 0x01) {
            auto st = stun::sniff(d);
            if (st.kind == stun::Sniff::need_more) return {};
            if (st.kind != stun::Sniff::stun)
                return fail(FrameErrorCode::bad_start_line, "not a STUN message");
            if (d.size() < st.size) return {};
            pos_ += st.size;
            FrameEvent ev;
            ev.type = FrameEventType::stun;
            ev.message = d.substr(0, st.size);
            return ev;
        }
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
        bool too_big = idx == std::string_view::npos ? d.size() > limits_.max_message_size
                                                     : idx + 4 > limits_.max_message_size;
        if (too_big && limits_.recover) {
            // The start line is complete (start_ok_): keep it, scan the rest line by line.
            size_t le = d.find("\r\n");
            auto big = std::make_unique<BigHead>();
            big->kept = std::string(d.substr(0, le + 2));
            big->seen = le + 2;
            pos_ += le + 2;
            reset_message();
            big_ = std::move(big);
            return scan_big_head();
        }
        if (idx == std::string_view::npos) {
            scan_ = d.size() >= 3 ? d.size() - 3 : 0;
            if (too_big)
                return fail(FrameErrorCode::message_too_large, "header section exceeds the size limit");
            return {};
        }
        scan_ = 0;
        if (too_big) return fail(FrameErrorCode::message_too_large, "header section exceeds the size limit");
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
    // Recover mode: the first malformed line, and the header section without the malformed lines (for
    // the 400), built only once one is found.
    std::string bad;
    std::string clean;
    bool last_bad = false;
    auto bad_line = [&](size_t line_start, std::string_view why) {
        if (bad.empty()) {
            bad = std::string(why);
            clean = std::string(head.substr(0, line_start));
        }
        last_bad = true;
    };
    while (pos < head_len) {
        size_t line_start = pos;
        size_t le = head.find("\r\n", pos);
        std::string_view line = head.substr(pos, le - pos);
        pos = le + 2;
        if (line.empty()) break;
        if (lex::has_cr_or_lf(line)) {
            if (!limits_.recover) return fail(FrameErrorCode::bad_header, "bare CR or LF in header section");
            bad_line(line_start, "bare CR or LF in header section");
            in_cl = false;
            continue;
        }
        if (is_ws(line.front())) {
            if (headers == 0 || last_bad) {
                if (!limits_.recover)
                    return fail(FrameErrorCode::bad_header, "continuation line without header");
                bad_line(line_start, "continuation line without header");
                continue;
            }
            if (in_cl) {
                cl_value += ' ';
                cl_value += line;
            }
        } else {
            size_t colon = line.find(':');
            std::string_view name = trim(line.substr(0, colon));
            if (colon == std::string_view::npos || !is_token(name)) {
                if (!limits_.recover) return fail(FrameErrorCode::bad_header, "malformed header line");
                bad_line(line_start, "malformed header line");
                in_cl = false;
                continue;
            }
            last_bad = false;
            ++headers;
            if (headers > limits_.max_headers && !limits_.recover)
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
        if (!bad.empty()) {
            clean.append(line);
            clean.append("\r\n");
        }
    }
    if (!bad.empty()) clean.append("\r\n");
    std::string_view reply_head = bad.empty() ? head : std::string_view(clean);
    if (!cl_seen)
        return fail(FrameErrorCode::missing_content_length, "no Content-Length on a stream", reply_head);
    auto cl = parse_content_length(cl_value);
    if (!cl) return fail(FrameErrorCode::bad_content_length, "malformed Content-Length", reply_head);
    if (*cl > limits_.max_message_size - head_len) {
        if (!limits_.recover || *cl > kMaxSkippedMessage)
            return fail(FrameErrorCode::message_too_large, "Content-Length exceeds the size limit",
                        reply_head);
        pos_ += head_len;
        return reject(FrameErrorCode::message_too_large, "Content-Length exceeds the size limit", reply_head,
                      *cl);
    }
    if (headers > limits_.max_headers) {
        pos_ += head_len;
        return reject(FrameErrorCode::too_many_headers, "too many header fields", reply_head, *cl);
    }
    if (!bad.empty()) {
        pos_ += head_len;
        return reject(FrameErrorCode::bad_header, bad, reply_head, *cl);
    }
    head_len_ = head_len;
    body_len_ = *cl;
    return {};
}

} // namespace edgepair::sip
