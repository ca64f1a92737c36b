#pragma once
// The one header policy of the pair: which field names cross which hop, and which field lines make a
// request unacceptable. Every filter in the pair calls this file (edge-e's gate and its response paths,
// edge-c's upstream request and response, the HTTP/1.1 client, the link's HTTP/2 frames), so a field
// cannot be dropped on one path and forwarded on another. docs/SECURITY.md, "HTTP header policy", lists
// each class with its reason and metric.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::http {

// Connection-scoped fields (RFC 9110 7.6.1, RFC 9113 8.2.2): Connection, Keep-Alive, TE, Trailer,
// Transfer-Encoding, Upgrade, HTTP2-Settings and every Proxy-* field. They describe one hop; each sender
// chooses its own framing, and trailers are never forwarded, so Trailer announces nothing downstream.
bool is_connection_field(std::string_view name);

// Content-Length and Transfer-Encoding: each hop frames the body itself.
bool is_framing_field(std::string_view name);

// Fields edge-c trusts from edge-e only (x-edge-*, x-client-addr, x-link-*, x-tunnel): a client or an
// upstream can never set them.
bool is_link_private(std::string_view name);

// Fields that some frameworks let override the method, path or host they route by (IIS and Symfony read
// X-Original-URL / X-Rewrite-URL; Spring, Rails, Laravel and others X-HTTP-Method-Override and friends;
// reverse-proxy-aware apps X-Forwarded-Host/Server/Prefix/Proto/Port and Forwarded). The allow list
// checked the method and path edge-e saw; these would let the internal server see others, so they are
// removed before a request leaves edge-e (and again at edge-c). The list is short on purpose:
//   x-original-url, x-rewrite-url, x-http-method-override, x-http-method, x-method-override,
//   x-forwarded-host, x-forwarded-server, x-forwarded-prefix, x-forwarded-proto, x-forwarded-port,
//   x-host, forwarded
bool is_routing_override(std::string_view name);

// A field name containing '_' that names a field this policy acts on once '_' is read as '-' (and case
// and leading/trailing '_' are ignored): Transfer_Encoding, Content_Length, Connection_, X_Edge_Host,
// X_Original_URL. CGI, WSGI, PHP and Rack servers turn both spellings into the same variable
// (HTTP_TRANSFER_ENCODING), and the last one they see wins.
bool is_lookalike(std::string_view name);

// The names listed in a message's Connection fields: further connection-scoped fields for that message
// (RFC 9110 7.6.1). At most `kMaxTokens` are kept; a message listing more is unusual, and every field
// beyond the cap is still filtered by the fixed lists.
class ConnectionTokens {
  public:
    static constexpr size_t kMaxTokens = 32;
    // One Connection field value ("close, x-foo").
    void add_field_value(std::string_view value);
    bool contains(std::string_view name) const;
    bool empty() const { return names_.empty(); }

  private:
    std::vector<std::string> names_;
};

// The hops a field can cross. Each hop's rule is the union of the classes in its comment.
enum class Hop : uint8_t {
    ClientRequest,    // edge-e, client request -> link: connection, Connection-listed, Host (it becomes
                      // :authority), link-private, routing overrides
    UpstreamRequest,  // edge-c, link -> internal server: connection, Connection-listed, link-private,
                      // routing overrides (edge-e removed them already: defence in depth)
    UpstreamResponse, // edge-c, internal server's response -> link: connection, Connection-listed,
                      // link-private
    ClientResponse,   // edge-e, link response -> client: connection, link-private
    LinkFrame,        // any field list onto one of the link's HTTP/2 frames: connection (TE only as
                      // "trailers"), Host (HTTP/2 carries :authority)
    Http1Request,     // the HTTP/1.1 client towards any upstream: connection, Connection-listed (it sets
                      // Host and framing itself)
};

// True when the field `name: value` crosses `hop`. `listed`: the message's Connection tokens, if any.
bool forwards(Hop hop, std::string_view name, std::string_view value = {},
              const ConnectionTokens* listed = nullptr);

// Field lines that make a request unacceptable as a whole (answered 400; nothing is forwarded).
enum class FieldRefusal : uint8_t {
    None,
    // A look-alike name (is_lookalike). Refused, not dropped: a request that carries one was built for a
    // server that reads '_' as '-', next to the real framing it is a smuggling attempt, and a client-side
    // intermediary may already have framed it the other way; no legitimate client sends one. Dropping it
    // would forward the attempt silently and leave nothing in the metrics.
    Lookalike,
    // A second Authorization field: edge-c would check one and the upstream could use the other.
    DuplicateAuthorization,
};
std::string_view refusal_label(FieldRefusal r); // "lookalike_header", "duplicate_authorization"

// Fed with every field name of one request, in order (pseudo-headers are skipped).
class RequestFieldCheck {
  public:
    // False once the request is refused; later calls change nothing.
    bool add(std::string_view name);
    FieldRefusal refusal() const { return refusal_; }
    const std::string& field() const { return field_; } // the offending name, for logs

  private:
    FieldRefusal refusal_ = FieldRefusal::None;
    std::string field_;
    bool have_authorization_ = false;
};

} // namespace edgepair::http
