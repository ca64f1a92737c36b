#pragma once
// A SIP message as a proxy sees it: the start line, the header fields in order, and the body.
// Parsing is lazy in the Kamailio sense: parse() only splits the start line and the header fields
// (unfolding continuation lines and mapping compact names); structured values (Via, CSeq, From,
// To, Contact) are parsed when asked for, so a message that is only relayed costs little.
#include "common/core/result.h"
#include "common/sip/headers.h"
#include "common/sip/uri.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::sip {

struct Header {
    std::string name;  // canonical full name for known headers (compact forms expanded), else as received
    std::string value; // unfolded, surrounding whitespace trimmed
    HeaderId id = HeaderId::other;
};

class Message {
  public:
    // A complete message: header section, CRLF, body. With a Content-Length the body is cut to it
    // (datagram semantics, RFC 3261 18.3); a Content-Length beyond the data is an error.
    static Result<Message> parse(std::string_view bytes);
    // Only the header section (start line and header fields, with or without the empty line).
    static Result<Message> parse_head(std::string_view head);

    static Message request(std::string method, std::string request_uri);
    static Message response(int status, std::string reason);

    bool is_request() const { return request_; }
    const std::string& method() const { return method_; }
    const std::string& request_uri() const { return uri_; }
    void set_request_uri(std::string uri) { uri_ = std::move(uri); }
    const std::string& version() const { return version_; }
    int status() const { return status_; }
    const std::string& reason() const { return reason_; }

    std::vector<Header>& headers() { return headers_; }
    const std::vector<Header>& headers() const { return headers_; }

    const Header* find(HeaderId id) const;
    const Header* find(std::string_view name) const; // any case, compact forms accepted
    size_t count(HeaderId id) const;                 // header fields, not list elements
    // Every value of the header in order; list headers are split into their elements. The views
    // point into the message and are invalidated by any change to its headers.
    std::vector<std::string_view> values(HeaderId id) const;

    void append_header(std::string_view name, std::string value);
    // Inserts before the first field of the same header, or at the top when there is none, so a
    // new Via / Record-Route / Route / Path becomes the topmost element.
    void prepend_header(HeaderId id, std::string value);
    // Replaces the first field's value and removes the others; appends when absent.
    void set_header(HeaderId id, std::string value);
    size_t remove_headers(HeaderId id);

    std::string_view body() const { return body_; }
    // Replaces the body; a non-empty content_type replaces Content-Type, and with an empty body
    // Content-Type is dropped. Content-Length is always recomputed by serialize().
    void set_body(std::string body, std::string_view content_type = {});

    // Wire form. Content-Length is written from the actual body (the first Content-Length field's
    // position is kept, duplicates dropped), so a serialised message is always self-consistent.
    std::string serialize() const;

    // Lazy structured accessors.
    Result<Via> top_via() const;
    Result<CSeq> cseq() const;
    Result<NameAddr> from() const;
    Result<NameAddr> to() const;

  private:
    bool request_ = true;
    std::string method_;
    std::string uri_;
    std::string version_ = "SIP/2.0";
    int status_ = 0;
    std::string reason_;
    std::vector<Header> headers_;
    std::string body_;
};

// Parses a Content-Length value. Returns nullopt for anything but 1*DIGIT (e.g. "-999", RFC 4475
// ncl); values that do not fit in size_t saturate to SIZE_MAX so callers treat them as too large.
std::optional<size_t> parse_content_length(std::string_view value);

} // namespace edgepair::sip
