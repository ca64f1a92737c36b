#pragma once
// One traversal-link connection: TLS (or plain TCP in tests) carrying HTTP/2 with the roles reversed.
// edge-e is the TLS server but the HTTP/2 client (the Opener: it has the clients, so it opens the streams);
// edge-c is the TLS client but the HTTP/2 server (the Acceptor: it serves streams towards the enterprise).
//
// Handshake on the wire, after TLS:
//   edge-e  HEADERS  stream 1  POST /link/control, :authority <edge-e node>, x-link-version
//   edge-c  HEADERS  stream 1  :status 200, x-link-user, x-link-password, x-link-node, x-link-version
//   edge-e  verifies the credentials; on failure GOAWAY(INADEQUATE_SECURITY, "auth failed: ...") and close;
//           on success the first control message on its request body is the link's own "link-up" hello.
// Stream 1 then stays open both ways as the control stream (length-prefixed JSON messages). Every other
// stream is a tunnelled session opened by edge-e.
//
// Naming follows HAProxy: connection-level things end in c (LinkConn), stream-level in s (LinkStream).
// Everything runs on the loop that owns the net::Connection.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/core/failure.h"
#include "common/core/loop.h"
#include "common/http/h2_glue.h"
#include "common/link/control.h"
#include "common/net/connection.h"
#include "common/obs/metrics.h"

struct event;

namespace edgepair::link {

inline constexpr std::string_view kAlpn = "edgepair-link/1";
inline constexpr std::string_view kLinkVersion = "1";
inline constexpr std::string_view kControlPath = "/link/control";
inline constexpr std::string_view kTunnelPath = "/link/tunnel";

// HTTP/2 error codes used with LinkStream::reset (RFC 9113 section 7).
inline constexpr uint32_t kNoError = 0x0;
inline constexpr uint32_t kProtocolError = 0x1;
inline constexpr uint32_t kInternalError = 0x2;
inline constexpr uint32_t kRefusedStream = 0x7;
inline constexpr uint32_t kCancel = 0x8;
inline constexpr uint32_t kInadequateSecurity = 0xc;

enum class Role { Opener, Acceptor };
enum class LinkState { Tls, Auth, Up, Closing, Closed };
enum class StreamKind { Http, Sip, Xmpp };

const char* to_string(Role r);
const char* to_string(LinkState s);
const char* to_string(StreamKind k);
std::optional<StreamKind> parse_stream_kind(std::string_view s);

using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;
// First value for a (lower-case) name; empty when absent.
std::string_view header_value(const Headers& h, std::string_view name);

using CredentialChecker = std::function<bool(std::string_view user, std::string_view pass)>;

struct LinkOptions {
    Role role = Role::Acceptor;
    std::string node_name; // ours: edge-e sends it as :authority, edge-c as x-link-node
    std::string peer_name; // what we dialled or the configured peer, for logs and /status (may be empty)

    // Opener (edge-e).
    CredentialChecker check_credentials; // unset = every login is refused
    bool require_client_cert = true;     // TLS connections only
    std::string required_san;            // tls_verify_subject_name; empty = no name check

    // Acceptor (edge-c).
    std::string username, password;
    Headers announce; // more headers of the control stream's answer (link/peer_config.h: its configuration)

    bool require_alpn = true; // TLS connections only
    uint32_t stream_window = 256 * 1024;
    uint32_t connection_window = 16 * 1024 * 1024;
    // Streams the peer may have open at once (our SETTINGS_MAX_CONCURRENT_STREAMS). On edge-c, the acceptor,
    // it bounds edge-e's client flows and requests on the link: each held SIP flow or XMPP stream is one.
    uint32_t max_concurrent_streams = 10000;
    size_t stream_high_watermark = 256 * 1024; // LinkStream::write says "stop" above this much queued
    size_t output_cap = 64 * 1024; // stop serialising frames while the socket has this much queued
    uint64_t ping_interval_ms = 10000;
    uint64_t ping_timeout_ms = 5000;
    uint64_t auth_timeout_ms = 10000; // TLS handshake plus credential exchange
    uint64_t close_linger_ms = 2000;  // how long a GOAWAY may take to flush before the socket is dropped
    size_t max_control_message = 64 * 1024 * 1024;
};

class LinkConn;
class LinkStream;

// The application's side of one stream. Every callback runs on the link's loop. on_close is always the
// last call and comes exactly once unless the application itself called reset() or set_handler(nullptr);
// after it the LinkStream pointer is dead.
class StreamHandler {
  public:
    virtual ~StreamHandler() = default;
    // Opener: the response headers (:status first). Acceptor: never (request headers come with on_stream).
    virtual void on_headers(LinkStream&, const Headers&) {}
    // Bytes are flow-controlled: call LinkStream::consumed(n) once they have left the application's
    // buffers, or the peer stops sending on this stream (and only this stream) after the window.
    virtual void on_data(LinkStream&, const char* data, size_t len) = 0;
    virtual void on_end(LinkStream&) {} // the peer finished its side (END_STREAM)
    virtual void on_writable(LinkStream&) {
    } // queued output fell below half the high watermark after write() said stop
    // `failure` false: both sides ended cleanly. Else why the stream died, as a kind and a side: a reset
    // by the peer edge is Side::Edge with the kind its code means (Refused for REFUSED_STREAM, Cancelled,
    // Protocol, Limit, Reset); the link's connection going away is Side::Link, Lost; this edge destroying
    // the link under the stream is Side::Link, Closed. Sessions decide and count from kind and side (502/503,
    // SIP 503, XMPP remote-server-timeout, a retry); the detail is for logs only.
    virtual void on_close(LinkStream&, const core::Failure& failure) = 0;
};

class LinkStream {
  public:
    LinkStream(const LinkStream&) = delete;
    LinkStream& operator=(const LinkStream&) = delete;

    int32_t id() const { return id_; }
    StreamKind kind() const { return kind_; }
    LinkConn& link() const { return link_; }
    // Acceptor: what was received. Opener: the control stream's block only (a proxied stream's block is
    // the caller's, which nghttp2 copied when the stream was opened).
    const Headers& request_headers() const { return request_headers_; }
    // Acceptor: frees the received block once the stream's handler has copied what it needs from it; a
    // held byte stream (XMPP) would otherwise keep it for as long as it lives. request_headers() is empty
    // from then on.
    void release_request_headers() { Headers().swap(request_headers_); }
    void set_handler(StreamHandler* h) { handler_ = h; }
    StreamHandler* handler() const { return handler_; }

    // Acceptor only: the response (:status first; for byte streams 200 means "connected upstream").
    bool send_headers(const Headers& headers, bool end_stream = false);
    // Queues bytes. False when the queue is above the high watermark (the bytes are still queued): pause
    // the source until on_writable. False too, with nothing queued, once the stream is closed or ended.
    bool write(std::string_view data);
    void end();
    // Abandons the stream: RST_STREAM to the peer, no more callbacks.
    void reset(uint32_t error_code = kCancel);
    // The application took `n` received bytes: reopen that much of this stream's window.
    void consumed(size_t n);

    size_t pending_output() const { return out_.size(); }
    bool closed() const { return closed_; }
    uint64_t bytes_in() const { return bytes_in_; }
    uint64_t bytes_out() const { return bytes_out_; }

  private:
    friend class LinkConn;
    LinkStream(LinkConn& link, int32_t id) : link_(link), id_(id) {}
    bool usable() const { return !closed_ && !local_reset_; }

    LinkConn& link_;
    int32_t id_;
    StreamKind kind_ = StreamKind::Http;
    bool control_ = false;
    StreamHandler* handler_ = nullptr;
    Headers request_headers_;
    Headers recv_headers_; // the header block being received
    http::h2::OutBuffer out_;
    bool end_requested_ = false;
    bool provider_ = false; // a data provider is attached in nghttp2
    bool deferred_ = false; // ... and it returned NGHTTP2_ERR_DEFERRED
    bool headers_sent_ = false;
    bool above_ = false; // write() returned false; on_writable is owed
    bool local_reset_ = false;
    bool closed_ = false;
    bool counted_ = false; // in LinkConn::streams_open_
    uint64_t bytes_in_ = 0, bytes_out_ = 0;
};

struct LinkCallbacks {
    std::function<void()> on_up; // authenticated; Opener may now open streams
    std::function<void(std::string_view reason)>
        on_close; // always the last call; the owner may delete the LinkConn
    std::function<void(std::string_view message)> on_control_message; // one JSON document per call
    // Acceptor: a tunnelled stream arrived. Attach a handler (stream->set_handler) before returning, or
    // the stream is refused.
    std::function<void(LinkStream*, const Headers&)> on_stream;
};

struct LinkStatus {
    Role role = Role::Acceptor;
    std::string peer_address; // ip:port
    std::string peer_name;    // configured / dialled name
    std::string peer_node;    // node name the peer announced
    LinkState state = LinkState::Tls;
    uint64_t since_ms = 0; // steady clock (core::Loop::now_ms) of the last state change
    size_t streams_open = 0;
    uint64_t streams_total = 0;
    uint64_t bytes_in = 0, bytes_out = 0;
    std::string tls_version, alpn;
    std::string last_error;
};

class LinkConn {
  public:
    // The connection must not be started yet, or be started and ready (TLS done) already; the LinkConn
    // takes over its callbacks.
    LinkConn(core::Loop& loop, std::unique_ptr<net::Connection> conn, LinkOptions opts,
             obs::Registry& metrics);
    // Streams still open are told "link closed" (their handlers must still be alive or detached). No
    // link-level callback runs. Do not destroy a LinkConn from inside one of its stream callbacks; from
    // on_close (or outside any callback) is fine.
    ~LinkConn();
    LinkConn(const LinkConn&) = delete;
    LinkConn& operator=(const LinkConn&) = delete;

    void set_callbacks(LinkCallbacks cb) { cb_ = std::move(cb); }
    void start();

    // Opener, once up. nullptr when the link is not up or is draining. For Http, `headers` carry the
    // request's :method/:path/:authority (:scheme defaults to https); for Sip/Xmpp the library writes the
    // pseudo-headers and `headers` carry x-client-addr, x-sni, x-domain. Hop-by-hop HTTP/1 headers are
    // dropped. end_stream: the request has no body.
    LinkStream* open_stream(StreamKind kind, const Headers& headers, StreamHandler* handler,
                            bool end_stream = false);
    // Either side, once up: one control message (a JSON document).
    bool send_control(std::string_view json);

    // Drain: GOAWAY(NO_ERROR), no new streams, close when the open ones finish.
    void shutdown();
    // Now: GOAWAY with `reason` as debug data, then close; every open stream gets on_close. Deferred to
    // the next loop turn, so it is safe from any callback.
    void close(std::string_view reason);

    Role role() const { return opts_.role; }
    LinkState state() const { return state_; }
    bool up() const { return state_ == LinkState::Up; }
    const std::string& peer_node() const { return peer_node_; }
    // Opener: the headers of the peer's answer on the control stream, secrets removed (set once up).
    const Headers& peer_headers() const { return peer_headers_; }
    const std::string& last_error() const { return last_error_; }
    size_t streams_open() const { return streams_open_; }
    // Opener, for tests: the next stream ID nghttp2 hands out (odd, above the last one), to reach the end of
    // the ID space without opening a billion streams. False if nghttp2 refuses it.
    bool jump_stream_ids(int32_t next);
    LinkStatus status() const;
    std::string status_json() const;
    net::Connection& connection() { return *conn_; }

  private:
    friend class LinkStream;
    struct H2; // nghttp2 callbacks
    enum class CloseMode { Goaway, Abort };

    void on_ready();
    void on_conn_data(const char* data, size_t len);
    void on_conn_closed(std::string_view why);
    bool create_session();
    void submit_control_request();
    void schedule_send();
    void do_send();
    void set_state(LinkState s);
    void become_up();
    void fail(std::string reason, CloseMode mode, uint32_t code = kNoError, std::string debug = {});
    void fail_auth(const std::string& label, const std::string& why, const std::string& to_peer);
    void on_ping_tick();
    void stream_output_added(LinkStream& s);
    void on_acceptor_request(LinkStream& s);
    void on_opener_response(LinkStream& s);
    void on_control_data(const char* data, size_t len);
    void on_goaway(uint32_t code, std::string_view debug);
    void maybe_finish_drain();
    // The HEADERS block for a new stream, as views into `headers` and into `owned` (names that needed
    // lowercasing): valid while both are.
    http::h2::FieldViews build_request(StreamKind kind, const Headers& headers,
                                       std::vector<std::string>& owned) const;
    LinkStream* find(int32_t id);
    static void on_send_event(int, short, void* arg);

    core::Loop& loop_;
    std::unique_ptr<net::Connection> conn_;
    LinkOptions opts_;
    obs::Registry& reg_;
    LinkCallbacks cb_;
    nghttp2_session* session_ = nullptr;
    event* send_ev_ = nullptr;
    std::unique_ptr<core::Timer> ping_timer_, dead_timer_, auth_timer_, linger_timer_;

    LinkState state_ = LinkState::Tls;
    uint64_t since_ms_ = 0;
    http::h2::StreamTable<LinkStream> streams_;
    LinkStream* control_ = nullptr;
    ControlDecoder control_in_;
    bool hello_seen_ = false;      // Acceptor: edge-e's "link-up" hello (its first control message) arrived
    bool goaway_received_ = false; // peer drains: open no more streams
    bool close_after_send_ = false;
    bool abort_pending_ = false;
    bool auth_failure_counted_ = false;
    size_t streams_open_ = 0;
    uint64_t streams_total_ = 0;
    uint64_t full_warned_ms_ = 0; // last "peer's stream limit reached" warning (one per 10 s)
    bool ids_used_up_ = false;    // nghttp2 has no stream ID left for us: the link is being ended
    std::vector<int32_t> writable_;
    Headers peer_headers_;
    std::string peer_node_, last_error_, close_reason_, tls_version_, alpn_;

    obs::Counter* m_streams_;
    obs::Counter* m_full_;
    obs::Counter* m_bytes_in_;
    obs::Counter* m_bytes_out_;
    obs::Counter* m_up_;
    obs::Counter* m_refused_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::link
