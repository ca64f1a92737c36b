#pragma once
// One connection to Redis on a libevent loop, through hiredis's asynchronous API and its libevent adapter:
// nothing here ever blocks the loop. It reconnects by itself with decorrelated jittered back-off, and
// reports "up" only once AUTH/SELECT/PING have been answered, so "up" means "a command sent now is served".
//
// Threads: everything, including construction and destruction, on the one loop given (edge-e uses its main
// loop; workers never touch it). A command issued while the connection is down fails at once (command()
// returns false) rather than queueing: callers keep their own state and push it again on `up`.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/core/loop.h"
#include "common/link/backoff.h"

struct redisAsyncContext;
struct redisReply;

namespace edgepair::cluster {

struct RedisSettings {
    std::string host = "127.0.0.1";
    uint16_t port = 6379;
    std::string password;       // empty: no AUTH
    int db = 0;                 // SELECT; a subscriber connection ignores it (pub/sub is not per database)
    uint64_t timeout_ms = 2000; // connect, and how long a PING may go unanswered before the link is dropped
    // Sentinel-managed Redis: when set, host/port above are ignored; every (re)connect asks the sentinels in
    // turn (SENTINEL get-master-addr-by-name) and connects to the master they name. A command connection
    // checks with ROLE, on connect and every second, that it still talks to a master, so a fail-over is
    // followed within a second even when the old master survives as a replica.
    struct Endpoint {
        std::string host;
        uint16_t port = 26379;
    };
    std::vector<Endpoint> sentinels;
    std::string master_name;
};

// A reply copied out of hiredis's buffers, so that it may outlive the callback.
struct Reply {
    enum class Type { String, Array, Integer, Nil, Status, Error };
    Type type = Type::Nil;
    std::string str; // String, Status, Error
    long long integer = 0;
    std::vector<Reply> elements;
    bool is_error() const { return type == Type::Error; }
    static Reply from(const redisReply& r);
};

class RedisConn {
  public:
    struct Hooks {
        std::function<void()> up;                     // ready for commands (after a (re)connect)
        std::function<void(const std::string&)> down; // was up, or never came up: why
        std::function<void(const Reply&)> message;    // subscriber: each pub/sub message array
        std::function<void()> command_failed;         // a command that got no reply or an error reply
    };
    // `name` says which connection in logs ("redis", "redis-sub"). `channel` non-empty makes this a
    // subscriber: it SUBSCRIBEs on every (re)connect and hands each message to hooks.message.
    RedisConn(core::Loop& loop, std::string name, RedisSettings s, Hooks h, std::string channel = {},
              uint64_t backoff_min_ms = 200, uint64_t backoff_max_ms = 5000);
    // A subscriber of several channels (one connection for all); up once every one is confirmed. A message
    // array is ["message", <channel>, <payload>]: the hook tells them apart by the channel.
    RedisConn(core::Loop& loop, std::string name, RedisSettings s, Hooks h, std::vector<std::string> channels,
              uint64_t backoff_min_ms = 200, uint64_t backoff_max_ms = 5000);
    ~RedisConn();
    RedisConn(const RedisConn&) = delete;
    RedisConn& operator=(const RedisConn&) = delete;

    void start();
    bool up() const { return up_; }
    const std::string& last_error() const { return last_error_; }
    // host:port connected to, or configured (with sentinels: the master they named last, else the sentinels).
    std::string address() const;
    // The callback runs once, on the loop: with the reply, or with nullptr when the connection went away
    // first. False (and no callback) when the connection is not up.
    using Callback = std::function<void(const Reply*)>;
    bool command(const std::vector<std::string>& argv, Callback cb = {});

  private:
    static void on_connect(const redisAsyncContext* ac, int status);
    static void on_disconnect(const redisAsyncContext* ac, int status);
    static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
    static void on_message(redisAsyncContext* ac, void* reply, void* privdata);
    void connect();
    void connect_to(const std::string& host, uint16_t port);
    void ask_sentinel(unsigned left);
    static void on_sentinel_connect(const redisAsyncContext* ac, int status);
    static void on_sentinel_disconnect(const redisAsyncContext* ac, int status);
    static void on_sentinel_reply(redisAsyncContext* ac, void* reply, void* privdata);
    void sentinel_failed(const std::string& why, unsigned left);
    void free_sentinel();
    bool send(const std::vector<std::string>& argv, Callback cb); // while connected, before `up` too
    void handshake();
    void became_up();
    // Closes the context (not from inside a hiredis callback: see drop_later) and schedules a reconnect.
    void drop(const std::string& why);
    void drop_later(const std::string& why);
    void lost(const std::string& why);
    void ping();

    core::Loop& loop_;
    std::string name_;
    RedisSettings s_;
    Hooks h_;
    std::vector<std::string> channels_; // empty: a command connection
    link::Backoff backoff_;
    redisAsyncContext* ctx_ = nullptr;
    redisAsyncContext* sentinel_ctx_ = nullptr; // while asking a sentinel
    unsigned sentinel_next_ = 0;                // where the next round starts (rotates past failures)
    unsigned sentinel_left_ = 0;                // sentinels still to ask in this round
    std::string sentinel_errors_;
    std::string master_host_; // what the sentinels named last (or s_.host)
    uint16_t master_port_ = 0;
    bool up_ = false;
    bool ever_reported_down_ = false;
    bool closing_ = false; // destructor: callbacks hiredis runs while freeing reach nobody
    bool ping_outstanding_ = false;
    uint64_t ping_sent_ms_ = 0;
    std::string last_error_ = "not connected yet";
    std::string pending_drop_;
    core::Timer reconnect_timer_, connect_timer_, ping_timer_, drop_timer_;
};

} // namespace edgepair::cluster
