#include "common/cluster/redis_conn.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>

#include <charconv>

#include "common/obs/log.h"

namespace edgepair::cluster {

namespace {

// What hiredis carries for each command: the caller's callback, and whether a failure is the caller's
// (counted) or the handshake's (the connection's own business, reported as "down").
struct Pending {
    RedisConn::Callback cb;
    bool counted = true;
};

constexpr uint64_t kPingEveryMs = 1000;

} // namespace

Reply Reply::from(const redisReply& r) {
    Reply out;
    switch (r.type) {
    case REDIS_REPLY_STRING:
        out.type = Type::String;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = Type::Array;
        break;
    case REDIS_REPLY_INTEGER:
        out.type = Type::Integer;
        break;
    case REDIS_REPLY_STATUS:
        out.type = Type::Status;
        break;
    case REDIS_REPLY_ERROR:
        out.type = Type::Error;
        break;
    default:
        out.type = Type::Nil;
        break;
    }
    if (r.str &&
        (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR))
        out.str.assign(r.str, r.len);
    out.integer = r.integer;
    if (r.type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r.elements; ++i)
            out.elements.push_back(from(*r.element[i]));
    return out;
}

RedisConn::RedisConn(core::Loop& loop, std::string name, RedisSettings s, Hooks h, std::string channel,
                     uint64_t backoff_min_ms, uint64_t backoff_max_ms)
    : RedisConn(loop, std::move(name), std::move(s), std::move(h),
                channel.empty() ? std::vector<std::string>{} : std::vector<std::string>{std::move(channel)},
                backoff_min_ms, backoff_max_ms) {}

RedisConn::RedisConn(core::Loop& loop, std::string name, RedisSettings s, Hooks h,
                     std::vector<std::string> channels, uint64_t backoff_min_ms, uint64_t backoff_max_ms)
    : loop_(loop), name_(std::move(name)), s_(std::move(s)), h_(std::move(h)), channels_(std::move(channels)),
      backoff_(backoff_min_ms, backoff_max_ms), reconnect_timer_(loop, [this] { connect(); }),
      connect_timer_(
          loop,
          [this] { drop(fmt::format("no answer within {} ms (cluster.redis.timeout)", s_.timeout_ms)); }),
      ping_timer_(loop, [this] { ping(); }), drop_timer_(loop, [this] { drop(pending_drop_); }) {
    if (s_.sentinels.empty()) {
        master_host_ = s_.host;
        master_port_ = s_.port;
    }
}

RedisConn::~RedisConn() {
    closing_ = true;
    free_sentinel();
    if (auto* c = ctx_) {
        ctx_ = nullptr;
        redisAsyncFree(c);
    }
}

namespace {
std::string host_port(const std::string& host, uint16_t port) {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                               : fmt::format("{}:{}", host, port);
}
bool is_master(const Reply* r) {
    return r && r->type == Reply::Type::Array && !r->elements.empty() && r->elements[0].str == "master";
}
} // namespace

std::string RedisConn::address() const {
    if (!master_host_.empty()) return host_port(master_host_, master_port_);
    std::string via;
    for (const auto& e : s_.sentinels)
        via += (via.empty() ? "" : ",") + host_port(e.host, e.port);
    return fmt::format("master {} via sentinels {}", s_.master_name, via);
}

void RedisConn::start() {
    if (!ctx_ && !reconnect_timer_.armed()) connect();
}

void RedisConn::connect() {
    if (!s_.sentinels.empty()) {
        sentinel_errors_.clear();
        return ask_sentinel(unsigned(s_.sentinels.size()));
    }
    connect_to(s_.host, s_.port);
}

void RedisConn::ask_sentinel(unsigned left) {
    if (left == 0)
        return lost(
            fmt::format("no sentinel named the master of \"{}\" ({})", s_.master_name, sentinel_errors_));
    sentinel_left_ = left;
    const auto& e = s_.sentinels[sentinel_next_ % s_.sentinels.size()];
    auto* c = redisAsyncConnect(e.host.c_str(), e.port);
    if (!c) return sentinel_failed("cannot allocate a hiredis context", left);
    if (c->err) {
        std::string why = c->errstr;
        redisAsyncFree(c);
        return sentinel_failed("connect: " + why, left);
    }
    sentinel_ctx_ = c;
    c->data = this;
    redisLibeventAttach(c, loop_.base());
    redisAsyncSetConnectCallback(c, &RedisConn::on_sentinel_connect);
    redisAsyncSetDisconnectCallback(c, &RedisConn::on_sentinel_disconnect);
    connect_timer_.arm(s_.timeout_ms);
    const char* argv[] = {"SENTINEL", "get-master-addr-by-name", s_.master_name.c_str()};
    const size_t lens[] = {8, 23, s_.master_name.size()};
    if (redisAsyncCommandArgv(c, &RedisConn::on_sentinel_reply, nullptr, 3, argv, lens) != REDIS_OK)
        drop_later("SENTINEL could not be queued");
}

void RedisConn::sentinel_failed(const std::string& why, unsigned left) {
    const auto& e = s_.sentinels[sentinel_next_ % s_.sentinels.size()];
    sentinel_errors_ += fmt::format("{}sentinel {}: {}", sentinel_errors_.empty() ? "" : "; ",
                                    host_port(e.host, e.port), why);
    ++sentinel_next_; // the next round starts with another sentinel
    connect_timer_.cancel();
    ask_sentinel(left - 1);
}

void RedisConn::free_sentinel() {
    if (auto* c = sentinel_ctx_) {
        sentinel_ctx_ = nullptr;
        redisAsyncFree(c);
    }
}

void RedisConn::on_sentinel_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<RedisConn*>(ac->data);
    if (!self || self->closing_ || ac != self->sentinel_ctx_) return;
    if (status != REDIS_OK) {
        self->sentinel_ctx_ = nullptr; // hiredis frees it after this callback
        self->sentinel_failed(fmt::format("connect: {}", ac->errstr), self->sentinel_left_);
    }
}

void RedisConn::on_sentinel_disconnect(const redisAsyncContext* ac, int) {
    auto* self = static_cast<RedisConn*>(ac->data);
    if (!self || self->closing_ || ac != self->sentinel_ctx_) return;
    self->sentinel_ctx_ = nullptr;
    self->sentinel_failed("connection lost before it answered", self->sentinel_left_);
}

void RedisConn::on_sentinel_reply(redisAsyncContext* ac, void* reply, void*) {
    auto* self = static_cast<RedisConn*>(ac->data);
    if (!self || self->closing_ || ac != self->sentinel_ctx_ || !reply) return;
    Reply r = Reply::from(*static_cast<redisReply*>(reply));
    // Done with this sentinel either way; hiredis closes it once this callback returns.
    self->sentinel_ctx_ = nullptr;
    redisAsyncDisconnect(ac);
    std::string why;
    unsigned port = 0;
    if (r.is_error()) {
        why = "refused: " + r.str;
    } else if (r.type != Reply::Type::Array || r.elements.size() != 2) {
        why = "does not know master \"" + self->s_.master_name + "\"";
    } else {
        auto [p, ec] = std::from_chars(r.elements[1].str.data(),
                                       r.elements[1].str.data() + r.elements[1].str.size(), port);
        in6_addr a6;
        in_addr a4;
        const auto& host = r.elements[0].str;
        if (ec != std::errc() || port == 0 || port > 65535) why = "named a master with a bad port";
        // An IP literal only: a name would make hiredis wait on the resolver, on this loop.
        else if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && inet_pton(AF_INET6, host.c_str(), &a6) != 1)
            why = "named a master by a host name (set sentinel resolve-hostnames no)";
    }
    if (!why.empty()) return self->sentinel_failed(why, self->sentinel_left_);
    self->connect_timer_.cancel();
    if (self->master_host_ != r.elements[0].str || self->master_port_ != port)
        EP_INFO("cluster", "{}: sentinels name {} as the master of \"{}\"", self->name_,
                host_port(r.elements[0].str, uint16_t(port)), self->s_.master_name);
    self->master_host_ = r.elements[0].str;
    self->master_port_ = uint16_t(port);
    self->connect_to(self->master_host_, self->master_port_);
}

void RedisConn::connect_to(const std::string& host, uint16_t port) {
    // The host is an IP literal (the configuration and on_sentinel_reply refuse names), so this never waits
    // on a resolver.
    auto* c = redisAsyncConnect(host.c_str(), port);
    if (!c) return lost("cannot allocate a hiredis context");
    if (c->err) {
        std::string why = c->errstr;
        redisAsyncFree(c);
        return lost("connect: " + why);
    }
    ctx_ = c;
    c->data = this;
    redisLibeventAttach(c, loop_.base());
    redisAsyncSetConnectCallback(c, &RedisConn::on_connect);
    redisAsyncSetDisconnectCallback(c, &RedisConn::on_disconnect);
    connect_timer_.arm(s_.timeout_ms);
    handshake();
}

void RedisConn::handshake() {
    // hiredis queues these until the socket connects; their replies come back in order.
    auto refused = [this](const char* what) {
        return [this, what](const Reply* r) {
            if (r && r->is_error()) drop_later(fmt::format("{} refused: {}", what, r->str));
        };
    };
    if (!s_.password.empty()) send({"AUTH", s_.password}, refused("AUTH (cluster.redis.password_file)"));
    if (!channels_.empty()) {
        // One confirmation per channel arrives through on_message, which calls became_up after the last.
        std::vector<const char*> argv{"SUBSCRIBE"};
        std::vector<size_t> lens{9};
        for (const auto& c : channels_) {
            argv.push_back(c.c_str());
            lens.push_back(c.size());
        }
        if (redisAsyncCommandArgv(ctx_, &RedisConn::on_message, this, int(argv.size()), argv.data(),
                                  lens.data()) != REDIS_OK)
            drop_later("SUBSCRIBE could not be queued");
        return;
    }
    if (s_.db != 0) send({"SELECT", std::to_string(s_.db)}, refused("SELECT (cluster.redis.db)"));
    if (!s_.sentinels.empty()) {
        // What the sentinels said may be stale by the time we connect (a fail-over in progress).
        send({"ROLE"}, [this](const Reply* r) {
            if (is_master(r))
                became_up();
            else if (r)
                drop_later(address() + " is not a master (yet)");
        });
        return;
    }
    send({"PING"}, [this](const Reply* r) {
        if (r && !r->is_error()) became_up();
    });
}

bool RedisConn::send(const std::vector<std::string>& argv, Callback cb) {
    if (!ctx_) return false;
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* p = new Pending{std::move(cb), false};
    if (redisAsyncCommandArgv(ctx_, &RedisConn::on_reply, p, int(args.size()), args.data(), lens.data()) !=
        REDIS_OK) {
        delete p;
        return false;
    }
    return true;
}

bool RedisConn::command(const std::vector<std::string>& argv, Callback cb) {
    if (!up_ || !ctx_ || !channels_.empty()) {
        if (h_.command_failed) h_.command_failed();
        return false;
    }
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* p = new Pending{std::move(cb), true};
    if (redisAsyncCommandArgv(ctx_, &RedisConn::on_reply, p, int(args.size()), args.data(), lens.data()) !=
        REDIS_OK) {
        delete p;
        if (h_.command_failed) h_.command_failed();
        return false;
    }
    return true;
}

void RedisConn::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    std::unique_ptr<Pending> p(static_cast<Pending*>(privdata));
    auto* self = static_cast<RedisConn*>(ac->data);
    if (!self || self->closing_) return;
    if (!reply) {
        if (p->counted && self->h_.command_failed) self->h_.command_failed();
        if (p->cb) p->cb(nullptr);
        return;
    }
    Reply r = Reply::from(*static_cast<redisReply*>(reply));
    if (r.is_error()) {
        EP_DEBUG("cluster", "{} {}: error reply: {}", self->name_, self->address(), r.str);
        if (p->counted && self->h_.command_failed) self->h_.command_failed();
    }
    if (p->cb) p->cb(&r);
}

void RedisConn::on_message(redisAsyncContext* ac, void* reply, void*) {
    auto* self = static_cast<RedisConn*>(ac->data);
    if (!self || self->closing_ || !reply) return;
    Reply r = Reply::from(*static_cast<redisReply*>(reply));
    if (r.is_error()) return self->drop_later("SUBSCRIBE refused: " + r.str);
    if (r.type != Reply::Type::Array || r.elements.empty()) return;
    const auto& kind = r.elements[0].str;
    if (kind == "subscribe") {
        // ["subscribe", <channel>, <channels subscribed so far>]
        const bool all = r.elements.size() < 3 || r.elements[2].type != Reply::Type::Integer ||
                         r.elements[2].integer >= static_cast<long long>(self->channels_.size());
        if (!self->up_ && all) self->became_up();
    } else if (kind == "message") {
        if (self->h_.message) self->h_.message(r);
    }
}

void RedisConn::on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<RedisConn*>(ac->data);
    if (!self || self->closing_ || ac != self->ctx_) return;
    if (status != REDIS_OK) {
        // hiredis frees the context after this callback.
        self->ctx_ = nullptr;
        self->lost(fmt::format("connect: {}", ac->errstr));
    }
}

void RedisConn::on_disconnect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<RedisConn*>(ac->data);
    // A context we freed ourselves (drop, destructor) was already forgotten.
    if (!self || self->closing_ || ac != self->ctx_) return;
    self->ctx_ = nullptr;
    self->lost(status == REDIS_OK ? std::string("connection closed")
                                  : fmt::format("connection lost: {}", ac->errstr));
}

void RedisConn::became_up() {
    up_ = true;
    connect_timer_.cancel();
    drop_timer_.cancel();
    backoff_.reset();
    last_error_.clear();
    EP_INFO("cluster", "{} {}: connected", name_, address());
    if (channels_.empty()) {
        ping_outstanding_ = false;
        ping_timer_.arm(kPingEveryMs);
    }
    if (h_.up) h_.up();
}

// A Redis that stops answering without closing (a paused process, a dead host behind a firewall) would
// otherwise look up for as long as TCP keeps the connection.
void RedisConn::ping() {
    if (!up_ || !ctx_) return;
    const uint64_t now = loop_.now_ms();
    if (ping_outstanding_) {
        if (now - ping_sent_ms_ >= s_.timeout_ms)
            return drop(fmt::format("no answer to PING within {} ms (cluster.redis.timeout)", s_.timeout_ms));
    } else {
        ping_outstanding_ = true;
        ping_sent_ms_ = now;
        if (s_.sentinels.empty()) {
            send({"PING"}, [this](const Reply* r) {
                if (r) ping_outstanding_ = false;
            });
        } else {
            // Also how a fail-over whose old master survives (as a replica) is noticed.
            send({"ROLE"}, [this](const Reply* r) {
                if (!r) return;
                ping_outstanding_ = false;
                if (!is_master(r)) drop_later(address() + " is no longer the master");
            });
        }
    }
    ping_timer_.arm(kPingEveryMs);
}

void RedisConn::drop_later(const std::string& why) {
    pending_drop_ = why;
    drop_timer_.arm(0);
}

void RedisConn::drop(const std::string& why) {
    if (sentinel_ctx_) {
        ++sentinel_next_; // this one did not answer in time: start the next round elsewhere
        free_sentinel();
    }
    if (auto* c = ctx_) {
        // Forgotten first: the callbacks redisAsyncFree runs (pending commands get nullptr) find no context
        // to send on, and on_disconnect knows this one is gone on purpose.
        ctx_ = nullptr;
        redisAsyncFree(c);
    }
    lost(why);
}

void RedisConn::lost(const std::string& why) {
    const bool was_up = up_;
    up_ = false;
    ping_outstanding_ = false;
    connect_timer_.cancel();
    ping_timer_.cancel();
    last_error_ = why;
    const uint64_t delay = backoff_.next();
    if (was_up || !ever_reported_down_) {
        ever_reported_down_ = true;
        EP_WARN("cluster", "{} {}: down ({}); retrying with back-off, first in {} ms", name_, address(), why,
                delay);
        if (h_.down) h_.down(why);
    } else {
        EP_DEBUG("cluster", "{} {}: still down ({}); next try in {} ms", name_, address(), why, delay);
    }
    if (!closing_) reconnect_timer_.arm(delay);
}

} // namespace edgepair::cluster
