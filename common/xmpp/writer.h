#pragma once
// The few XMPP elements edge-e writes itself before the stream is handed to IM&P: its stream
// header, the STARTTLS feature and <proceed/>, and stream errors.
#include "common/xmpp/stream_error.h"

#include <string>
#include <string_view>

namespace edgepair::xmpp {

// Escapes text for element content and for attribute values in either quote style.
std::string escape_xml(std::string_view text);

struct ServerHeader {
    std::string id;   // stream id: unique and unpredictable (RFC 6120 4.7.3)
    std::string from; // our domain
    std::string to;   // the client's JID when known, else omitted
    std::string lang = "en";
};

// `<?xml version='1.0'?><stream:stream ... version='1.0'>` for jabber:client.
std::string stream_header(const ServerHeader& h);
// Stream features offering only mandatory STARTTLS (RFC 6120 5.3.1).
std::string features_starttls_required();
std::string starttls_proceed();
// TLS negotiation failure: the server closes the stream right after (RFC 6120 5.4.2.2).
std::string starttls_failure();
std::string stream_close();
// `<stream:error><COND xmlns=.../><text ...>..</text></stream:error></stream:stream>`;
// the text element is omitted when `text` is empty.
std::string stream_error(StreamErrorCondition c, std::string_view text = {}, std::string_view lang = "en");

// Tracks whether our stream header went out, because RFC 6120 4.9.1.3 requires the header before a
// stream error even when the error is detected first (bad client header, garbage, wrong host).
class ServerStreamWriter {
  public:
    explicit ServerStreamWriter(ServerHeader header) : header_(std::move(header)) {}

    std::string open();     // our stream header; remembers it was sent
    std::string features(); // header if not yet sent, then STARTTLS features
    std::string error(StreamErrorCondition c, std::string_view text = {}); // header first if needed
    bool header_sent() const { return sent_; }
    // A new stream follows STARTTLS / SASL: the next open() is due again, with a fresh id.
    void restart(std::string new_id);
    const ServerHeader& header() const { return header_; }

  private:
    ServerHeader header_;
    bool sent_ = false;
};

} // namespace edgepair::xmpp
