#pragma once
// Client-to-server XMPP stream framing for edge-e (RFC 6120 4): the stream header is reported as
// soon as its start tag is complete, then every top-level element (stanza or nonza) is yielded as the
// exact bytes received, so it can be relayed unchanged. The XML is checked against RFC 6120 11
// (no DTD, comments, processing instructions or entity references, UTF-8 only) and bounded in size
// and depth; violations become the stream error condition to send.
#include "common/xmpp/stream_error.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace edgepair::xmpp {

struct StreamHeader {
    std::string to;
    std::string from;
    std::string id;
    std::string version;    // "" when absent
    std::string lang;       // xml:lang
    std::string content_ns; // default namespace, "jabber:client"
    std::string raw;        // XML declaration (if any) and the stream start tag, as received
};

enum class EventType : uint8_t {
    stream_open,  // `header`
    stanza,       // `raw`, `name`, `ns`
    starttls,     // the client's <starttls/>; `raw`. Nothing may follow until restart()
    keepalive,    // whitespace between stanzas; `raw`
    stream_close, // </stream:stream>
    error,        // `condition`, `detail`; the framer stays failed
};

struct Event {
    EventType type = EventType::error;
    std::string raw;
    std::string name; // local name of a stanza
    std::string ns;   // namespace of a stanza
    StreamHeader header;
    StreamErrorCondition condition = StreamErrorCondition::undefined_condition;
    std::string detail;
};

struct FramerOptions {
    size_t max_stanza_size = 64 * 1024; // also bounds the stream header and whitespace runs
    size_t max_depth = 32;              // open elements, the stream element included
    // Longest single tag (or other markup token) accepted; bounds expat's rescanning cost.
    size_t max_token_size = 8 * 1024;
    std::string content_namespace = std::string(kClientNs);
    // Decides whether the stream header's 'to' names a domain we serve ("" when absent); false
    // yields host-unknown. Unset accepts anything.
    std::function<bool(std::string_view to)> accept_to;
};

class Framer {
  public:
    explicit Framer(FramerOptions opts = {});
    ~Framer();
    Framer(const Framer&) = delete;
    Framer& operator=(const Framer&) = delete;

    void feed(std::string_view bytes);
    std::optional<Event> next();

    // Starts over expecting a new stream header: after the TLS handshake that follows STARTTLS, and
    // after SASL success (RFC 6120 4.3.3), when the client opens a new stream on the same connection.
    // A relay learns of SASL success from the server's side: run a second Framer over the
    // server-to-client bytes and call restart() here once it yields <success/> in the
    // urn:ietf:params:xml:ns:xmpp-sasl namespace (the client's new header cannot precede it).
    void restart();

    // Frees expat's parser, and the buffer of bytes fed, if the input so far ends between two stanzas (no
    // effect otherwise); the next feed() builds the parser again from the stream header. For a framer that
    // lives as long as a held stream (edge-e's client side): the parser with the buffers it keeps at their
    // peak is about 11 kB, the header a few hundred bytes. Rebuilding costs about 40,000 instructions
    // (expat's creation, the header's parse, the free), so call this once the stream has been quiet for a
    // while rather than after every read.
    void release_parser();

    bool failed() const { return failed_; }
    bool header_seen() const { return header_seen_; }
    bool closed() const { return closed_; }
    // After feed() returned (and while the framer has not failed): the bytes fed that no event covers yet, an
    // incomplete element or tag. A relay that stops framing mid-stream sends these on before raw bytes.
    const std::string& unparsed() const { return raw_; }

    struct Impl; // expat callbacks live in the .cpp

  private:
    void fail(StreamErrorCondition c, std::string detail);
    void flush_whitespace();
    void trim_consumed();
    bool revive_parser();

    friend struct Impl;
    FramerOptions opts_;
    void* parser_ = nullptr; // XML_Parser, kept opaque so users need no expat headers
    // A list, not a deque: an empty std::deque still holds its map and a 512-byte node, and edge-e keeps
    // a framer with nothing queued on each held XMPP session's client side for the whole stream.
    std::list<Event> events_;
    std::string raw_;       // bytes fed to the current parser not yet consumed
    uint64_t raw_base_ = 0; // parser byte index of raw_[0]
    uint64_t consumed_ = 0; // parser byte index up to which bytes belong to emitted events
    uint64_t reported_ = 0; // parser byte index up to which expat has reported anything
    uint64_t stanza_start_ = 0;
    uint64_t stanza_start_len_ = 0;
    std::string stanza_name_, stanza_ns_;
    std::string default_ns_;
    std::string pending_ws_;
    std::string header_raw_; // the stream header as received: release_parser()'s way back
    size_t depth_ = 0;
    uint32_t utf8_need_ = 0; // continuation bytes still expected
    uint32_t utf8_cp_ = 0;   // code point being decoded
    uint32_t utf8_len_ = 0;  // total length of the current sequence
    bool in_parse_ = false;
    bool replaying_ = false; // revive_parser() is feeding the stored header to a new parser
    bool header_seen_ = false;
    bool prolog_started_ = false;
    bool awaiting_restart_ = false;
    bool closed_ = false;
    bool failed_ = false;
};

} // namespace edgepair::xmpp
