#pragma once
// The nghttp2 glue both HTTP/2 ends of edgepair share: edge-e's client sessions on 8443
// (edge-e/h2_session.cpp) and the traversal link (common/link/link_conn.cpp). Each keeps its own protocol
// logic (requests, the link handshake, its counters); what they do the same way with nghttp2 lives here
// once:
//   - a session with application-driven flow control (no automatic WINDOW_UPDATE: a window reopens only
//     when the bytes have left the application's buffers) and no closed-stream bookkeeping, its SETTINGS
//     and connection window sent at once, the RST_STREAM rate limit where this nghttp2 has the knob;
//   - the send loop: frames are serialised into the connection's output only while it is below its high
//     watermark (net::Connection::on_drained resumes it), never from inside an nghttp2 callback;
//   - header blocks to nghttp2_nv (never-indexed literals for secrets) and back to string views;
//   - a stream's outgoing body buffer read by nghttp2's data provider (deferred when empty, resumed when
//     bytes arrive);
//   - the table of open streams by id;
//   - error codes to names, metric labels and core::FailureKind.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "common/core/failure.h"

namespace edgepair::net {
class Connection;
}

namespace edgepair::http::h2 {

using Fields = std::vector<std::pair<std::string, std::string>>;

// ---- session set-up ----

struct Callbacks {
    nghttp2_on_begin_headers_callback on_begin_headers = nullptr;
    nghttp2_on_header_callback on_header = nullptr;
    nghttp2_on_frame_recv_callback on_frame_recv = nullptr;
    nghttp2_on_data_chunk_recv_callback on_data_chunk = nullptr;
    nghttp2_on_stream_close_callback on_stream_close = nullptr;
    nghttp2_on_invalid_frame_recv_callback on_invalid_frame = nullptr;
    nghttp2_on_frame_send_callback on_frame_send = nullptr;
    nghttp2_error_callback2 on_error = nullptr;
};

// The callbacks a handler type H has, as static member functions named like the fields above
// (H::on_header, ...): each end names its callbacks once, in its own type.
template <class H> Callbacks callbacks_of() {
    Callbacks c;
    if constexpr (requires { &H::on_begin_headers; }) c.on_begin_headers = &H::on_begin_headers;
    if constexpr (requires { &H::on_header; }) c.on_header = &H::on_header;
    if constexpr (requires { &H::on_frame_recv; }) c.on_frame_recv = &H::on_frame_recv;
    if constexpr (requires { &H::on_data_chunk; }) c.on_data_chunk = &H::on_data_chunk;
    if constexpr (requires { &H::on_stream_close; }) c.on_stream_close = &H::on_stream_close;
    if constexpr (requires { &H::on_invalid_frame; }) c.on_invalid_frame = &H::on_invalid_frame;
    if constexpr (requires { &H::on_frame_send; }) c.on_frame_send = &H::on_frame_send;
    if constexpr (requires { &H::on_error; }) c.on_error = &H::on_error;
    return c;
}

// RST_STREAM frames the peer may send: a burst, then a rate per second (CVE-2023-44487, "rapid reset");
// nghttp2 answers a peer over it with GOAWAY. Applied only where nghttp2 has the knob (1.57+): older
// releases have neither the limit nor a way to set it.
struct ResetRateLimit {
    uint64_t burst = 0;
    uint64_t rate = 0;
};
// As good as no limit (nghttp2 keeps the values in a token bucket: UINT64_MAX itself would overflow it).
inline constexpr ResetRateLimit kNoResetLimit{UINT64_MAX / 2, UINT64_MAX / 2};

struct SessionSetup {
    bool server = true;
    Callbacks callbacks;
    std::optional<ResetRateLimit> reset_limit; // unset: nghttp2's default
    std::vector<nghttp2_settings_entry> settings;
    int32_t connection_window = 0; // our receive window for the whole connection; 0: the protocol's 65,535
};

// Creates the session and queues its SETTINGS (and the connection WINDOW_UPDATE). 0, or nghttp2's error
// code with *out left null.
int open_session(nghttp2_session** out, const SessionSetup& setup, void* user_data);
// Frees the session (no callback runs) and nulls the pointer, so later calls see no session.
void close_session(nghttp2_session*& s);

// ---- input and output ----

// Feeds received bytes to the session (which calls the callbacks); nghttp2's return value: < 0 is a
// connection error, for which nghttp2 has usually queued a GOAWAY of its own.
ssize_t receive(nghttp2_session* s, const char* data, size_t len);

struct Sent {
    int error = 0;        // nghttp2's error code from mem_send (the session is unusable)
    uint64_t bytes = 0;   // bytes handed to the connection
    bool gone = false;    // the owner was destroyed from inside a callback: touch nothing
    bool blocked = false; // stopped at the connection's high watermark with frames possibly left
};
// Serialises pending frames into `out` while it is below its high watermark. `alive` expires when the
// owner is destroyed (a data-provider or frame-sent callback may lead there).
Sent send_frames(nghttp2_session* s, net::Connection& out, const std::weak_ptr<bool>& alive);

// ---- header blocks ----

// nghttp2's view of `h` (which must outlive the result). Names in `never_indexed` are sent as
// never-indexed literals (RFC 7541 7.1.3), so that a secret never enters an HPACK dynamic table.
std::vector<nghttp2_nv> to_nv(const Fields& h, std::span<const std::string_view> never_indexed = {});
// The same over views: a block assembled from strings its caller already holds, without copying them
// (nghttp2 copies the block once, when it is submitted).
using FieldViews = std::vector<std::pair<std::string_view, std::string_view>>;
std::vector<nghttp2_nv> to_nv(const FieldViews& h, std::span<const std::string_view> never_indexed = {});

inline std::string_view view(const uint8_t* p, size_t n) {
    return {reinterpret_cast<const char*>(p), n};
}

// How a submitted header block is followed: `read` null means no body (END_STREAM on the HEADERS).
struct Body {
    nghttp2_data_source_read_callback read = nullptr;
    void* source = nullptr;
};
// 0 or nghttp2's error code.
int submit_response(nghttp2_session* s, int32_t id, const Fields& h, Body body,
                    std::span<const std::string_view> never_indexed = {});
int submit_response_views(nghttp2_session* s, int32_t id, const FieldViews& h, Body body,
                          std::span<const std::string_view> never_indexed = {});
// The new stream's id, or nghttp2's (negative) error code.
int32_t submit_request(nghttp2_session* s, const Fields& h, Body body, void* stream_user_data,
                       std::span<const std::string_view> never_indexed = {});
int32_t submit_request_views(nghttp2_session* s, const FieldViews& h, Body body, void* stream_user_data,
                             std::span<const std::string_view> never_indexed = {});

// ---- bodies ----

// A stream's outgoing bytes: appended at the back, framed from the front by the data provider. Compacted
// once the framed part is both above 64 KiB and the larger half, so a steady stream costs few moves.
class OutBuffer {
  public:
    size_t size() const { return buf_.size() - off_; }
    bool empty() const { return size() == 0; }
    void append(std::string_view d) { buf_.append(d); }
    void assign(std::string s) {
        buf_ = std::move(s);
        off_ = 0;
    }
    void clear() {
        buf_.clear();
        off_ = 0;
    }
    // Copies up to `max` bytes to `dst` and drops them; how many.
    size_t take(uint8_t* dst, size_t max);

  private:
    std::string buf_;
    size_t off_ = 0;
};

// The data-provider read both ends use: up to `length` bytes of `out`, with END_STREAM once it is empty
// and `eof`; when empty but more is to come, `deferred` is set and nghttp2 waits for resume().
ssize_t read_body(OutBuffer& out, bool eof, bool& deferred, uint8_t* buf, size_t length, uint32_t* flags);

// Bytes (or the end) were added to a stream whose provider was deferred: let nghttp2 read it again.
void resume(nghttp2_session* s, int32_t id, bool& deferred);

// ---- streams ----

// The open streams of one session, owned by id. The owner decides when a stream enters (on its first
// HEADERS, or when it submits a request) and leaves (nghttp2's stream-close callback).
template <class S> class StreamTable {
  public:
    using Map = std::unordered_map<int32_t, std::unique_ptr<S>>;

    S* find(int32_t id) const {
        auto it = map_.find(id);
        return it == map_.end() ? nullptr : it->second.get();
    }
    S* add(int32_t id, std::unique_ptr<S> s) {
        auto* p = s.get();
        map_[id] = std::move(s);
        return p;
    }
    // Also makes the stream nghttp2's stream user data (for a stream the peer opened).
    S* attach(nghttp2_session* session, int32_t id, std::unique_ptr<S> s) {
        nghttp2_session_set_stream_user_data(session, id, s.get());
        return add(id, std::move(s));
    }
    std::unique_ptr<S> take(int32_t id) {
        auto it = map_.find(id);
        if (it == map_.end()) return nullptr;
        auto s = std::move(it->second);
        map_.erase(it);
        return s;
    }
    // Every stream, the table left empty: for a teardown that calls out to each one.
    Map take_all() {
        Map m = std::move(map_);
        map_.clear();
        return m;
    }
    void clear() { map_.clear(); }
    size_t size() const { return map_.size(); }
    typename Map::iterator begin() { return map_.begin(); }
    typename Map::iterator end() { return map_.end(); }

  private:
    Map map_;
};

// ---- errors ----

// RFC 9113 section 7 name of an error code ("CANCEL", "REFUSED_STREAM"; unknown codes are named as such).
std::string_view error_name(uint32_t code);
// GOAWAY with `debug` as its opaque data, naming the last stream we processed. 0 or nghttp2's error code.
int submit_goaway(nghttp2_session* s, uint32_t code, std::string_view debug);
std::string_view goaway_debug(const nghttp2_goaway& g);
// The kind of failure a stream reset with `code` by the peer means (NO_ERROR is no failure).
core::FailureKind reset_kind(uint32_t code);
// Metric label for a frame nghttp2 refused from a client (its library error code, on_invalid_frame_recv).
std::string_view invalid_frame_label(int lib_error);

} // namespace edgepair::http::h2
