#include "common/net/connection.h"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/net/listener.h"
#include "common/net/tls_context.h"

namespace edgepair::net {

namespace {
// SSL_free_buffers on a partial record is a use-after-free before OpenSSL 3.0.14 (CVE-2024-4741). A
// distribution that backports the fix without the version number only loses the memory saving.
bool free_buffers_safe() {
    static const bool safe = OpenSSL_version_num() >= 0x300000e0UL;
    return safe;
}

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kWriteChunk = 16 * 1024; // one full TLS record per SSL_write
} // namespace

Connection::Connection(core::Loop& loop, int fd, SSL* ssl, bool server_side)
    : loop_(loop), fd_(fd), ssl_(ssl), server_side_(server_side), state_(State::Connecting) {
    peer_ = peer_of(fd_);
    if (ssl_) {
        SSL_set_fd(ssl_, fd_);
        watch_raw_reads();
        if (server_side_)
            SSL_set_accept_state(ssl_);
        else
            SSL_set_connect_state(ssl_);
    }
    flush_ev_ = event_new(loop_.base(), -1, 0, &Connection::on_flush_event, this);
}

Connection::~Connection() {
    *alive_ = false;
    io_.reset();
    idle_.reset();
    event_free(flush_ev_);
    if (ssl_) SSL_free(ssl_);
    if (starttls_ssl_) SSL_free(starttls_ssl_);
    if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<Connection> Connection::connect(core::Loop& loop, const SockAddr& to, SSL* ssl,
                                                std::string* err) {
    int fd = ::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (err) *err = fmt::format("socket(): {}", std::strerror(errno));
        if (ssl) SSL_free(ssl);
        return nullptr;
    }
    tune_socket(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&to.ss), to.len) != 0 && errno != EINPROGRESS) {
        if (err) *err = fmt::format("connect to {}: {}", to.str(), std::strerror(errno));
        ::close(fd);
        if (ssl) SSL_free(ssl);
        return nullptr;
    }
    return connecting(loop, fd, to, ssl);
}

std::unique_ptr<Connection> Connection::connecting(core::Loop& loop, int fd, const SockAddr& to, SSL* ssl) {
    auto c = std::make_unique<Connection>(loop, fd, ssl, false);
    c->peer_ = to;
    return c;
}

void Connection::start() {
    state_ = server_side_ ? (ssl_ ? State::Handshaking : State::Open) : State::Connecting;
    io_ = std::make_unique<core::IoWatcher>(loop_, fd_, [this](short w) { on_io(w); });
    if (server_side_ && !ssl_) {
        std::weak_ptr<bool> alive = alive_;
        if (cb_.on_ready) cb_.on_ready();
        if (alive.expired()) return;
    }
    // The socket may already be readable (data arrived with the accept); edge-triggered events would not
    // report it, so try once now.
    on_io(core::IoWatcher::Read | core::IoWatcher::Write);
}

// OpenSSL reads the socket itself (read ahead: as much as fits in its buffer); this callback on its socket
// BIO records whether that read came back short, which do_read() takes as "the socket is drained".
void Connection::watch_raw_reads() {
    BIO* rbio = SSL_get_rbio(ssl_);
    if (!rbio) return; // SSL_set_fd failed (out of memory): the first SSL call fails and says so
    BIO_set_callback_ex(rbio, &Connection::on_raw_io);
    BIO_set_callback_arg(rbio, reinterpret_cast<char*>(this));
}

long Connection::on_raw_io(BIO* b, int oper, const char*, size_t len, int, long, int ret, size_t* processed) {
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        auto* self = reinterpret_cast<Connection*>(BIO_get_callback_arg(b));
        self->input_exhausted_ = ret > 0 && processed && *processed < len;
    }
    return ret;
}

void Connection::on_io(short what) {
    std::weak_ptr<bool> alive = alive_;
    if (state_ == State::Closed) return;
    // Sticky: a FIN stays received, and any later short read must still go on to find the EOF.
    if (what & core::IoWatcher::PeerClosed) peer_closed_ = true;
    if (state_ == State::Connecting) {
        if (!(what & core::IoWatcher::Write)) return;
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) return finish(fmt::format("connect to {}: {}", peer_.str(), std::strerror(soerr)));
        // SO_ERROR is 0 both when connected and while the connect is still in progress (start() probes
        // once without a real event): only a peer name proves the connection exists.
        sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return;
        if (ssl_)
            state_ = State::Handshaking;
        else {
            state_ = State::Open;
            if (cb_.on_ready) cb_.on_ready();
            if (alive.expired()) return;
        }
    }
    if (state_ == State::Handshaking) {
        do_handshake();
        if (alive.expired() || state_ == State::Handshaking || state_ == State::Closed) return;
    }
    if (what & core::IoWatcher::Read) {
        do_read();
        if (alive.expired() || state_ == State::Closed) return;
    }
    do_flush();
}

void Connection::do_handshake() {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        state_ = want_close_ ? State::Closing : State::Open;
        std::weak_ptr<bool> alive = alive_;
        if (cb_.on_ready) cb_.on_ready();
        if (alive.expired() || state_ == State::Closed) return;
        do_read(); // data may have arrived with the final handshake flight
        return;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    std::string why = "tls handshake: ";
    long vr = SSL_get_verify_result(ssl_);
    if (vr != X509_V_OK)
        why += std::string("certificate verify failed: ") + X509_verify_cert_error_string(vr);
    else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        why += "peer closed the connection";
    else
        why += last_ssl_error();
    finish(why);
}

void Connection::do_read() {
    if (reading_paused_) return;
    std::weak_ptr<bool> alive = alive_;
    char buf[kReadChunk];
    // Only a read made in this call may end it early: data that arrived while reading was paused (or before
    // a handshake finished) raised its edge then, and nothing but reading on finds it now.
    input_exhausted_ = false;
    for (;;) {
        // Handshaking: start_tls() ran inside on_data; what follows on the socket is the TLS handshake.
        if (reading_paused_ || eof_ || state_ == State::Closed || state_ == State::Handshaking) return;
        ssize_t n;
        if (ssl_) {
            ERR_clear_error();
            int r = SSL_read(ssl_, buf, sizeof buf);
            if (r <= 0) {
                int e = SSL_get_error(ssl_, r);
                if (e == SSL_ERROR_WANT_READ) {
                    // SSL_MODE_RELEASE_BUFFERS frees the read buffer once a record is consumed, but the
                    // SSL_read that then finds the socket empty allocates a fresh one, which an idle
                    // connection would hold until its next record. SSL_free_buffers declines (and keeps
                    // it) while a partial record or unsent output is in it (OpenSSL >= 3.0.14 checks the
                    // partial record: CVE-2024-4741; older ones would free it under the record, so they are
                    // left alone).
                    if (free_buffers_safe()) SSL_free_buffers(ssl_);
                    return;
                }
                if (e == SSL_ERROR_WANT_WRITE) return;
                if (e == SSL_ERROR_ZERO_RETURN) return peer_eof("closed by peer");
                if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                    return peer_eof("closed by peer (no close_notify)");
                return finish("tls read: " + last_ssl_error());
            }
            n = r;
        } else {
            n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                return finish(fmt::format("read: {}", std::strerror(errno)));
            }
            if (n == 0) return peer_eof("closed by peer");
            input_exhausted_ = size_t(n) < sizeof buf;
        }
        bytes_in_ += uint64_t(n);
        if (idle_ && idle_ms_) idle_->arm(idle_ms_);
        if (want_close_) continue; // draining: discard what arrives while our output flushes
        if (cb_.on_data) cb_.on_data(buf, size_t(n));
        if (alive.expired()) return;
        // A stream socket whose read returned less than asked for is drained (epoll(7)); more data raises a
        // new edge, so the read that would find EAGAIN is skipped (one system call per message saved, issue
        // 18). Not once the peer's FIN is in: it raised no edge of its own, and only reading on finds the
        // EOF. Bytes OpenSSL already holds (read ahead, or a record larger than buf) are not on the socket.
        if (input_exhausted_ && !peer_closed_ && !(ssl_ && SSL_has_pending(ssl_))) {
            if (ssl_ && free_buffers_safe()) SSL_free_buffers(ssl_); // as after WANT_READ above
            return;
        }
    }
}

void Connection::write(std::string_view data) {
    if (state_ == State::Closed || want_close_) return;
    if (out_off_ > 0 && out_off_ == out_.size()) {
        out_.clear();
        out_off_ = 0;
    }
    out_.append(data);
    if (pending_output() >= high_watermark_) was_above_ = true;
    schedule_flush();
}

void Connection::schedule_flush() {
    if (state_ == State::Open || state_ == State::Closing) event_active(flush_ev_, EV_WRITE, 0);
}

void Connection::on_flush_event(int, short, void* arg) {
    static_cast<Connection*>(arg)->do_flush();
}

void Connection::do_flush() {
    if (state_ != State::Open && state_ != State::Closing) return;
    while (out_off_ < out_.size()) {
        size_t n = std::min(out_.size() - out_off_, kWriteChunk);
        ssize_t w;
        if (ssl_) {
            ERR_clear_error();
            int r = SSL_write(ssl_, out_.data() + out_off_, int(n));
            if (r <= 0) {
                int e = SSL_get_error(ssl_, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return;
                return finish("tls write: " + last_ssl_error());
            }
            w = r;
        } else {
            w = ::send(fd_, out_.data() + out_off_, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                return finish(fmt::format("write: {}", std::strerror(errno)));
            }
        }
        out_off_ += size_t(w);
        bytes_out_ += uint64_t(w);
    }
    out_.clear();
    out_off_ = 0;
    // Given back whole: a held connection (an XMPP or SIP client between messages) would otherwise keep its
    // largest burst's capacity, the sign-in's, for as long as it lives. The next write allocates again.
    std::string().swap(out_);
    if (want_close_) {
        if (ssl_) SSL_shutdown(ssl_);
        ::shutdown(fd_, SHUT_WR);
        return finish("closed");
    }
    if (starttls_ssl_) return begin_tls();
    if (was_above_) {
        was_above_ = false;
        if (cb_.on_drained) cb_.on_drained();
    }
}

void Connection::pause_reading() {
    reading_paused_ = true;
}

void Connection::resume_reading() {
    if (!reading_paused_) return;
    reading_paused_ = false;
    // Edge-triggered: bytes that arrived while paused (or sit decrypted inside OpenSSL) raise no event.
    if (state_ == State::Open || state_ == State::Closing) do_read();
}

void Connection::close() {
    if (state_ == State::Closed || want_close_) return;
    want_close_ = true;
    if (state_ == State::Open) {
        state_ = State::Closing;
        schedule_flush();
    } else if (state_ != State::Closing) {
        finish("closed");
    }
}

void Connection::abort(std::string_view why) {
    finish(why);
}

void Connection::set_idle_timeout(uint64_t ms) {
    idle_ms_ = ms;
    if (!ms) {
        idle_.reset();
        return;
    }
    if (!idle_) idle_ = std::make_unique<core::Timer>(loop_, [this] { finish("idle timeout"); });
    idle_->arm(ms);
}

bool Connection::start_tls(SSL* ssl) {
    if (!ssl) return false;
    if (ssl_ || starttls_ssl_ || state_ != State::Open || want_close_) {
        SSL_free(ssl);
        return false;
    }
    starttls_ssl_ = ssl;
    // Plain reads stop now: anything the peer sends next belongs to the TLS handshake.
    reading_paused_ = true;
    if (pending_output() == 0)
        begin_tls();
    else
        schedule_flush(); // do_flush() calls begin_tls() once the plain bytes are out
    return true;
}

void Connection::begin_tls() {
    ssl_ = starttls_ssl_;
    starttls_ssl_ = nullptr;
    if (on_eof_) SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_set_fd(ssl_, fd_);
    watch_raw_reads();
    if (server_side_)
        SSL_set_accept_state(ssl_);
    else
        SSL_set_connect_state(ssl_);
    state_ = State::Handshaking;
    reading_paused_ = false;
    // Edge-triggered: the peer's first flight may already be waiting, so try now, but on the next loop turn:
    // start_tls() usually runs inside the owner's on_data, which must not see on_ready/on_close re-entrantly.
    std::weak_ptr<bool> alive = alive_;
    loop_.post([this, alive] {
        if (alive.expired() || state_ != State::Handshaking) return;
        do_handshake();
        if (alive.expired() || state_ != State::Open) return;
        do_flush();
    });
}

void Connection::set_on_eof(std::function<void()> fn) {
    on_eof_ = std::move(fn);
    if (on_eof_ && ssl_) SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

void Connection::peer_eof(std::string_view why) {
    // Without an on_eof owner, or before the connection is open, an EOF ends it as it always did.
    if (!on_eof_ || (state_ != State::Open && state_ != State::Closing)) return finish(why);
    eof_ = true;
    // Closing: our last output is still flushing; do_flush() ends the connection once it is out (a write the
    // peer refuses ends it sooner). The idle timeout, if set, bounds a peer that stops reading too.
    if (want_close_) return;
    auto fn = on_eof_; // the owner may replace it, or delete this connection, from inside
    fn();
}

void Connection::finish(std::string_view why) {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    io_.reset();
    if (idle_) idle_->cancel();
    event_del(flush_ev_);
    ::close(fd_);
    fd_ = -1;
    std::string reason(why);
    if (cb_.on_close) {
        auto cb = std::move(cb_.on_close);
        cb(reason); // may delete this
    }
}

} // namespace edgepair::net
