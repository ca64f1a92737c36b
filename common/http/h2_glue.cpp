#include "common/http/h2_glue.h"

#include <algorithm>
#include <cstring>

#include "common/net/connection.h"

namespace edgepair::http::h2 {

int open_session(nghttp2_session** out, const SessionSetup& setup, void* user_data) {
    *out = nullptr;
    const Callbacks& c = setup.callbacks;
    nghttp2_session_callbacks* cbs = nullptr;
    if (int rv = nghttp2_session_callbacks_new(&cbs); rv != 0) return rv;
    if (c.on_begin_headers) nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, c.on_begin_headers);
    if (c.on_header) nghttp2_session_callbacks_set_on_header_callback(cbs, c.on_header);
    if (c.on_frame_recv) nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c.on_frame_recv);
    if (c.on_data_chunk) nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c.on_data_chunk);
    if (c.on_stream_close) nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c.on_stream_close);
    if (c.on_invalid_frame)
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, c.on_invalid_frame);
    if (c.on_frame_send) nghttp2_session_callbacks_set_on_frame_send_callback(cbs, c.on_frame_send);
    if (c.on_error) nghttp2_session_callbacks_set_error_callback2(cbs, c.on_error);
    nghttp2_option* opt = nullptr;
    if (int rv = nghttp2_option_new(&opt); rv != 0) {
        nghttp2_session_callbacks_del(cbs);
        return rv;
    }
    // Windows reopen when the application has passed the bytes on (consume_*), so a slow reader holds back
    // its own stream only; closed streams are not kept for priority bookkeeping neither end uses.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
#ifdef EDGEPAIR_HAVE_NGHTTP2_RESET_RATELIMIT
    if (setup.reset_limit)
        nghttp2_option_set_stream_reset_rate_limit(opt, setup.reset_limit->burst, setup.reset_limit->rate);
#endif
    int rv = setup.server ? nghttp2_session_server_new2(out, cbs, user_data, opt)
                          : nghttp2_session_client_new2(out, cbs, user_data, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        *out = nullptr;
        return rv;
    }
    nghttp2_submit_settings(*out, NGHTTP2_FLAG_NONE, setup.settings.data(), setup.settings.size());
    if (setup.connection_window > 0)
        nghttp2_session_set_local_window_size(*out, NGHTTP2_FLAG_NONE, 0, setup.connection_window);
    return 0;
}

void close_session(nghttp2_session*& s) {
    if (s) nghttp2_session_del(s);
    s = nullptr;
}

ssize_t receive(nghttp2_session* s, const char* data, size_t len) {
    return nghttp2_session_mem_recv(s, reinterpret_cast<const uint8_t*>(data), len);
}

Sent send_frames(nghttp2_session* s, net::Connection& out, const std::weak_ptr<bool>& alive) {
    Sent r;
    while (!out.above_high_watermark()) {
        const uint8_t* data = nullptr;
        ssize_t n = nghttp2_session_mem_send(s, &data);
        if (alive.expired()) {
            r.gone = true;
            return r;
        }
        if (n < 0) {
            r.error = int(n);
            return r;
        }
        if (n == 0) return r;
        out.write(std::string_view(reinterpret_cast<const char*>(data), size_t(n)));
        r.bytes += uint64_t(n);
    }
    r.blocked = true;
    return r;
}

namespace {
template <class Block>
std::vector<nghttp2_nv> nv_of(const Block& h, std::span<const std::string_view> never_indexed) {
    std::vector<nghttp2_nv> nv;
    nv.reserve(h.size());
    for (auto& [k, v] : h) {
        bool secret = std::find(never_indexed.begin(), never_indexed.end(), k) != never_indexed.end();
        nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                                reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
                                uint8_t(secret ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE)});
    }
    return nv;
}

int32_t submit_request_nv(nghttp2_session* s, const std::vector<nghttp2_nv>& nv, Body body,
                          void* stream_user_data) {
    nghttp2_data_provider prd;
    prd.source.ptr = body.source;
    prd.read_callback = body.read;
    return nghttp2_submit_request(s, nullptr, nv.data(), nv.size(), body.read ? &prd : nullptr,
                                  stream_user_data);
}
} // namespace

std::vector<nghttp2_nv> to_nv(const Fields& h, std::span<const std::string_view> never_indexed) {
    return nv_of(h, never_indexed);
}

std::vector<nghttp2_nv> to_nv(const FieldViews& h, std::span<const std::string_view> never_indexed) {
    return nv_of(h, never_indexed);
}

namespace {
int submit_response_nv(nghttp2_session* s, int32_t id, const std::vector<nghttp2_nv>& nv, Body body) {
    nghttp2_data_provider prd;
    prd.source.ptr = body.source;
    prd.read_callback = body.read;
    return nghttp2_submit_response(s, id, nv.data(), nv.size(), body.read ? &prd : nullptr);
}
} // namespace

int submit_response(nghttp2_session* s, int32_t id, const Fields& h, Body body,
                    std::span<const std::string_view> never_indexed) {
    return submit_response_nv(s, id, to_nv(h, never_indexed), body);
}

int submit_response_views(nghttp2_session* s, int32_t id, const FieldViews& h, Body body,
                          std::span<const std::string_view> never_indexed) {
    return submit_response_nv(s, id, to_nv(h, never_indexed), body);
}

int32_t submit_request(nghttp2_session* s, const Fields& h, Body body, void* stream_user_data,
                       std::span<const std::string_view> never_indexed) {
    return submit_request_nv(s, to_nv(h, never_indexed), body, stream_user_data);
}

int32_t submit_request_views(nghttp2_session* s, const FieldViews& h, Body body, void* stream_user_data,
                             std::span<const std::string_view> never_indexed) {
    return submit_request_nv(s, to_nv(h, never_indexed), body, stream_user_data);
}

size_t OutBuffer::take(uint8_t* dst, size_t max) {
    size_t n = std::min(size(), max);
    std::memcpy(dst, buf_.data() + off_, n);
    off_ += n;
    if (off_ == buf_.size()) {
        // Given back whole: a held stream (XMPP, SIP) would otherwise keep its largest burst's capacity
        // for as long as it lives. The next append allocates again.
        std::string().swap(buf_);
        off_ = 0;
    } else if (off_ >= 64 * 1024 && off_ > buf_.size() / 2) {
        buf_.erase(0, off_);
        off_ = 0;
    }
    return n;
}

ssize_t read_body(OutBuffer& out, bool eof, bool& deferred, uint8_t* buf, size_t length, uint32_t* flags) {
    if (out.empty()) {
        if (eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = out.take(buf, length);
    if (out.empty() && eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return ssize_t(n);
}

void resume(nghttp2_session* s, int32_t id, bool& deferred) {
    if (deferred && s) {
        deferred = false;
        nghttp2_session_resume_data(s, id);
    }
}

std::string_view error_name(uint32_t code) {
    return nghttp2_http2_strerror(code);
}

int submit_goaway(nghttp2_session* s, uint32_t code, std::string_view debug) {
    return nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s), code,
                                 reinterpret_cast<const uint8_t*>(debug.data()), debug.size());
}

std::string_view goaway_debug(const nghttp2_goaway& g) {
    return {reinterpret_cast<const char*>(g.opaque_data), g.opaque_data_len};
}

core::FailureKind reset_kind(uint32_t code) {
    switch (code) {
    case NGHTTP2_NO_ERROR:
        return core::FailureKind::None;
    case NGHTTP2_REFUSED_STREAM:
        return core::FailureKind::Refused;
    case NGHTTP2_CANCEL:
        return core::FailureKind::Cancelled;
    case NGHTTP2_PROTOCOL_ERROR:
    case NGHTTP2_FLOW_CONTROL_ERROR:
    case NGHTTP2_STREAM_CLOSED:
    case NGHTTP2_FRAME_SIZE_ERROR:
    case NGHTTP2_COMPRESSION_ERROR:
        return core::FailureKind::Protocol;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return core::FailureKind::Limit;
    default:
        return core::FailureKind::Reset;
    }
}

std::string_view invalid_frame_label(int lib_error) {
    switch (lib_error) {
    case NGHTTP2_ERR_HTTP_HEADER:
        return "h2_bad_header";
    case NGHTTP2_ERR_HTTP_MESSAGING:
        return "h2_bad_message";
    case NGHTTP2_ERR_FLOW_CONTROL:
        return "h2_flow_control";
    case NGHTTP2_ERR_REFUSED_STREAM:
        return "h2_refused_stream";
    default:
        return "h2_protocol";
    }
}

} // namespace edgepair::http::h2
