#include "common/cluster/redis_conn.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

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
    : loop_(loop), name_(std::move(name)), s_(std::move(s)), h_(std::move(h)), channel_(std::move(channel)),
      backoff_(backoff_min_ms, backoff_max_ms), reconnect_timer_(loop, [this] { connect(); }),
      connect_timer_(
          loop,
          [this] { drop(fmt::format("no answer within {} ms (cluster.redis.timeout)", s_.timeout_ms)); }),
      ping_timer_(loop, [this] { ping(); }), drop_timer_(loop, [this] { drop(pending_drop_); }) {}

RedisConn::~RedisConn() {
    closing_ = true;
    if (auto* c = ctx_) {
        ctx_ = nullptr;
        redisAsyncFree(c);
    }
}

std::string RedisConn::address() const {
    return s_.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", s_.host, s_.port)
                                                  : fmt::format("{}:{}", s_.host, s_.port);
}

void RedisConn::start() {
    if (!ctx_ && !reconnect_timer_.armed()) connect();
}

void RedisConn::connect() {
    // The host is an IP literal (the configuration refuses names), so this never waits on a resolver.
    auto* c = redisAsyncConnect(s_.host.c_str(), s_.port);
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
    if (!channel_.empty()) {
        // The subscription confirmation arrives through on_message, which calls became_up.
        const char* argv[] = {"SUBSCRIBE", channel_.c_str()};
        const size_t lens[] = {9, channel_.size()};
        if (redisAsyncCommandArgv(ctx_, &RedisConn::on_message, this, 2, argv, lens) != REDIS_OK)
            drop_later("SUBSCRIBE could not be queued");
        return;
    }
    if (s_.db != 0) send({"SELECT", std::to_string(s_.db)}, refused("SELECT (cluster.redis.db)"));
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
    if (!up_ || !ctx_ || !channel_.empty()) {
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
        if (!self->up_) self->became_up();
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
    if (channel_.empty()) {
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
        send({"PING"}, [this](const Reply* r) {
            if (r) ping_outstanding_ = false;
        });
    }
    ping_timer_.arm(kPingEveryMs);
}

void RedisConn::drop_later(const std::string& why) {
    pending_drop_ = why;
    drop_timer_.arm(0);
}

void RedisConn::drop(const std::string& why) {
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
