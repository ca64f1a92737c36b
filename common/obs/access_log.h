#pragma once
// The access log: one line per HTTP request, SIP transaction or flow, and XMPP stream, on both edges, each
// with the request id edge-e created for it (carried to edge-c in the link stream's x-edge-request-id
// header, which the header policy never takes from a client: common/http/header_policy.h, link-private).
//
// What it never holds: a password, a token or a cookie value. Nothing here is given a header value; a
// path reaches the log through redact_target(), which keeps the query's parameter names and drops every
// value; SIP Call-IDs are hashed.
//
// Writing: one write(2) of a whole line per event on an O_APPEND descriptor (the file, or stderr). Lines
// from many workers never interleave (O_APPEND on a file; a line is kept under PIPE_BUF for a pipe), no
// lock is taken and nothing is buffered that a crash could lose. The cost is one system call per request
// on the worker's thread: to the page cache for a file, which does not wait for the disk. The writer is
// immutable after open, owned by a configuration generation and shared by its workers; a reload opens the
// file anew (so SIGHUP after logrotate moves it starts a new file) and the old descriptor closes when the
// last request of the old generation is logged.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/result.h"

namespace edgepair::obs {

enum class AccessFormat { Text, Json };

struct AccessLogOptions {
    AccessFormat format = AccessFormat::Text;
    std::string file; // empty: stderr
};

// One event's fields in order. Values are copied; text lines quote a value that needs it.
class AccessLine {
  public:
    explicit AccessLine(std::string_view kind) : kind_(kind) {}
    AccessLine& add(std::string_view key, std::string_view value);
    AccessLine& num(std::string_view key, uint64_t value);
    const std::string& kind() const { return kind_; }
    struct Field {
        std::string key, value;
        bool number = false;
    };
    const std::vector<Field>& fields() const { return fields_; }

  private:
    std::string kind_;
    std::vector<Field> fields_;
};

class AccessLog {
  public:
    // Longest line written (longer values are cut): whole lines stay atomic on a pipe.
    static constexpr size_t kMaxLine = 4000;

    // `side` ("edge-e", "edge-c") starts every line. Opens the file for appending (created 0640).
    static Result<std::shared_ptr<const AccessLog>> open(const AccessLogOptions& opts, std::string side);
    ~AccessLog();
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    // Safe from any thread.
    void write(const AccessLine& line) const;
    // The line as it would be written (no newline); for tests.
    std::string format(const AccessLine& line) const;

  private:
    std::string format_cut(const AccessLine& line, size_t max_value) const;
    AccessLog(int fd, bool owned, AccessFormat format, std::string side)
        : fd_(fd), owned_(owned), format_(format), side_(std::move(side)) {}
    int fd_;
    bool owned_;
    AccessFormat format_;
    std::string side_;
};

// The request target with every query value replaced by "*" (a parameter without '=' becomes "*", as does
// a name that is not a plain word), the fragment dropped, and the result cut to 512 bytes. Query strings
// carry tokens and passwords often enough (`?access_token=`, `?password=`) that none is ever logged.
std::string redact_target(std::string_view target);

// A short non-reversible tag for a value that must not be logged but should still correlate (a SIP
// Call-ID): 12 hex digits of its SHA-256.
std::string hash_tag(std::string_view value);

// Request ids of one worker: a random 40-bit nonce drawn when the worker starts, the worker's index, and a
// counter, in lower-case base32: `qv3k7mzaab0004` is short, unique within the process without a lock, and
// unique across restarts and across the edge-e boxes of a cluster with overwhelming probability.
class RequestIds {
  public:
    explicit RequestIds(unsigned worker_index);
    std::string next();

  private:
    std::string prefix_;
    uint64_t counter_ = 0;
};

// A request id as received from the link, if it looks like one edge-e made (base32, 8 to 32 characters,
// maybe one '.' suffix for a SIP transaction); else "-". edge-e is trusted, but a log line is not the place
// to find out it was not.
std::string_view checked_request_id(std::string_view id);

// The link stream header carrying the id (link-private: a client's copy is dropped at edge-e's gate).
inline constexpr std::string_view kRequestIdHeader = "x-edge-request-id";
// On edge-c's response head over the link: the internal node that answered ("host:port"), so edge-e's line
// names it too. Link-private as well: an internal server cannot set it, and it never reaches a client.
inline constexpr std::string_view kUpstreamHeader = "x-edge-upstream";

// One HTTP exchange being served: begin() when the head is known, fill in as it goes, finish() (or the
// destructor) writes one line once. Inactive (nothing written) when the log is off.
class HttpAccess {
  public:
    HttpAccess() = default;
    HttpAccess(const HttpAccess&) = delete;
    HttpAccess& operator=(const HttpAccess&) = delete;
    ~HttpAccess() { finish(); }

    // `target` is redacted here; `client` is the client's address (on edge-c, as edge-e saw it).
    void begin(std::shared_ptr<const AccessLog> log, std::string_view id, std::string_view client,
               std::string_view method, std::string_view target);
    bool active() const { return log_ != nullptr; }
    void set_status(int s) { status_ = s; }
    int status() const { return status_; }
    void set_reason(std::string_view r) {
        if (reason_.empty()) reason_ = r;
    }
    void set_upstream(std::string_view u) { upstream_ = u; }
    void add_in(uint64_t n) { in_ += n; }
    void add_out(uint64_t n) { out_ += n; }
    void finish();

  private:
    std::shared_ptr<const AccessLog> log_;
    std::string id_, client_, method_, path_, upstream_, reason_;
    int status_ = 0;
    uint64_t in_ = 0, out_ = 0;
    std::chrono::steady_clock::time_point start_;
};

// One long-lived flow (an XMPP stream, a SIP flow): opened, counted, closed with a reason. A line at open
// (event=open) and one at close (event=close) with bytes and duration.
class FlowAccess {
  public:
    FlowAccess() = default;
    FlowAccess(const FlowAccess&) = delete;
    FlowAccess& operator=(const FlowAccess&) = delete;
    ~FlowAccess() { close("gone"); }

    // `kind`: "xmpp" or "sip-flow".
    void open(std::shared_ptr<const AccessLog> log, std::string_view kind, std::string_view id,
              std::string_view client);
    bool active() const { return log_ != nullptr; }
    const std::string& id() const { return id_; }
    const std::string& client() const { return client_; }
    const std::shared_ptr<const AccessLog>& log() const { return log_; }
    void add_in(uint64_t n) { in_ += n; }
    void add_out(uint64_t n) { out_ += n; }
    // Writes the close line once; `reason` is a short label ("client_closed", "link_down", ...).
    void close(std::string_view reason);

  private:
    std::shared_ptr<const AccessLog> log_;
    std::string kind_, id_, client_;
    uint64_t in_ = 0, out_ = 0;
    std::chrono::steady_clock::time_point start_;
};

// The SIP transactions of one flow, one summary line each (kind "sip"): begin() when a request crosses the
// edge, finish() at its final response (or the edge's own answer). The flow's id with a ".<n>" suffix
// names the transaction, so a grep for the flow id finds its transactions too. The key is the caller's
// (Call-ID and CSeq); only a hash of the Call-ID is logged. ACK has no response and is not a transaction
// here. A flow keeps at most kMaxOpen open transactions (a client that never gets answers cannot grow
// it): the oldest is written as `reason=untracked` to make room, and close() writes what is still open.
class SipTransactionAccess {
  public:
    static constexpr size_t kMaxOpen = 64;
    SipTransactionAccess() = default;
    SipTransactionAccess(const SipTransactionAccess&) = delete;
    SipTransactionAccess& operator=(const SipTransactionAccess&) = delete;
    ~SipTransactionAccess() { close("gone"); }

    // `dir`: "in" for a request from the client, "out" for one from inside (edge-c) to the client.
    void begin(const FlowAccess& flow, std::string key, std::string_view method, std::string_view dir,
               std::string_view call_tag);
    // The final response for `key`. Unknown key (an answer edge-e gives before the request crossed, or a
    // response to nothing): written at once with ms=0 when `method` is given, else ignored.
    void finish(const FlowAccess& flow, std::string_view key, int status, std::string_view reason = {},
                std::string_view method = {}, std::string_view dir = {}, std::string_view call_tag = {});
    void close(std::string_view reason);
    size_t open_count() const { return open_.size(); }

  private:
    struct Open {
        std::string key, id, method, dir, call;
        std::chrono::steady_clock::time_point start;
    };
    void write(const Open& o, int status, std::string_view reason) const;
    std::shared_ptr<const AccessLog> log_;
    std::string client_;
    std::deque<Open> open_;
    uint64_t n_ = 0;
};

} // namespace edgepair::obs
