#include "common/net/dns.h"

#include <algorithm>
#include <arpa/nameser.h>
#include <cctype>
#include <cstring>
#include <mutex>
#include <netinet/in.h>

#include <ares.h>
#include <event2/event.h>
#include <fmt/format.h>

#include "common/obs/log.h"

namespace edgepair::net {

namespace {
constexpr const char* kLog = "dns";

std::string strip_dot(std::string s) {
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

std::string ares_message(std::string_view what, std::string_view name, int status) {
    if (status == ARES_EDESTRUCTION) return fmt::format("{} {}: resolver destroyed", what, name);
    return fmt::format("{} {}: {}", what, name, ares_strerror(status));
}
} // namespace

struct Resolver::SockWatch {
    event* ev = nullptr;
    ~SockWatch() {
        if (ev) event_free(ev);
    }
};

constexpr size_t kMaxCachedNames = 4096;

struct Resolver::Query {
    Resolver* self;
    std::string name;
    AddrCallback addr_cb;
    std::function<void(SrvAnswer)> srv_cb;
};

Result<std::unique_ptr<Resolver>> Resolver::create(core::Loop& loop, const ResolverOptions& opts) {
    // ares_library_init is process-global and not thread-safe; workers may create resolvers concurrently.
    static std::once_flag once;
    static int lib_status = ARES_SUCCESS;
    std::call_once(once, [] { lib_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (lib_status != ARES_SUCCESS)
        return make_error(std::string("c-ares init: ") + ares_strerror(lib_status));

    std::unique_ptr<Resolver> self(new Resolver(loop));
    ares_options o{};
    o.sock_state_cb = &Resolver::on_sock_state;
    o.sock_state_cb_data = self.get();
    o.timeout = int(opts.timeout_ms ? opts.timeout_ms : 2000);
    o.tries = int(opts.tries ? opts.tries : 1);
    std::string lookups = opts.use_hosts_file ? "fb" : "b";
    o.lookups = lookups.data();
    int mask =
        ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS | ARES_OPT_FLAGS;
    o.flags = opts.use_tcp ? ARES_FLAG_USEVC : 0;
    ares_channel ch = nullptr;
    int st = ares_init_options(&ch, &o, mask);
    if (st != ARES_SUCCESS) return make_error(std::string("c-ares channel: ") + ares_strerror(st));
    self->channel_ = ch;
    self->max_cache_ttl_s_ = opts.max_cache_ttl_s;
    if (!opts.servers.empty()) {
        std::string csv;
        for (auto& s : opts.servers) {
            if (!csv.empty()) csv += ',';
            csv += s;
        }
        st = ares_set_servers_ports_csv(ch, csv.c_str());
        if (st != ARES_SUCCESS)
            return make_error(fmt::format("DNS servers \"{}\": {}", csv, ares_strerror(st)));
    }
    return self;
}

Resolver::Resolver(core::Loop& loop) : loop_(loop) {
    timer_ev_ = evtimer_new(loop_.base(), &Resolver::on_timer_event, this);
    defer_ev_ = event_new(loop_.base(), -1, 0, &Resolver::on_defer_event, this);
}

Resolver::~Resolver() {
    destroying_ = true;
    // Fails every outstanding query with ARES_EDESTRUCTION; their completions are queued, not run, because
    // on_addrinfo/on_srv go through complete().
    if (channel_) ares_destroy(channel_);
    channel_ = nullptr;
    socks_.clear();
    event_free(timer_ev_);
    timer_ev_ = nullptr;
    event_free(defer_ev_);
    defer_ev_ = nullptr;
    // Nothing below touches `this`: the callbacks own their results.
    auto pending = std::move(completed_);
    for (auto& fn : pending)
        fn();
}

void Resolver::complete(std::function<void()> fn) {
    completed_.push_back(std::move(fn));
    if (!in_ares_ && !destroying_) event_active(defer_ev_, EV_WRITE, 0);
}

void Resolver::run_deferred() {
    auto pending = std::move(completed_);
    completed_.clear();
    // A callback may destroy the Resolver; the local vector keeps the rest deliverable.
    for (auto& fn : pending)
        fn();
}

void Resolver::on_defer_event(int, short, void* arg) {
    static_cast<Resolver*>(arg)->run_deferred();
}

void Resolver::on_timer_event(int, short, void* arg) {
    static_cast<Resolver*>(arg)->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

void Resolver::process(int rfd, int wfd) {
    in_ares_ = true;
    ares_process_fd(channel_, rfd, wfd);
    in_ares_ = false;
    rearm_timer();
    if (!completed_.empty()) run_deferred();
}

void Resolver::rearm_timer() {
    if (!channel_ || !timer_ev_) return;
    timeval tv{};
    timeval* t = ares_timeout(channel_, nullptr, &tv);
    if (!t) {
        evtimer_del(timer_ev_);
        return;
    }
    timeval due = *t;
    evtimer_add(timer_ev_, &due);
}

void Resolver::on_sock_state(void* data, int fd, int readable, int writable) {
    auto* self = static_cast<Resolver*>(data);
    if (!readable && !writable) {
        self->socks_.erase(fd);
        return;
    }
    if (self->destroying_) return;
    auto& w = self->socks_[fd];
    if (!w) w = std::make_unique<SockWatch>();
    if (w->ev) {
        event_free(w->ev);
        w->ev = nullptr;
    }
    // Level-triggered on purpose: ares_process_fd reads one datagram per call, so an edge-triggered
    // watcher would strand answers that arrived together.
    short what = short(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    w->ev = event_new(self->loop_.base(), fd, what, &Resolver::on_sock_event, self);
    event_add(w->ev, nullptr);
}

void Resolver::on_sock_event(int fd, short what, void* arg) {
    auto* self = static_cast<Resolver*>(arg);
    self->process((what & EV_READ) ? fd : ARES_SOCKET_BAD, (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
}

void Resolver::resolve(std::string_view host_in, AddrCallback cb) {
    std::string host(host_in);
    if (host.empty() || host == "*") {
        complete([cb = std::move(cb), host] {
            cb(make_error(fmt::format("resolve \"{}\": not a host name", host)));
        });
        return;
    }
    if (auto num = numeric_addr(host, 0)) {
        complete([cb = std::move(cb), a = *num] { cb(std::vector<SockAddr>{a}); });
        return;
    }
    for (char& c : host)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    if (auto it = addr_cache_.find(host); it != addr_cache_.end()) {
        if (it->second.expires_ms > loop_.now_ms()) {
            complete([cb = std::move(cb), v = it->second.addrs]() mutable { cb(std::move(v)); });
            return;
        }
        addr_cache_.erase(it);
    }
    auto* q = new Query{this, host, std::move(cb), {}};
    ++in_flight_;
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    // c-ares 1.18 sorts by RFC 6724 using throw-away UDP sockets; we order IPv4 first ourselves.
    hints.ai_flags = ARES_AI_NOSORT;
    in_ares_ = true;
    ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, &Resolver::on_addrinfo, q);
    in_ares_ = false;
    rearm_timer();
    if (!completed_.empty()) event_active(defer_ev_, EV_WRITE, 0);
}

void Resolver::on_addrinfo(void* arg, int status, int, ares_addrinfo* res) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    Resolver* self = q->self;
    --self->in_flight_;
    if (status != ARES_SUCCESS) {
        if (res) ares_freeaddrinfo(res);
        EP_DEBUG(kLog, "resolve {}: {}", q->name, ares_strerror(status));
        self->complete([cb = std::move(q->addr_cb), msg = ares_message("resolve", q->name, status)] {
            cb(make_error(msg));
        });
        return;
    }
    std::vector<SockAddr> v4, v6;
    // The shortest TTL among the records kept (a hosts-file answer has none: 0, not cached).
    int ttl = -1;
    for (auto* n = res ? res->nodes : nullptr; n; n = n->ai_next) {
        if (!n->ai_addr || n->ai_addrlen > sizeof(sockaddr_storage)) continue;
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
        ttl = ttl < 0 ? n->ai_ttl : std::min(ttl, n->ai_ttl);
        SockAddr a;
        std::memcpy(&a.ss, n->ai_addr, n->ai_addrlen);
        a.len = n->ai_addrlen;
        if (a.family() == AF_INET)
            reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = 0;
        else
            reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = 0;
        auto& dst = a.family() == AF_INET ? v4 : v6;
        bool dup = std::any_of(dst.begin(), dst.end(), [&](const SockAddr& b) {
            return b.len == a.len && std::memcmp(&b.ss, &a.ss, a.len) == 0;
        });
        if (!dup) dst.push_back(a);
    }
    if (res) ares_freeaddrinfo(res);
    v4.insert(v4.end(), v6.begin(), v6.end());
    if (v4.empty()) {
        self->complete([cb = std::move(q->addr_cb), n = q->name] {
            cb(make_error(fmt::format("resolve {}: no addresses", n)));
        });
        return;
    }
    if (ttl > 0 && self->max_cache_ttl_s_ > 0 && !self->destroying_) {
        // Bounded: a flood of distinct names empties the cache rather than growing it.
        if (self->addr_cache_.size() >= kMaxCachedNames) self->addr_cache_.clear();
        const uint64_t keep_s = std::min<uint64_t>(uint64_t(ttl), self->max_cache_ttl_s_);
        self->addr_cache_[q->name] = {v4, self->loop_.now_ms() + keep_s * 1000};
    }
    self->complete([cb = std::move(q->addr_cb), v = std::move(v4)]() mutable { cb(std::move(v)); });
}

void Resolver::resolve_srv(std::string_view name, SrvCallback cb) {
    resolve_srv_answer(name, [cb = std::move(cb)](SrvAnswer a) {
        if (a.kind == SrvAnswer::Kind::records) return cb(std::move(a.records));
        cb(make_error(std::move(a.error)));
    });
}

void Resolver::resolve_srv_answer(std::string_view name, std::function<void(SrvAnswer)> cb) {
    std::string n(name);
    if (n.empty()) {
        complete([cb = std::move(cb)] { cb({SrvAnswer::Kind::failed, {}, "resolve SRV: empty name"}); });
        return;
    }
    auto* q = new Query{this, n, {}, std::move(cb)};
    ++in_flight_;
    in_ares_ = true;
    ares_query(channel_, n.c_str(), ns_c_in, ns_t_srv, &Resolver::on_srv, q);
    in_ares_ = false;
    rearm_timer();
    if (!completed_.empty()) event_active(defer_ev_, EV_WRITE, 0);
}

void Resolver::on_srv(void* arg, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    Resolver* self = q->self;
    --self->in_flight_;
    auto answer = [&](SrvAnswer a) {
        self->complete([cb = std::move(q->srv_cb), a = std::move(a)]() mutable { cb(std::move(a)); });
    };
    using Kind = SrvAnswer::Kind;
    if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
        return answer({Kind::none, {}, ares_message("resolve SRV", q->name, status)});
    if (status != ARES_SUCCESS)
        return answer({Kind::failed, {}, ares_message("resolve SRV", q->name, status)});
    ares_srv_reply* reply = nullptr;
    int st = ares_parse_srv_reply(abuf, alen, &reply);
    if (st == ARES_ENODATA) return answer({Kind::none, {}, ares_message("resolve SRV", q->name, st)});
    if (st != ARES_SUCCESS) return answer({Kind::failed, {}, ares_message("resolve SRV", q->name, st)});
    std::vector<SrvRecord> out;
    for (auto* r = reply; r; r = r->next)
        out.push_back(SrvRecord{strip_dot(r->host ? r->host : ""), r->port, r->priority, r->weight});
    ares_free_data(reply);
    // RFC 2782: target "." means the service is decidedly not available here.
    out.erase(std::remove_if(out.begin(), out.end(), [](const SrvRecord& r) { return r.target.empty(); }),
              out.end());
    if (out.empty())
        return answer({Kind::not_offered,
                       {},
                       fmt::format("resolve SRV {}: the service is not offered (\".\")", q->name)});
    std::stable_sort(out.begin(), out.end(), [](const SrvRecord& a, const SrvRecord& b) {
        if (a.priority != b.priority) return a.priority < b.priority;
        return a.weight > b.weight;
    });
    answer({Kind::records, std::move(out), {}});
}

std::vector<SrvRecord> srv_weighted_order(std::vector<SrvRecord> records, std::mt19937& rng) {
    std::stable_sort(records.begin(), records.end(),
                     [](const SrvRecord& a, const SrvRecord& b) { return a.priority < b.priority; });
    std::vector<SrvRecord> out;
    out.reserve(records.size());
    size_t i = 0;
    while (i < records.size()) {
        size_t j = i;
        while (j < records.size() && records[j].priority == records[i].priority)
            ++j;
        std::vector<SrvRecord> group(records.begin() + long(i), records.begin() + long(j));
        // Weight-0 records first, as RFC 2782 arranges them before the running-sum selection.
        std::stable_partition(group.begin(), group.end(), [](const SrvRecord& r) { return r.weight == 0; });
        while (!group.empty()) {
            uint32_t total = 0;
            for (auto& r : group)
                total += r.weight;
            uint32_t pick = std::uniform_int_distribution<uint32_t>(0, total)(rng);
            uint32_t run = 0;
            size_t k = 0;
            for (; k < group.size(); ++k) {
                run += group[k].weight;
                if (run >= pick) break;
            }
            if (k == group.size()) k = group.size() - 1;
            out.push_back(std::move(group[k]));
            group.erase(group.begin() + long(k));
        }
        i = j;
    }
    return out;
}

} // namespace edgepair::net
