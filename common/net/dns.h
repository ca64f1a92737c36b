#pragma once
// Asynchronous DNS on c-ares, driven by one worker's libevent loop (the nghttpx pattern: ANCHORS A5): c-ares
// tells us which sockets it wants watched through ARES_OPT_SOCK_STATE_CB, readiness is handed back with
// ares_process_fd, and a single timer follows ares_timeout(). One Resolver per loop; never shared across
// threads.
//
// Callbacks are never invoked from inside resolve()/resolve_srv() (numeric hosts are answered on the next
// loop turn), so a caller may hold locks or half-built state across the call. Destroying the Resolver with
// queries in flight completes each of them with an error ("resolver destroyed") from the destructor.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/net/address.h"

struct event;
struct ares_channeldata;
struct ares_addrinfo;

namespace edgepair::net {

struct SrvRecord {
    std::string target; // host name without the trailing dot
    uint16_t port = 0;
    uint16_t priority = 0;
    uint16_t weight = 0;
};

// What one SRV look-up found. Callers that fall back to the domain's address (XMPP and SIP federation) must
// tell "there is no such record", which may be cached for its TTL, from "no answer", which may not, and both
// from a lone "." target (RFC 2782: the service is decidedly not offered), which is not to be dialled at all.
struct SrvAnswer {
    enum class Kind : uint8_t {
        records,     // `records`, ordered as resolve_srv orders them
        none,        // NXDOMAIN or no SRV record of the name
        not_offered, // a lone "." target
        failed,      // no usable answer: timeout, SERVFAIL, refused, malformed (`error` says which)
    };
    Kind kind = Kind::failed;
    std::vector<SrvRecord> records;
    std::string error; // for none / not_offered / failed: what happened, naming the query
};

struct ResolverOptions {
    std::vector<std::string> servers; // "ip:port" / "[v6]:port" / "ip"; empty = the system's resolv.conf
    uint32_t timeout_ms = 2000;       // per try, per server (c-ares doubles it on later rounds)
    uint32_t tries = 2;
    bool use_hosts_file = true; // consult /etc/hosts before DNS for resolve() (not for SRV)
    bool use_tcp = false;       // every query over TCP (ARES_FLAG_USEVC), e.g. where UDP is filtered
    // resolve()'s answers are kept for their DNS TTL, at most this long (0: not kept). c-ares 1.18 keeps
    // nothing, so without it every new upstream connection cost a query (a tenth of edge-c's instructions
    // per proxied request when its pool churns). Failures are never kept.
    uint32_t max_cache_ttl_s = 60;
};

class Resolver {
  public:
    using AddrCallback = std::function<void(Result<std::vector<SockAddr>>)>;
    using SrvCallback = std::function<void(Result<std::vector<SrvRecord>>)>;

    static Result<std::unique_ptr<Resolver>> create(core::Loop& loop, const ResolverOptions& opts = {});
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // A and AAAA records (IPv4 first, then IPv6, each in answer order). Every SockAddr has port 0: the
    // caller sets it. Numeric hosts ("10.0.0.1", "::1", "[::1]") skip DNS.
    void resolve(std::string_view host, AddrCallback cb);
    // SRV records of `name` (e.g. "_collab-edge._tls.example.com"), ordered by priority (lowest first),
    // then weight (highest first). Use srv_weighted_order() for RFC 2782 randomised selection.
    void resolve_srv(std::string_view name, SrvCallback cb);
    // The same look-up with the outcome classified (SrvAnswer::Kind); resolve_srv is this with every kind but
    // `records` as an error.
    void resolve_srv_answer(std::string_view name, std::function<void(SrvAnswer)> cb);

    size_t in_flight() const { return in_flight_; }
    size_t cached() const { return addr_cache_.size(); }

  private:
    struct Query;
    struct SockWatch;
    explicit Resolver(core::Loop& loop);
    static void on_sock_state(void* data, int fd, int readable, int writable);
    static void on_sock_event(int fd, short what, void* arg);
    static void on_defer_event(int, short, void* arg);
    static void on_timer_event(int, short, void* arg);
    static void on_addrinfo(void* arg, int status, int timeouts, ::ares_addrinfo* res);
    static void on_srv(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
    void process(int rfd, int wfd);
    void rearm_timer();
    void complete(std::function<void()> fn);
    void run_deferred();

    core::Loop& loop_;
    ::ares_channeldata* channel_ = nullptr;
    std::map<int, std::unique_ptr<SockWatch>> socks_;
    event* timer_ev_ = nullptr; // a raw event, not core::Timer: a callback may destroy us from inside it
    event* defer_ev_ = nullptr;
    // Completions gathered while c-ares is running, delivered after it returns: a user callback may then
    // start new queries or destroy the Resolver without re-entering c-ares.
    std::vector<std::function<void()>> completed_;
    bool in_ares_ = false;
    bool destroying_ = false;
    size_t in_flight_ = 0;
    struct CachedAddrs {
        std::vector<SockAddr> addrs;
        uint64_t expires_ms = 0;
    };
    uint32_t max_cache_ttl_s_ = 0;
    std::unordered_map<std::string, CachedAddrs> addr_cache_; // by lower-cased name
};

// RFC 2782 selection order: priorities ascending; within one priority, repeated weighted random picks
// (weight-0 records have a small chance to go first, as the RFC asks).
std::vector<SrvRecord> srv_weighted_order(std::vector<SrvRecord> records, std::mt19937& rng);

} // namespace edgepair::net
