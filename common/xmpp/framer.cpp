#include "common/xmpp/framer.h"

#include <expat.h>

#include <algorithm>
#include <strings.h>

namespace edgepair::xmpp {

namespace {

constexpr char kNsSep = ' '; // cannot occur in a namespace URI or an XML name
constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";

bool is_xml_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool all_ws(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return is_xml_ws(c); });
}

void split_name(const XML_Char* qname, std::string& ns, std::string& local) {
    std::string_view n(qname);
    size_t sep = n.rfind(kNsSep);
    if (sep == std::string_view::npos) {
        ns.clear();
        local = std::string(n);
    } else {
        ns = std::string(n.substr(0, sep));
        local = std::string(n.substr(sep + 1));
    }
}

// "1.0" and any 1.x are fine (RFC 6120 4.7.5: the minor number may differ); absent or another
// major version is not, since edge-e relies on STARTTLS and stream features.
bool supported_version(std::string_view v) {
    size_t dot = v.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size()) return false;
    for (size_t i = 0; i < v.size(); ++i)
        if (i != dot && (v[i] < '0' || v[i] > '9')) return false;
    std::string_view major = v.substr(0, dot);
    while (major.size() > 1 && major.front() == '0')
        major.remove_prefix(1);
    return major == "1";
}

} // namespace

struct Framer::Impl {
    static Framer& self(void* ud) { return *static_cast<Framer*>(ud); }
    static XML_Parser parser(Framer& f) { return static_cast<XML_Parser>(f.parser_); }

    static void on_start(void* ud, const XML_Char* name, const XML_Char** atts) {
        Framer& f = self(ud);
        if (f.failed_) return;
        XML_Parser p = parser(f);
        auto idx = static_cast<uint64_t>(XML_GetCurrentByteIndex(p));
        auto cnt = static_cast<uint64_t>(XML_GetCurrentByteCount(p));
        f.reported_ = std::max(f.reported_, idx + cnt);
        if (f.replaying_) {
            // The header was judged when it first arrived; only expat's state is being rebuilt.
            f.depth_ = 1;
            return;
        }
        // Checked here too so the outcome does not depend on whether the tag arrived in one piece.
        if (cnt > f.opts_.max_token_size)
            return f.fail(StreamErrorCondition::policy_violation, "XML token too large");
        std::string ns, local;
        split_name(name, ns, local);
        if (f.depth_ == 0) {
            if (idx + cnt > f.opts_.max_stanza_size)
                return f.fail(StreamErrorCondition::policy_violation, "stream header too large");
            if (ns != kStreamsNs || local != "stream")
                return f.fail(StreamErrorCondition::invalid_namespace, "root element is not a stream");
            if (f.default_ns_ != f.opts_.content_namespace)
                return f.fail(StreamErrorCondition::invalid_namespace, "unexpected content namespace");
            Event ev;
            ev.type = EventType::stream_open;
            StreamHeader& h = ev.header;
            for (size_t i = 0; atts[i]; i += 2) {
                std::string ans, alocal;
                split_name(atts[i], ans, alocal);
                std::string value = atts[i + 1];
                if (ans.empty()) {
                    if (alocal == "to")
                        h.to = value;
                    else if (alocal == "from")
                        h.from = value;
                    else if (alocal == "id")
                        h.id = value;
                    else if (alocal == "version")
                        h.version = value;
                } else if (ans == kXmlNs && alocal == "lang") {
                    h.lang = value;
                }
            }
            h.content_ns = f.default_ns_;
            if (!supported_version(h.version))
                return f.fail(StreamErrorCondition::unsupported_version, "stream version must be 1.x");
            if (f.opts_.accept_to && !f.opts_.accept_to(h.to))
                return f.fail(StreamErrorCondition::host_unknown, "unknown domain in stream header");
            h.raw = f.raw_.substr(0, idx + cnt - f.raw_base_);
            f.header_raw_ = h.raw;
            f.events_.push_back(std::move(ev));
            f.header_seen_ = true;
            f.consumed_ = idx + cnt;
            f.depth_ = 1;
            return;
        }
        if (f.depth_ == 1) {
            f.flush_whitespace();
            f.stanza_start_ = idx;
            f.stanza_start_len_ = cnt;
            f.stanza_ns_ = std::move(ns);
            f.stanza_name_ = std::move(local);
        }
        ++f.depth_;
        if (f.depth_ > f.opts_.max_depth)
            return f.fail(StreamErrorCondition::policy_violation, "nesting too deep");
        if (idx + cnt - f.stanza_start_ > f.opts_.max_stanza_size)
            return f.fail(StreamErrorCondition::policy_violation, "stanza too large");
    }

    static void on_end(void* ud, const XML_Char*) {
        Framer& f = self(ud);
        if (f.failed_) return;
        XML_Parser p = parser(f);
        auto idx = static_cast<uint64_t>(XML_GetCurrentByteIndex(p));
        auto cnt = static_cast<uint64_t>(XML_GetCurrentByteCount(p));
        f.reported_ = std::max(f.reported_, idx + cnt);
        if (cnt > f.opts_.max_token_size)
            return f.fail(StreamErrorCondition::policy_violation, "XML token too large");
        --f.depth_;
        if (f.depth_ == 0) {
            f.flush_whitespace();
            Event ev;
            ev.type = EventType::stream_close;
            f.events_.push_back(std::move(ev));
            f.closed_ = true;
            f.consumed_ = idx + cnt;
            XML_StopParser(p, XML_FALSE); // whatever follows the stream is not ours to parse
            return;
        }
        if (f.depth_ != 1) return;
        // For an empty-element tag expat reports the whole tag to the start handler and a count of
        // 0 here.
        uint64_t end = cnt == 0 ? f.stanza_start_ + f.stanza_start_len_ : idx + cnt;
        if (end - f.stanza_start_ > f.opts_.max_stanza_size)
            return f.fail(StreamErrorCondition::policy_violation, "stanza too large");
        Event ev;
        ev.raw = f.raw_.substr(f.stanza_start_ - f.raw_base_, end - f.stanza_start_);
        ev.name = f.stanza_name_;
        ev.ns = f.stanza_ns_;
        f.consumed_ = end;
        if (ev.ns == kTlsNs && ev.name == "starttls") {
            ev.type = EventType::starttls;
            f.events_.push_back(std::move(ev));
            f.awaiting_restart_ = true;
            // Anything after <starttls/> was sent in the clear and must not be read as part of the
            // protected stream (the STARTTLS command injection class of bugs).
            XML_StopParser(p, XML_FALSE);
            return;
        }
        ev.type = EventType::stanza;
        f.events_.push_back(std::move(ev));
    }

    static void on_text(void* ud, const XML_Char* s, int len) {
        Framer& f = self(ud);
        if (f.failed_) return;
        XML_Parser p = parser(f);
        auto idx = static_cast<uint64_t>(XML_GetCurrentByteIndex(p));
        auto cnt = static_cast<uint64_t>(XML_GetCurrentByteCount(p));
        f.reported_ = std::max(f.reported_, idx + cnt);
        std::string_view text(s, static_cast<size_t>(len));
        if (f.depth_ == 1) {
            if (!all_ws(text)) return f.fail(StreamErrorCondition::bad_format, "text between stanzas");
            f.pending_ws_.append(text);
            f.consumed_ = std::max(f.consumed_, idx + cnt);
            return;
        }
        if (idx + cnt - f.stanza_start_ > f.opts_.max_stanza_size)
            return f.fail(StreamErrorCondition::policy_violation, "stanza too large");
    }

    static void on_ns(void* ud, const XML_Char* prefix, const XML_Char* uri) {
        Framer& f = self(ud);
        if (f.depth_ == 0 && prefix == nullptr) f.default_ns_ = uri ? uri : "";
    }

    static void on_xml_decl(void* ud, const XML_Char*, const XML_Char* encoding, int) {
        Framer& f = self(ud);
        XML_Parser p = parser(f);
        auto end = static_cast<uint64_t>(XML_GetCurrentByteIndex(p) + XML_GetCurrentByteCount(p));
        f.reported_ = std::max(f.reported_, end);
        if (end > f.opts_.max_token_size)
            return f.fail(StreamErrorCondition::policy_violation, "XML token too large");
        if (encoding && strcasecmp(encoding, "UTF-8") != 0)
            f.fail(StreamErrorCondition::unsupported_encoding, "only UTF-8 is allowed");
    }

    // RFC 6120 11.1: no comments, processing instructions, DTDs or entity declarations.
    static void on_doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
        self(ud).fail(StreamErrorCondition::restricted_xml, "DTD not allowed");
    }
    static void on_entity(void* ud, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                          const XML_Char*, const XML_Char*, const XML_Char*) {
        self(ud).fail(StreamErrorCondition::restricted_xml, "entity declaration not allowed");
    }
    static void on_pi(void* ud, const XML_Char*, const XML_Char*) {
        self(ud).fail(StreamErrorCondition::restricted_xml, "processing instruction not allowed");
    }
    static void on_comment(void* ud, const XML_Char*) {
        self(ud).fail(StreamErrorCondition::restricted_xml, "comment not allowed");
    }

    static void create(Framer& f) {
        XML_Parser p = XML_ParserCreateNS("UTF-8", kNsSep);
        f.parser_ = p;
        if (!p) return;
        XML_SetUserData(p, &f);
        XML_SetElementHandler(p, on_start, on_end);
        XML_SetCharacterDataHandler(p, on_text);
        XML_SetStartNamespaceDeclHandler(p, on_ns);
        XML_SetXmlDeclHandler(p, on_xml_decl);
        XML_SetStartDoctypeDeclHandler(p, on_doctype);
        XML_SetEntityDeclHandler(p, on_entity);
        XML_SetProcessingInstructionHandler(p, on_pi);
        XML_SetCommentHandler(p, on_comment);
        XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
        // Expat >= 2.6 (and Debian's 2.5 with the CVE-2023-52425 backport) may hold back a large
        // token until more input arrives; a stanza must be emitted as soon as its last byte is in.
        // Older expat never defers (CMake probes for the symbol).
#ifdef EDGEPAIR_HAVE_XML_REPARSE_DEFERRAL
        XML_SetReparseDeferralEnabled(p, XML_FALSE);
#endif
    }

    static StreamErrorCondition map_error(XML_Error e) {
        switch (e) {
        case XML_ERROR_UNBOUND_PREFIX:
            return StreamErrorCondition::bad_namespace_prefix;
        case XML_ERROR_UNKNOWN_ENCODING:
        case XML_ERROR_INCORRECT_ENCODING:
            return StreamErrorCondition::unsupported_encoding;
        case XML_ERROR_UNDEFINED_ENTITY:
        case XML_ERROR_RECURSIVE_ENTITY_REF:
        case XML_ERROR_BINARY_ENTITY_REF:
        case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
        case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
        case XML_ERROR_NOT_STANDALONE:
            return StreamErrorCondition::restricted_xml;
        default:
            return StreamErrorCondition::not_well_formed;
        }
    }
};

Framer::Framer(FramerOptions opts) : opts_(std::move(opts)) {
    Impl::create(*this);
}

Framer::~Framer() {
    if (parser_) XML_ParserFree(static_cast<XML_Parser>(parser_));
}

void Framer::restart() {
    if (parser_) XML_ParserFree(static_cast<XML_Parser>(parser_));
    parser_ = nullptr;
    raw_.clear();
    raw_base_ = consumed_ = reported_ = stanza_start_ = stanza_start_len_ = 0;
    stanza_name_.clear();
    stanza_ns_.clear();
    default_ns_.clear();
    pending_ws_.clear();
    header_raw_.clear();
    depth_ = 0;
    utf8_need_ = utf8_cp_ = utf8_len_ = 0;
    header_seen_ = prolog_started_ = awaiting_restart_ = closed_ = failed_ = false;
    Impl::create(*this);
}

void Framer::fail(StreamErrorCondition c, std::string detail) {
    if (failed_) return;
    failed_ = true;
    Event ev;
    ev.type = EventType::error;
    ev.condition = c;
    ev.detail = std::move(detail);
    events_.push_back(std::move(ev));
    if (in_parse_ && parser_) XML_StopParser(static_cast<XML_Parser>(parser_), XML_FALSE);
}

void Framer::flush_whitespace() {
    if (pending_ws_.empty()) return;
    Event ev;
    ev.type = EventType::keepalive;
    ev.raw = std::move(pending_ws_);
    pending_ws_.clear();
    events_.push_back(std::move(ev));
}

void Framer::trim_consumed() {
    uint64_t keep = depth_ >= 2 ? stanza_start_ : consumed_;
    if (keep <= raw_base_) return;
    size_t n = std::min<uint64_t>(keep - raw_base_, raw_.size());
    raw_.erase(0, n);
    raw_base_ += n;
}

// Between stanzas expat holds nothing the framer needs but the open stream element: its namespace
// declarations (which later stanzas may use) and the well-formedness rule that the element must close.
// Both come back by parsing the same header bytes again, so the parser can go while the stream is idle.
void Framer::release_parser() {
    if (!parser_ || !header_seen_ || failed_ || closed_ || awaiting_restart_) return;
    // Every byte fed belongs to an emitted event (raw_ is trimmed to the first byte no event covers), so
    // expat has no token in progress and no character data held back.
    if (depth_ != 1 || !raw_.empty() || !pending_ws_.empty() || utf8_need_ != 0 || header_raw_.empty())
        return;
    XML_ParserFree(static_cast<XML_Parser>(parser_));
    parser_ = nullptr;
    std::string().swap(raw_); // its capacity is the largest read so far
}

bool Framer::revive_parser() {
    if (!header_seen_ || header_raw_.empty()) return false;
    Impl::create(*this);
    if (!parser_) return false;
    depth_ = 0;
    replaying_ = in_parse_ = true;
    XML_Status st = XML_Parse(static_cast<XML_Parser>(parser_), header_raw_.data(),
                              static_cast<int>(header_raw_.size()), XML_FALSE);
    replaying_ = in_parse_ = false;
    if (st == XML_STATUS_ERROR || failed_ || depth_ != 1) return false;
    // The framer's byte indices continue in the new parser's numbering: right after the header.
    raw_base_ = consumed_ = reported_ = header_raw_.size();
    return true;
}

void Framer::feed(std::string_view bytes) {
    if (failed_ || closed_ || bytes.empty()) return;
    if (!parser_ && !revive_parser())
        return fail(StreamErrorCondition::internal_server_error, "XML parser allocation failed");
    if (awaiting_restart_) {
        if (!all_ws(bytes)) fail(StreamErrorCondition::policy_violation, "data after STARTTLS");
        return;
    }
    if (!header_seen_ && !prolog_started_) {
        // Expat tokenises a prolog name run ("garbage") without judging it until a delimiter
        // arrives; a peer speaking another protocol is better told at its first byte.
        for (char ch : bytes) {
            if (is_xml_ws(ch)) continue;
            if (ch != '<' && static_cast<unsigned char>(ch) < 0x80)
                return fail(StreamErrorCondition::not_well_formed, "no XML stream");
            prolog_started_ = true;
            break;
        }
    }
    // Expat would also reject malformed UTF-8, but as a generic not-well-formed; RFC 6120 4.9.3.22
    // names unsupported-encoding for it. The valid prefix is still parsed so that stanzas completed
    // before the bad byte come out however the input was split.
    size_t valid = bytes.size(); // length of the prefix that contains no invalid sequence
    bool bad_utf8 = false;
    size_t seq_start = 0; // where the open sequence began in this chunk (0 if in an earlier one)
    for (size_t i = 0; i < bytes.size() && !bad_utf8; ++i) {
        auto b = static_cast<unsigned char>(bytes[i]);
        if (utf8_need_ == 0) {
            seq_start = i;
            if (b < 0x80) continue;
            if (b >= 0xc2 && b <= 0xdf) {
                utf8_need_ = 1, utf8_cp_ = b & 0x1f, utf8_len_ = 2;
            } else if (b >= 0xe0 && b <= 0xef) {
                utf8_need_ = 2, utf8_cp_ = b & 0x0f, utf8_len_ = 3;
            } else if (b >= 0xf0 && b <= 0xf4) {
                utf8_need_ = 3, utf8_cp_ = b & 0x07, utf8_len_ = 4;
            } else {
                bad_utf8 = true;
            }
        } else if ((b & 0xc0) != 0x80) {
            bad_utf8 = true;
        } else {
            utf8_cp_ = (utf8_cp_ << 6) | (b & 0x3f);
            if (--utf8_need_ == 0) {
                bool overlong =
                    (utf8_len_ == 3 && utf8_cp_ < 0x800) || (utf8_len_ == 4 && utf8_cp_ < 0x10000);
                bool surrogate = utf8_cp_ >= 0xd800 && utf8_cp_ <= 0xdfff;
                bad_utf8 = overlong || surrogate || utf8_cp_ > 0x10ffff;
            }
        }
        // The bad sequence's own bytes stay away from expat, which would call them not-well-formed.
        if (bad_utf8) valid = seq_start;
    }
    bytes = bytes.substr(0, valid);
    raw_.append(bytes);
    XML_Parser p = static_cast<XML_Parser>(parser_);
    constexpr size_t kChunk = 1 << 20; // XML_Parse takes an int length
    for (size_t off = 0; off < bytes.size() && !failed_ && !closed_ && !awaiting_restart_; off += kChunk) {
        size_t n = std::min(kChunk, bytes.size() - off);
        in_parse_ = true;
        XML_Status st = XML_Parse(p, bytes.data() + off, static_cast<int>(n), XML_FALSE);
        in_parse_ = false;
        if (st == XML_STATUS_ERROR) {
            XML_Error e = XML_GetErrorCode(p);
            if (e != XML_ERROR_ABORTED && !failed_) fail(Impl::map_error(e), XML_ErrorString(e));
        }
    }
    if (bad_utf8 && !failed_ && !closed_ && !awaiting_restart_)
        fail(StreamErrorCondition::unsupported_encoding, "invalid UTF-8");
    if (awaiting_restart_ && !failed_) {
        size_t after = static_cast<size_t>(consumed_ - raw_base_);
        if (bad_utf8 || (after < raw_.size() && !all_ws(std::string_view(raw_).substr(after)))) {
            events_.pop_back(); // the starttls event: do not proceed with a poisoned connection
            fail(StreamErrorCondition::policy_violation, "data after STARTTLS");
        }
    }
    if (!failed_ && !closed_ && !awaiting_restart_ &&
        raw_base_ + raw_.size() - reported_ > opts_.max_token_size) {
        // Without reparse deferral expat rescans an incomplete token from its start on every call,
        // so a tag trickled in byte by byte costs time quadratic in its length. Character data is
        // reported as it arrives, so this only limits single tags, references and markup.
        fail(StreamErrorCondition::policy_violation, "XML token too large");
    }
    if (failed_) {
        raw_.clear();
        return;
    }
    flush_whitespace();
    trim_consumed();
    uint64_t keep = depth_ >= 2 ? stanza_start_ : consumed_;
    if (raw_base_ + raw_.size() - keep > opts_.max_stanza_size)
        fail(StreamErrorCondition::policy_violation,
             header_seen_ ? "stanza too large" : "stream header too large");
}

std::optional<Event> Framer::next() {
    if (events_.empty()) return std::nullopt;
    Event ev = std::move(events_.front());
    events_.pop_front();
    return ev;
}

} // namespace edgepair::xmpp
