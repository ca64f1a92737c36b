#include "common/obs/access_log.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <fmt/format.h>

namespace edgepair::obs {

namespace {

constexpr std::string_view kBase32 = "abcdefghijklmnopqrstuvwxyz234567";
constexpr size_t kMaxTarget = 512;

bool plain_word(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (unsigned char c : s)
        if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '[' || c == ']')) return false;
    return true;
}

// Text values are bare when they are one visible word, else quoted with '"' and '\' escaped and control
// bytes as \xNN: a client-chosen path can never forge a field or a line.
void text_value(std::string& out, std::string_view v) {
    bool bare = !v.empty();
    for (unsigned char c : v)
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=') {
            bare = false;
            break;
        }
    if (bare) {
        out += v;
        return;
    }
    out += '"';
    for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20 || c >= 0x7f) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += char(c);
        }
    }
    out += '"';
}

// A JSON string of `v`, with every byte outside printable ASCII as \u00XX: a client's bytes (or a value cut
// in the middle of a UTF-8 sequence) never make the line invalid JSON.
void json_value(std::string& out, std::string_view v) {
    out += '"';
    for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20 || c >= 0x7f) {
            out += fmt::format("\\u{:04x}", c);
        } else {
            out += char(c);
        }
    }
    out += '"';
}

std::string timestamp() {
    auto now = std::chrono::system_clock::now();
    auto t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", ts, ms);
}

uint64_t ms_since(std::chrono::steady_clock::time_point t) {
    return uint64_t(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count());
}

} // namespace

AccessLine& AccessLine::add(std::string_view key, std::string_view value) {
    fields_.push_back(Field{std::string(key), value.empty() ? std::string("-") : std::string(value), false});
    return *this;
}

AccessLine& AccessLine::num(std::string_view key, uint64_t value) {
    fields_.push_back(Field{std::string(key), std::to_string(value), true});
    return *this;
}

Result<std::shared_ptr<const AccessLog>> AccessLog::open(const AccessLogOptions& opts, std::string side) {
    if (opts.file.empty())
        return std::shared_ptr<const AccessLog>(
            new AccessLog(STDERR_FILENO, false, opts.format, std::move(side)));
    int fd = ::open(opts.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return make_error(fmt::format("access log {}: {}", opts.file, std::strerror(errno)));
    return std::shared_ptr<const AccessLog>(new AccessLog(fd, true, opts.format, std::move(side)));
}

AccessLog::~AccessLog() {
    if (owned_) ::close(fd_);
}

std::string AccessLog::format(const AccessLine& line) const {
    std::string out = format_cut(line, std::string::npos);
    if (out.size() <= kMaxLine) return out;
    // Too long: every value cut to a share that fits even fully escaped (6 bytes a byte), flagged, and still
    // one well-formed record.
    size_t share = kMaxLine / (6 * (line.fields().size() + 2));
    return format_cut(line, share);
}

std::string AccessLog::format_cut(const AccessLine& line, size_t max_value) const {
    const bool cut = max_value != std::string::npos;
    auto value = [&](const std::string& v) { return std::string_view(v).substr(0, max_value); };
    std::string out;
    out.reserve(256);
    if (format_ == AccessFormat::Json) {
        out += "{\"ts\":\"";
        out += timestamp();
        out += "\",\"side\":";
        json_value(out, side_);
        out += ",\"kind\":";
        json_value(out, line.kind());
        for (const auto& f : line.fields()) {
            out += ',';
            json_value(out, f.key);
            out += ':';
            if (f.number)
                out += f.value;
            else
                json_value(out, value(f.value));
        }
        if (cut) out += ",\"truncated\":true";
        out += '}';
    } else {
        out += timestamp();
        out += ' ';
        out += side_;
        out += ' ';
        out += line.kind();
        for (const auto& f : line.fields()) {
            out += ' ';
            out += f.key;
            out += '=';
            text_value(out, value(f.value));
        }
        if (cut) out += " truncated=1";
    }
    return out;
}

void AccessLog::write(const AccessLine& line) const {
    std::string out = format(line);
    out += '\n';
    // One write(2) per line: O_APPEND keeps lines from every worker whole without a lock. A short or failed
    // write loses that line only; the data path never waits on a retry.
    ssize_t r = ::write(fd_, out.data(), out.size());
    (void)r;
}

std::string redact_target(std::string_view target) {
    if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
    auto q = target.find('?');
    std::string out(target.substr(0, q));
    if (q != std::string_view::npos) {
        out += '?';
        std::string_view query = target.substr(q + 1);
        bool first = true;
        while (true) {
            auto amp = query.find('&');
            std::string_view param = query.substr(0, amp);
            if (!first) out += '&';
            first = false;
            auto eq = param.find('=');
            if (eq != std::string_view::npos && plain_word(param.substr(0, eq))) {
                out += param.substr(0, eq);
                out += "=*";
            } else if (!param.empty()) {
                out += '*';
            }
            if (amp == std::string_view::npos) break;
            query.remove_prefix(amp + 1);
        }
    }
    if (out.size() > kMaxTarget) {
        out.resize(kMaxTarget);
        out += "...";
    }
    return out;
}

std::string hash_tag(std::string_view value) {
    // FNV-1a: a correlation tag that keeps the raw Call-ID out of the log, not a secret-grade digest (a
    // Call-ID is an identifier, not a credential).
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : value) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return fmt::format("{:012x}", h & 0xffffffffffffull);
}

RequestIds::RequestIds(unsigned worker_index) {
    uint8_t nonce[5] = {};
    // getrandom on a started system does not block or fail for 5 bytes; if it did, the clock still makes
    // the prefix differ between starts.
    if (getrandom(nonce, sizeof nonce, 0) != ssize_t(sizeof nonce)) {
        auto t = uint64_t(std::chrono::system_clock::now().time_since_epoch().count());
        std::memcpy(nonce, &t, sizeof nonce);
    }
    uint64_t v = 0;
    for (uint8_t b : nonce)
        v = (v << 8) | b;
    for (int i = 7; i >= 0; --i)
        prefix_ += kBase32[(v >> (i * 5)) & 31];
    prefix_ += kBase32[(worker_index >> 5) & 31];
    prefix_ += kBase32[worker_index & 31];
}

std::string RequestIds::next() {
    uint64_t n = ++counter_;
    char digits[16];
    int len = 0;
    do {
        digits[len++] = kBase32[n & 31];
        n >>= 5;
    } while (n && len < 13);
    while (len < 4)
        digits[len++] = kBase32[0];
    std::string id = prefix_;
    for (int i = len - 1; i >= 0; --i)
        id += digits[i];
    return id;
}

std::string_view checked_request_id(std::string_view id) {
    if (id.size() < 8 || id.size() > 40) return "-";
    int dots = 0;
    for (char c : id) {
        if (c == '.') {
            if (++dots > 1) return "-";
            continue;
        }
        if (kBase32.find(c) == std::string_view::npos && !(c >= '0' && c <= '9')) return "-";
    }
    return id;
}

void HttpAccess::begin(std::shared_ptr<const AccessLog> log, std::string_view id, std::string_view client,
                       std::string_view method, std::string_view target) {
    finish();
    log_ = std::move(log);
    if (!log_) return;
    id_ = id;
    client_ = client;
    method_ = method;
    path_ = redact_target(target);
    upstream_.clear();
    reason_.clear();
    status_ = 0;
    in_ = out_ = 0;
    start_ = std::chrono::steady_clock::now();
}

void HttpAccess::finish() {
    if (!log_) return;
    auto log = std::move(log_);
    log_ = nullptr;
    AccessLine l("http");
    l.add("id", id_)
        .add("client", client_)
        .add("method", method_)
        .add("path", path_)
        .num("status", uint64_t(status_ > 0 ? status_ : 0))
        .num("in", in_)
        .num("out", out_)
        .num("ms", ms_since(start_))
        .add("upstream", upstream_)
        .add("reason", reason_);
    log->write(l);
}

void FlowAccess::open(std::shared_ptr<const AccessLog> log, std::string_view kind, std::string_view id,
                      std::string_view client) {
    close("reopened");
    log_ = std::move(log);
    if (!log_) return;
    kind_ = kind;
    id_ = id;
    client_ = client;
    in_ = out_ = 0;
    start_ = std::chrono::steady_clock::now();
    AccessLine l(kind_);
    l.add("id", id_).add("client", client_).add("event", "open");
    log_->write(l);
}

void FlowAccess::close(std::string_view reason) {
    if (!log_) return;
    auto log = std::move(log_);
    log_ = nullptr;
    AccessLine l(kind_);
    l.add("id", id_)
        .add("client", client_)
        .add("event", "close")
        .num("in", in_)
        .num("out", out_)
        .num("ms", ms_since(start_))
        .add("reason", reason);
    log->write(l);
}

void SipTransactionAccess::begin(const FlowAccess& flow, std::string key, std::string_view method,
                                 std::string_view dir, std::string_view call_tag) {
    if (!flow.active()) return;
    log_ = flow.log();
    client_ = flow.client();
    for (const auto& o : open_)
        if (o.key == key) return; // a retransmission: the first copy's clock runs on
    if (open_.size() >= kMaxOpen) {
        write(open_.front(), 0, "untracked");
        open_.pop_front();
    }
    open_.push_back({std::move(key), fmt::format("{}.{}", flow.id(), ++n_), std::string(method),
                     std::string(dir), std::string(call_tag), std::chrono::steady_clock::now()});
}

void SipTransactionAccess::finish(const FlowAccess& flow, std::string_view key, int status,
                                  std::string_view reason, std::string_view method, std::string_view dir,
                                  std::string_view call_tag) {
    for (auto it = open_.begin(); it != open_.end(); ++it) {
        if (it->key != key) continue;
        write(*it, status, reason);
        open_.erase(it);
        return;
    }
    if (method.empty() || !flow.active()) return;
    log_ = flow.log();
    client_ = flow.client();
    Open o{std::string(key),      fmt::format("{}.{}", flow.id(), ++n_),
           std::string(method),   std::string(dir),
           std::string(call_tag), std::chrono::steady_clock::now()};
    write(o, status, reason);
}

void SipTransactionAccess::close(std::string_view reason) {
    for (const auto& o : open_)
        write(o, 0, reason);
    open_.clear();
}

void SipTransactionAccess::write(const Open& o, int status, std::string_view reason) const {
    if (!log_) return;
    AccessLine l("sip");
    l.add("id", o.id)
        .add("client", client_)
        .add("method", o.method)
        .add("dir", o.dir)
        .num("status", uint64_t(status > 0 ? status : 0))
        .num("ms", ms_since(o.start))
        .add("call", o.call)
        .add("reason", reason);
    log_->write(l);
}

} // namespace edgepair::obs
