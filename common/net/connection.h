#pragma once
// A non-blocking stream socket, plain or TLS (our own transport over OpenSSL rather than
// bufferevent_openssl: ANCHORS B7). Writes are queued and flushed once per loop turn so small writes
// coalesce into full TLS records. Callbacks may destroy the Connection; it notices and stops touching
// itself.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/ssl.h>

#include "common/core/loop.h"
#include "common/net/address.h"

struct event;

namespace edgepair::net {

class Connection {
  public:
    struct Callbacks {
        std::function<void()> on_ready;                     // TLS handshake done (or TCP connected, plain)
        std::function<void(const char*, size_t)> on_data;   // decrypted bytes
        std::function<void(std::string_view why)> on_close; // always the last call; the owner may delete
        std::function<void()> on_drained;                   // output fell below the low watermark
    };

    // Takes ownership of `fd` and of `ssl` (nullptr = plain TCP).
    Connection(core::Loop& loop, int fd, SSL* ssl, bool server_side);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Non-blocking connect; returns nullptr and sets `err` on an immediate failure.
    static std::unique_ptr<Connection> connect(core::Loop& loop, const SockAddr& to, SSL* ssl,
                                               std::string* err);
    // For a socket the caller set up itself (bound to a source address) and whose non-blocking connect() to
    // `to` is in progress: getpeername() cannot name the peer yet, so errors would say "?:0" without `to`.
    static std::unique_ptr<Connection> connecting(core::Loop& loop, int fd, const SockAddr& to, SSL* ssl);

    void set_callbacks(Callbacks cb) { cb_ = std::move(cb); }
    // Half-close (opt-in): when the peer finishes sending (TCP FIN, or TLS close_notify), `fn` runs and the
    // connection stays open for our output; an HTTP/1.1 client may send a request and shut its side at once.
    // The owner ends it with close() once its answer is queued. Without it an EOF ends the connection
    // (on_close "closed by peer").
    // Over TLS this also accepts a bare TCP FIN as the end of the peer's data (SSL_OP_IGNORE_UNEXPECTED_EOF,
    // as nginx sets it): OpenSSL 3 otherwise fails the connection on it, and nothing could be sent back. The
    // owner's protocol frames its messages, so a cut-off message is still seen as one.
    void set_on_eof(std::function<void()> fn);
    void start();
    void write(std::string_view data);
    size_t pending_output() const { return out_.size() - out_off_; }
    bool above_high_watermark() const { return pending_output() >= high_watermark_; }
    void set_watermarks(size_t high) { high_watermark_ = high; }
    void pause_reading();
    void resume_reading();
    // Flush what is queued, then close (TLS close_notify). on_close follows.
    void close();
    // Drop now: nothing more is sent. on_close follows, with `why`.
    void abort(std::string_view why);
    // Close if no byte is read for `ms` (0 = never). The timer restarts on every read.
    void set_idle_timeout(uint64_t ms);
    // STARTTLS: upgrades an open plain connection to TLS on the same socket, taking ownership of `ssl`
    // (accept or connect state follows the side this connection was made on). Bytes already queued leave in
    // the clear first (the <proceed/> that announces the upgrade); no plain byte is read after this call.
    // on_ready fires again once the handshake completes (write nothing before it: it could still leave in
    // the clear); a failed handshake ends in on_close. False (and
    // `ssl` freed) when the connection is not open and plain; on_close may already have run then.
    bool start_tls(SSL* ssl);

    SSL* ssl() const { return ssl_; }
    bool ready() const { return state_ == State::Open || state_ == State::Closing; }
    const SockAddr& peer() const { return peer_; }
    uint64_t bytes_in() const { return bytes_in_; }
    uint64_t bytes_out() const { return bytes_out_; }
    int fd() const { return fd_; }

  private:
    enum class State { Connecting, Handshaking, Open, Closing, Closed };
    void on_io(short what);
    void do_handshake();
    void do_read();
    void do_flush();
    void schedule_flush();
    void finish(std::string_view why);
    void peer_eof(std::string_view why);
    void begin_tls();
    void watch_raw_reads();
    static void on_flush_event(int, short, void* arg);
    static long on_raw_io(BIO* b, int oper, const char* argp, size_t len, int argi, long argl, int ret,
                          size_t* processed);

    core::Loop& loop_;
    int fd_;
    SSL* ssl_;
    bool server_side_;
    State state_;
    Callbacks cb_;
    std::function<void()> on_eof_;
    SockAddr peer_;
    std::unique_ptr<core::IoWatcher> io_;
    event* flush_ev_ = nullptr;
    std::unique_ptr<core::Timer> idle_;
    uint64_t idle_ms_ = 0;
    std::string out_;
    size_t out_off_ = 0;
    size_t high_watermark_ = 256 * 1024;
    bool was_above_ = false;
    bool reading_paused_ = false;
    bool want_close_ = false;
    // The last read from the socket (ours, or OpenSSL's through its socket BIO) returned less than it asked
    // for: the kernel's input is exhausted and the next read would only find EAGAIN (see do_read).
    bool input_exhausted_ = false;
    bool peer_closed_ = false;    // an event reported the peer's FIN (IoWatcher::PeerClosed); sticky
    bool eof_ = false;            // the peer's EOF was read and handed to on_eof: nothing more to read
    SSL* starttls_ssl_ = nullptr; // start_tls() waiting for the plain output to drain
    uint64_t bytes_in_ = 0, bytes_out_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::net
