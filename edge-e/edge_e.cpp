#include "edge-e/edge_e.h"

#include <algorithm>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/app/main.h"
#include "common/cluster/cluster_ban_store.h"
#include "common/cluster/cluster_identity.h"
#include "common/http/query.h"
#include "common/http/rate_limit.h"
#include "common/link/peer_cert.h"
#include "common/mra/snapshot_json.h"
#include "common/obs/log.h"
#include "edge-e/federation.h"
#include "edge-e/sessions.h"
#include "edge-e/sip_federation.h"

namespace edgepair::edge_e {

namespace {

net::SockAddr to_sockaddr(const config::Address& a) {
    auto r = a.kind == config::Address::Kind::Name ? net::resolve_blocking(a.host, a.port)
                                                   : net::numeric_addr(a.host.empty() ? "*" : a.host, a.port);
    return r ? *r : net::SockAddr{};
}

int tls_version(config::TlsVersion v) {
    return v == config::TlsVersion::V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

net::TlsServerOptions server_options(const config::EdgeEConfig& cfg, std::vector<std::string> alpn,
                                     std::shared_ptr<net::TicketKeyRing> tickets) {
    net::TlsServerOptions o;
    o.ticket_keys = std::move(tickets);
    o.default_cert = {cfg.tls.default_certificate.cert, cfg.tls.default_certificate.key, {}};
    for (auto& c : cfg.tls.certificates)
        o.sni_certs.push_back({c.files.cert, c.files.key, c.domains});
    o.trusted_cas = cfg.tls.trusted_cas;
    o.min_version = tls_version(cfg.tls.min_version);
    o.session_tickets = cfg.tls.session_tickets;
    o.ciphers = cfg.tls.ciphers;
    o.ciphersuites = cfg.tls.ciphersuites;
    o.alpn = std::move(alpn);
    return o;
}

protection::Settings protection_settings(const config::ProtectionConfig& pc) {
    protection::Settings s;
    s.rules = pc.categories;
    if (!pc.enabled)
        for (auto& r : s.rules)
            r.enabled = false;
    s.max_tracked = pc.max_tracked;
    return s;
}

// A ban's end for people: UTC, ISO 8601 (the loops' clock is wall-clock milliseconds).
std::string iso_utc(uint64_t ms) {
    time_t t = time_t(ms / 1000);
    tm tmv{};
    gmtime_r(&t, &tmv);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return buf;
}

} // namespace

// ---- WorkerState ----

WorkerState::WorkerState(EdgeE& app, core::Worker& w)
    : app_(app), worker_(w), counters_(app.metrics()), request_ids_(w.index()) {}

void WorkerState::apply(std::shared_ptr<const Generation> gen) {
    gen_ = std::move(gen);
    if (!media_ && gen_->cfg.media)
        media_ = std::make_unique<MediaRelay>(worker_.loop(), *gen_->cfg.media, worker_.index(),
                                              unsigned(app_.worker_count()), app_.media_metrics());
    if (!stopped_) open_listeners();
}

void WorkerState::open_listeners() {
    auto& cfg = gen_->cfg;
    auto& loop = worker_.loop();
    // A listener whose address did not change is kept: reload must not drop the accept queue.
    auto reopen = [&](std::unique_ptr<net::Listener>& l, std::string& cur, const auto& section, auto make) {
        if (!section) {
            l.reset();
            cur.clear();
            return;
        }
        std::string want = section->listen.str();
        if (l && cur == want) return;
        l.reset();
        auto opened = net::Listener::open(loop, to_sockaddr(section->listen), true, make);
        if (!opened) {
            EP_ERROR("edge-e", "worker {}: listener {}: {}", worker_.index(), want, opened.error().message);
            app_.alarms().raise("port.conflict:" + want, obs::Severity::Critical,
                                fmt::format("listener {} not open: {}", want, opened.error().message));
            cur.clear();
            return;
        }
        app_.alarms().clear("port.conflict:" + want);
        l = std::move(*opened);
        cur = want;
    };
    reopen(https_, https_addr_, cfg.listeners.https, [this](int fd, const net::SockAddr& peer) {
        if (refuse_banned(SessionKind::Https, fd, peer)) return;
        add(SessionKind::Https, make_https_session(*this, fd, gen_->https_tls->new_ssl()));
    });
    // A SIP or XMPP flow lives on one link stream of its worker: one accepted while the worker has no link
    // up waits for one (the TLS handshake waits with it) rather than be refused at its first message.
    reopen(sip_, sip_addr_, cfg.listeners.sip_tls, [this](int fd, const net::SockAddr& peer) {
        if (refuse_banned(SessionKind::SipTls, fd, peer)) return;
        start_when_linked(fd, [this](int f) {
            add(SessionKind::SipTls, make_sip_session(*this, f, gen_->sip_tls->new_ssl()));
        });
    });
    reopen(xmpp_, xmpp_addr_, cfg.listeners.xmpp, [this](int fd, const net::SockAddr& peer) {
        if (refuse_banned(SessionKind::Xmpp, fd, peer)) return;
        start_when_linked(fd, [this](int f) { add(SessionKind::Xmpp, make_xmpp_session(*this, f)); });
    });
    if (cfg.federation.xmpp && !federation_) federation_ = std::make_unique<Federation>(*this);
    if (federation_) federation_->apply(gen_);
    reopen(s2s_, s2s_addr_, cfg.federation.xmpp, [this](int fd, const net::SockAddr& peer) {
        if (refuse_banned(SessionKind::XmppS2s, fd, peer)) return;
        start_when_linked(fd, [this](int f) {
            if (federation_) add(SessionKind::XmppS2s, federation_->make_inbound(f));
        });
    });
    if (cfg.federation.sip && !sip_federation_) sip_federation_ = std::make_unique<SipFederation>(*this);
    if (sip_federation_) sip_federation_->apply(gen_);
    reopen(sipfed_, sipfed_addr_, cfg.federation.sip, [this](int fd, const net::SockAddr&) {
        start_when_linked(fd, [this](int f) {
            if (sip_federation_) add(SessionKind::SipFederation, sip_federation_->make_inbound(f));
        });
    });
}

bool WorkerState::refuse_banned(SessionKind listener, int fd, const net::SockAddr& peer) {
    if (!banned(peer)) return false;
    // Closed before TLS: a banned address costs an accept and a close, no handshake.
    ::close(fd);
    app_.protection_counters().refused[size_t(listener)]->inc();
    EP_DEBUG("protection", "{}: connection to {} refused: address banned", peer.str(),
             kListenerNames[size_t(listener)]);
    return true;
}

bool WorkerState::banned(const net::SockAddr& peer) {
    if (bans_.empty()) return false;
    return bans_.banned(http::client_rate_key(peer), worker_.loop().now_ms());
}

void WorkerState::report(protection::Category c, const net::SockAddr& peer) {
    const auto& pc = gen_->cfg.protection;
    if (!pc.enabled || !pc.categories[size_t(c)].enabled) return;
    app_.protection_counters().failures[size_t(c)]->inc();
    for (const auto& n : pc.exempt)
        if (n.contains(peer)) return;
    auto key = http::client_rate_key(peer);
    auto o = app_.ban_store().record_failure(c, key, worker_.loop().now_ms());
    if (o.kind == protection::Outcome::Kind::Banned) bans_.add(key, o.ban->until_ms);
}

void WorkerState::stop_listening() {
    stopped_ = true;
    https_.reset();
    sip_.reset();
    xmpp_.reset();
    s2s_.reset();
    sipfed_.reset();
}

void WorkerState::add(SessionKind kind, std::unique_ptr<ClientSession> s) {
    if (!s) return;
    app_.open_sessions().fetch_add(1, std::memory_order_relaxed);
    app_.open_sessions(kind).fetch_add(1, std::memory_order_relaxed);
    auto* p = s.get();
    sessions_.emplace(p, std::move(s));
    session_kinds_.emplace(p, kind);
}

void WorkerState::remove(ClientSession* s) {
    // Deferred: the session is usually inside one of its own callbacks when it ends.
    worker_.loop().post([this, s] {
        if (sessions_.erase(s)) app_.open_sessions().fetch_sub(1, std::memory_order_relaxed);
        if (auto k = session_kinds_.find(s); k != session_kinds_.end()) {
            app_.open_sessions(k->second).fetch_sub(1, std::memory_order_relaxed);
            session_kinds_.erase(k);
        }
    });
}

void WorkerState::accept_link(int fd) {
    auto g = gen_;
    auto conn = std::make_unique<net::Connection>(worker_.loop(), fd, g->link_tls->new_ssl(), true);
    link::LinkOptions o;
    o.role = link::Role::Opener;
    o.node_name = g->cfg.node_name;
    o.peer_name = conn->peer().str();
    o.required_san = g->cfg.link.tls_verify_subject_name;
    o.require_client_cert = true;
    auto db = g->auth_db;
    o.check_credentials = [db](std::string_view user, std::string_view pass) {
        return db->verify(user, pass);
    };
    o.ping_interval_ms = uint64_t(g->cfg.link.ping_interval.count());
    o.ping_timeout_ms = uint64_t(g->cfg.link.ping_timeout.count());
    auto lc = std::make_unique<link::LinkConn>(worker_.loop(), std::move(conn), o, app_.metrics());
    link::LinkConn* raw = lc.get();
    unsigned workers = unsigned(app_.worker_count());
    unsigned index = worker_.index();
    auto was_up = std::make_shared<bool>(false);
    raw->set_callbacks({
        [this, raw, workers, index, was_up] {
            EP_INFO("link", "worker {}: link from {} ({}) is up", worker_.index(), raw->status().peer_address,
                    raw->peer_node());
            *was_up = true;
            app_.peer_link_up(raw->peer_node(), link::from_headers(raw->peer_headers()), index,
                              raw->connection().peer().ip(), raw);
            // Tells edge-c how many link connections this edge-e wants: one per worker.
            raw->send_control(fmt::format(R"({{"type":"hello","workers":{},"worker":{}}})", workers, index));
            refresh_link_status();
            // Next turn: waiters open streams on this link, not from inside its own callback.
            worker_.loop().post([this] { serve_link_waiters(); });
        },
        [this, raw, index, was_up](std::string_view why) {
            EP_INFO("link", "worker {}: link from {} closed: {}", worker_.index(), raw->status().peer_address,
                    why);
            if (*was_up) app_.peer_link_down(raw->peer_node(), index);
            // Not from inside the LinkConn's own callback: free it on the next loop turn.
            worker_.loop().post([this, raw] {
                if (media_) media_->link_closed(raw);
                std::erase_if(links_, [raw](auto& l) { return l.get() == raw; });
                refresh_link_status();
            });
            app_.link_closed(index);
        },
        [this, raw](std::string_view msg) {
            // Media belongs to the worker that owns the link (and the call's SIP flow); the rest is global.
            if (msg.find("\"type\":\"s2s_") != std::string_view::npos) {
                // XMPP federation towards a remote server (edge-e/federation.h): on the link's worker.
                if (federation_)
                    federation_->on_control(raw, msg);
                else
                    raw->send_control(fmt::format(
                        R"({{"type":"s2s_failed","id":{},"error":"XMPP federation not configured on edge-e"}})",
                        mra::control_uint(msg, "id", 0)));
                return;
            }
            if (msg.find("\"type\":\"sipfed_") != std::string_view::npos) {
                // SIP federation towards a remote domain (edge-e/sip_federation.h): on the link's worker.
                if (sip_federation_)
                    sip_federation_->on_control(raw, msg);
                else
                    raw->send_control(fmt::format(
                        R"({{"type":"sipfed_failed","id":{},"error":"SIP federation not configured on edge-e"}})",
                        mra::control_uint(msg, "id", 0)));
                return;
            }
            if (msg.find("\"type\":\"media_") != std::string_view::npos) {
                std::string reply;
                if (media_)
                    reply = media_->on_control(raw, msg);
                else
                    reply = fmt::format(
                        R"({{"type":"media_failed","id":{},"error":"media relay not configured on edge-e"}})",
                        mra::control_uint(msg, "id", 0));
                if (!reply.empty()) raw->send_control(reply);
                return;
            }
            app_.on_control_message(std::string(msg));
        },
        nullptr,
    });
    links_.push_back(std::move(lc));
    raw->start();
    refresh_link_status();
    if (!status_timer_) {
        status_timer_ = std::make_unique<core::Timer>(worker_.loop(), [this] {
            refresh_link_status();
            status_timer_->arm(1000);
        });
        status_timer_->arm(1000);
    }
}

void WorkerState::close_link(const link::LinkConn* l, std::string_view reason) {
    for (auto& own : links_)
        if (own.get() == l) return own->close(reason);
}

link::LinkConn* WorkerState::pick_link() {
    for (size_t i = 0; i < links_.size(); ++i) {
        auto& l = links_[(next_link_ + i) % links_.size()];
        if (l->up()) {
            next_link_ = (next_link_ + i + 1) % links_.size();
            return l.get();
        }
    }
    return nullptr;
}

LinkTicket WorkerState::wait_for_link(std::function<void(link::LinkConn*)> cb) {
    auto st = std::make_shared<LinkWaitState>();
    st->cb = std::move(cb);
    auto now = worker_.loop().now_ms();
    st->deadline_ms = now + uint64_t(gen_->cfg.http.link_wait.count());
    link_waiters_.push_back(st);
    counters_.waits->inc();
    if (!link_wait_timer_)
        link_wait_timer_ = std::make_unique<core::Timer>(worker_.loop(), [this] { expire_link_waiters(); });
    if (!link_wait_timer_->armed()) link_wait_timer_->arm(st->deadline_ms - now);
    return LinkTicket(st);
}

bool WorkerState::has_link() const {
    return std::any_of(links_.begin(), links_.end(), [](const auto& l) { return l->up(); });
}

void WorkerState::start_when_linked(int fd, std::function<void(int)> start) {
    // Not pick_link(): that takes a turn, and the session takes the next one, so with two links on a worker
    // (one from each edge-c) every flow would land on the same one.
    if (has_link()) return start(fd);
    // The fd is closed if the wait is dropped without an answer (the worker goes away first).
    struct Fd {
        int fd = -1;
        ~Fd() {
            if (fd >= 0) ::close(fd);
        }
    };
    auto held = std::make_shared<Fd>();
    held->fd = fd;
    auto id = next_flow_wait_++;
    // At the deadline the session starts anyway and refuses the flow the way it always did.
    flow_waits_[id] = wait_for_link([this, id, held, start = std::move(start)](link::LinkConn*) {
        int f = std::exchange(held->fd, -1);
        flow_waits_.erase(id); // the callback itself was moved out of the ticket's state before the call
        start(f);
    });
}

void WorkerState::serve_link_waiters() {
    // Each callback may add waiters (a retry) or cancel others: take one entry at a time off the front.
    while (!link_waiters_.empty()) {
        auto st = link_waiters_.front();
        if (!st->cb) {
            link_waiters_.pop_front();
            continue;
        }
        link::LinkConn* l = pick_link();
        if (!l) return;
        link_waiters_.pop_front();
        auto cb = std::move(st->cb);
        st->cb = nullptr;
        cb(l);
    }
}

void WorkerState::expire_link_waiters() {
    auto now = worker_.loop().now_ms();
    // A reload may shorten http.link_wait, so deadlines are not strictly in arrival order: look at them all.
    std::vector<std::function<void(link::LinkConn*)>> expired;
    uint64_t next = 0;
    std::erase_if(link_waiters_, [&](const std::shared_ptr<LinkWaitState>& st) {
        if (!st->cb) return true;
        if (st->deadline_ms <= now) {
            expired.push_back(std::move(st->cb));
            st->cb = nullptr;
            return true;
        }
        if (!next || st->deadline_ms < next) next = st->deadline_ms;
        return false;
    });
    if (next) link_wait_timer_->arm(next - now);
    for (auto& cb : expired) {
        counters_.wait_timeouts->inc();
        cb(nullptr);
    }
}

void ClientStreamSlot::release() {
    if (!t_) return;
    auto it = t_->held.find(key_);
    if (it != t_->held.end() && --it->second == 0) t_->held.erase(it);
    t_.reset();
}

ClientStreamSlot WorkerState::take_client_stream(const net::SockAddr& peer) {
    auto key = http::client_rate_key(peer);
    auto& n = client_streams_->held[key];
    if (n >= gen_->cfg.http.max_link_streams_per_client) {
        counters_.per_client_full->inc();
        return {};
    }
    ++n;
    return ClientStreamSlot(client_streams_, std::move(key));
}

void WorkerState::refresh_link_status() {
    std::string js;
    int up = 0;
    for (auto& l : links_) {
        if (!js.empty()) js += ',';
        js += l->status_json();
        if (l->up()) ++up;
    }
    std::lock_guard<std::mutex> lk(status_mu_);
    links_json_ = std::move(js);
    links_up_ = up;
    links_total_ = int(links_.size());
}

std::string WorkerState::links_json() const {
    std::lock_guard<std::mutex> lk(status_mu_);
    return links_json_;
}

// ---- EdgeE ----

EdgeE::EdgeE(std::string config_path, config::EdgeEConfig cfg)
    : app_("edge-e", std::move(config_path),
           {"wrong_source", "not_latched", "not_ready", "unknown_channel", "bad_traversal_header", "too_big",
            "kernel_rcvbuf"}) {
    auto& m = app_.metrics();
    counters_.tls_handshake_failures =
        &m.counter("edgepair_tls_handshake_failures_total", "Client TLS handshakes that failed");
    counters_.http_requests = &m.counter("edgepair_http_requests_total", "HTTP requests received");
    counters_.http_rejected = &m.counter("edgepair_http_rejected_total", "HTTP requests refused");
    counters_.http_rate_limited = &m.counter("edgepair_http_rate_limited_total",
                                             "HTTP requests answered 429 (per-client request rate)");
    counters_.http_rate_untracked =
        &m.counter("edgepair_http_rate_untracked_total",
                   "HTTP requests let through unmetered because the rate table was full");
    counters_.http2_connections =
        &m.counter("edgepair_http2_connections_total", "Client connections that negotiated h2");
    counters_.http2_streams = &m.counter("edgepair_http2_streams_total", "Client HTTP/2 streams opened");
    counters_.link_control_errors =
        &m.counter("edgepair_link_control_errors_total", "Bad control messages from edge-c");
    peers_mismatched_ =
        &m.gauge("edgepair_link_peers_mismatched",
                 "edge-c peers whose announced cluster name, domains or deployments disagree");
    m.gauge_fn("edgepair_client_sessions", "Open client sessions",
               [this] { return double(open_sessions_.load()); });
    for (size_t i = 0; i < protection::kCategoryCount; ++i) {
        std::string cat(protection::kCategoryNames[i]);
        protection_counters_.failures[i] =
            &m.counter("edgepair_intrusion_failures_total",
                       "Failures counted by intrusion protection, by category (exempt sources included)",
                       {{"category", cat}});
        protection_counters_.bans[i] =
            &m.counter("edgepair_intrusion_bans_total",
                       "Source addresses banned, by the category that banned them", {{"category", cat}});
    }
    for (size_t i = 0; i < kSessionKinds; ++i)
        protection_counters_.refused[i] =
            &m.counter("edgepair_intrusion_refused_connections_total",
                       "Client connections closed at accept because their address is banned",
                       {{"listener", kListenerNames[i]}});
    tickets_ = TicketRings(cfg.tls.session_ticket_rotation);
    gen_ = app::value_or_throw(build(std::move(cfg)));
    for (size_t i = 0; i < protection::kCategoryCount; ++i)
        protection_counters_.peer_bans[i] = &m.counter(
            "edgepair_intrusion_peer_bans_total",
            "Bans made by another edge-e peer of the cluster and applied here (their maker counts them in "
            "edgepair_intrusion_bans_total), by category",
            {{"category", std::string(protection::kCategoryNames[i])}});
}

void EdgeE::make_ban_store() {
    const auto& cfg = gen_->cfg;
    cluster_.config = cfg.cluster;
    if (!cfg.cluster.redis) {
        ban_store_ = std::make_unique<protection::LocalBanStore>(protection_settings(cfg.protection));
    } else {
        auto& m = app_.metrics();
        cluster_.commands_failed = &m.counter("edgepair_cluster_redis_commands_failed_total",
                                              "Redis commands that got an error or no reply (cluster state)");
        m.gauge_fn("edgepair_cluster_redis_up", "1 while this peer reaches the cluster's Redis, else 0",
                   [this] { return cluster_.store && cluster_.store->up() ? 1.0 : 0.0; });
        cluster::ClusterBanStore::Options o;
        {
            auto id = cluster::cluster_identity(cfg.cluster, cfg.node_name);
            o.redis = std::move(id.redis);
            o.prefix = std::move(id.prefix);
            o.origin = std::move(id.origin);
        }
        cluster::ClusterBanStore::Hooks h;
        h.state = [this](bool up, const std::string& why) {
            if (up) {
                app_.alarms().clear("cluster.redis");
            } else {
                app_.alarms().raise(
                    "cluster.redis", obs::Severity::Major,
                    fmt::format(
                        "Redis {} of cluster {} unreachable ({}): bans are not shared until it returns",
                        cluster_.store->redis_address(), cluster_.config.name, why));
            }
        };
        h.command_failed = [this] { cluster_.commands_failed->inc(); };
        auto store = std::make_unique<cluster::ClusterBanStore>(
            app_.main_loop(), protection_settings(cfg.protection), std::move(o), std::move(h));
        cluster_.store = store.get();
        ban_store_ = std::move(store);
    }
    // Runs on the thread that made the ban or the lift (for a peer's: the main loop), outside the store's
    // lock.
    ban_store_->set_listener({
        [this](const protection::Ban& b) {
            protection_counters_.bans[size_t(b.category)]->inc();
            EP_WARN("protection", "address {} banned for {}s: {} {} failures within {}s (until {})",
                    b.address, (b.until_ms - b.since_ms) / 1000, b.count,
                    protection::category_name(b.category), b.window_ms / 1000, iso_utc(b.until_ms));
            tell_workers_banned(b);
        },
        [this](const std::string& address) {
            EP_INFO("protection", "ban of {} lifted by the administrator", address);
            tell_workers_lifted(address);
        },
        [this](const protection::Ban& b) {
            // Logged and counted as a ban by the peer that made it; here only as a peer's.
            protection_counters_.peer_bans[size_t(b.category)]->inc();
            EP_DEBUG("protection", "a cluster peer's ban of {} applied here (until {})", b.address,
                     iso_utc(b.until_ms));
            tell_workers_banned(b);
        },
        [this](const std::string& address) { tell_workers_lifted(address); },
    });
}

void EdgeE::tell_workers_banned(const protection::Ban& b) {
    for (auto& w : workers_) {
        auto* ws = w.get();
        ws->worker().loop().post([ws, a = b.address, u = b.until_ms] { ws->ban_added(a, u); });
    }
}

void EdgeE::tell_workers_lifted(const std::string& address) {
    for (auto& w : workers_) {
        auto* ws = w.get();
        ws->worker().loop().post([ws, address] { ws->ban_lifted(address); });
    }
}

EdgeE::~EdgeE() = default;

Result<std::shared_ptr<const Generation>> EdgeE::build(config::EdgeEConfig cfg) {
    auto gen = std::make_shared<Generation>();
    // h2 first: a client offering both gets HTTP/2 (RFC 7301 server preference).
    auto https = net::TlsServerContext::create(server_options(cfg, {"h2", "http/1.1"}, tickets_.https));
    if (!https) return make_error("tls (https listener): " + https.error().message);
    auto sip_opts = server_options(cfg, {}, tickets_.sip);
    if (cfg.listeners.sip_tls) {
        auto mode = cfg.listeners.sip_tls->client_certificates;
        sip_opts.client_certs = mode == config::ClientCertMode::Required   ? net::ClientCertMode::Required
                                : mode == config::ClientCertMode::Optional ? net::ClientCertMode::Optional
                                                                           : net::ClientCertMode::None;
    }
    auto sip = net::TlsServerContext::create(sip_opts);
    if (!sip) return make_error("tls (sip listener): " + sip.error().message);
    // The link resumes nothing: edge-c holds one connection per worker, and its certificate is checked
    // afresh.
    auto link_opts = server_options(cfg, {std::string(link::kAlpn)}, nullptr);
    // The link presents the default certificate and demands edge-c's; the SNI store is for clients.
    link_opts.sni_certs.clear();
    link_opts.client_certs = net::ClientCertMode::Required;
    auto link_tls = net::TlsServerContext::create(link_opts);
    if (!link_tls) return make_error("tls (link listener): " + link_tls.error().message);
    auto db = config::load_auth_db(cfg.link.auth_database);
    if (!db) return make_error("link.auth_database: " + db.error().message);
    gen->link_tls = *link_tls;
    gen->auth_db = std::make_shared<const config::AuthDb>(std::move(*db));
    gen->https_tls = *https;
    gen->sip_tls = *sip;
    if (cfg.federation.xmpp) {
        auto& fx = *cfg.federation.xmpp;
        const std::string& cas = fx.trusted_cas.empty() ? cfg.tls.trusted_cas : fx.trusted_cas;
        auto s2s_opts = server_options(cfg, {}, tickets_.s2s);
        s2s_opts.trusted_cas = cas;
        // Required: the remote presents a certificate that chains to the CAs (its name is checked against the
        // stream's 'from' after the restart); otherwise one is asked for but not needed.
        s2s_opts.client_certs = fx.security == config::FederationSecurity::Required
                                    ? net::ClientCertMode::Required
                                    : net::ClientCertMode::None;
        auto s2s = net::TlsServerContext::create(s2s_opts);
        if (!s2s) return make_error("tls (federation.xmpp listener): " + s2s.error().message);
        gen->s2s_tls = *s2s;
        net::TlsClientOptions co;
        co.trusted_cas = cas;
        co.min_version = tls_version(cfg.tls.min_version);
        auto verify = net::TlsClientContext::create(co);
        if (!verify) return make_error("tls (federation.xmpp outbound): " + verify.error().message);
        co.verify = false;
        auto noverify = net::TlsClientContext::create(co);
        if (!noverify) return make_error("tls (federation.xmpp outbound): " + noverify.error().message);
        gen->s2s_out_verify = *verify;
        gen->s2s_out_noverify = *noverify;
    }
    if (cfg.federation.sip) {
        auto& fs = *cfg.federation.sip;
        const std::string& cas = fs.trusted_cas.empty() ? cfg.tls.trusted_cas : fs.trusted_cas;
        // Inbound, the remote server's requests are held to the domain lists by their From (docs/CONFIG.md,
        // federation.sip); with verify_client its certificate must also name that From domain.
        auto so = server_options(cfg, {}, tickets_.sipfed);
        so.trusted_cas = cas;
        so.client_certs = fs.verify_client ? net::ClientCertMode::Required : net::ClientCertMode::None;
        auto st = net::TlsServerContext::create(so);
        if (!st) return make_error("tls (federation.sip listener): " + st.error().message);
        gen->sipfed_tls = *st;
        net::TlsClientOptions co;
        co.trusted_cas = cas;
        co.min_version = tls_version(cfg.tls.min_version);
        co.verify = fs.tls_verify;
        auto out = net::TlsClientContext::create(co);
        if (!out) return make_error("tls (federation.sip outbound): " + out.error().message);
        gen->sipfed_out = *out;
    }
    if (cfg.http.rate_limit.enabled) {
        http::RateLimitOptions rl;
        rl.rate = cfg.http.rate_limit.requests_per_second;
        rl.burst = cfg.http.rate_limit.burst;
        gen->rate_limiter = app::carry_limiter(gen_ ? gen_->rate_limiter : nullptr, rl);
    }
    if (auto r = app::open_access_log(cfg.log.access, "edge-e"); !r)
        return make_error("log.access: " + r.error().message);
    else
        gen->access_log = *r;
    gen->cfg = std::move(cfg);
    return std::shared_ptr<const Generation>(gen);
}

Result<void> EdgeE::create(app::App& app) {
    for (auto& w : app.process().workers())
        workers_.push_back(std::make_unique<WorkerState>(*this, *w));
    pending_links_.assign(workers_.size(), 0);
    // Here, not in the constructor: a cluster's store needs the main loop, which the App makes in run().
    make_ban_store();
    install_protection_routes();
    return {};
}

void EdgeE::open_link_listener() {
    std::string want = gen_->cfg.link.listen.str();
    if (link_listener_ && want == link_listen_addr_) return;
    link_listener_.reset();
    // Accepted on the main loop and handed to the worker with the fewest links, so that every worker gets
    // its own link (kernel SO_REUSEPORT hashing could put two on one worker and none on another).
    auto l =
        net::Listener::open(app_.main_loop(), to_sockaddr(gen_->cfg.link.listen), false,
                            [this](int fd, const net::SockAddr& peer) {
                                size_t best = 0;
                                for (size_t i = 1; i < workers_.size(); ++i)
                                    if (workers_[i]->links_total() + pending_links_[i] <
                                        workers_[best]->links_total() + pending_links_[best])
                                        best = i;
                                // A worker that lacks this edge-c's link (EdgeE::peer_link_up).
                                if (auto h = placement_hint_.find(peer.ip()); h != placement_hint_.end()) {
                                    if (h->second < workers_.size()) best = h->second;
                                    placement_hint_.erase(h);
                                }
                                ++pending_links_[best];
                                EP_DEBUG("link", "link connection from {} -> worker {}", peer.str(), best);
                                auto* ws = workers_[best].get();
                                ws->worker().loop().post([this, ws, fd, best] {
                                    ws->accept_link(fd);
                                    app_.main_loop().post([this, best] { --pending_links_[best]; });
                                });
                            });
    if (!l) {
        EP_ERROR("edge-e", "link.listen {}: {}", want, l.error().message);
        app_.alarms().raise("port.conflict:" + want, obs::Severity::Critical,
                            fmt::format("link.listen {} not open: {}", want, l.error().message));
        link_listen_addr_.clear();
        return;
    }
    app_.alarms().clear("port.conflict:" + want);
    link_listener_ = std::move(*l);
    link_listen_addr_ = want;
}

void EdgeE::link_closed(unsigned) {}

void EdgeE::peer_link_up(std::string node, link::PeerConfig config, unsigned worker, std::string address,
                         const link::LinkConn* link) {
    app_.main_loop().post([this, node = std::move(node), config = std::move(config), worker,
                           address = std::move(address), link]() mutable {
        auto& e = peers_[node];
        if (e.links++ == 0) e.first_up_ms = app_.main_loop().now_ms();
        e.per_worker.resize(workers_.size());
        ++e.per_worker[worker];
        e.config = std::move(config);
        check_peer_configs();
        // A session never leaves its worker, so every worker needs a link from every edge-c: a worker whose
        // links all come from one edge-c refuses its requests when that edge-c dies, although another serves.
        // The link listener cannot tell the edge-c apart before authentication, so a second link of this
        // node on a worker while another worker has none of it is closed at once, and the node's next
        // connection from that address is placed on the worker that lacks it (edge-c redials by itself).
        if (e.per_worker[worker] < 2) return;
        for (unsigned x = 0; x < e.per_worker.size(); ++x) {
            if (e.per_worker[x] != 0) continue;
            placement_hint_[address] = x;
            EP_INFO("link",
                    "edge-c {}: two links on worker {} and none on worker {}: closing one, its "
                    "reconnection goes to worker {}",
                    node, worker, x, x);
            auto* ws = workers_[worker].get();
            ws->worker().loop().post([ws, link] { ws->close_link(link, "rebalance: one link per worker"); });
            return;
        }
    });
}

void EdgeE::peer_link_down(std::string node, unsigned worker) {
    app_.main_loop().post([this, node = std::move(node), worker] {
        auto it = peers_.find(node);
        if (it == peers_.end()) return;
        if (worker < it->second.per_worker.size() && it->second.per_worker[worker] > 0)
            --it->second.per_worker[worker];
        if (--it->second.links == 0) peers_.erase(it);
        check_peer_configs();
    });
}

void EdgeE::check_peer_configs() {
    // The reference is the peer up longest: the one whose snapshot edge-e has served from the longest. A
    // newcomer that disagrees is reported, the established peer is not; each is also held to our cluster
    // name.
    const std::string* ref_node = nullptr;
    const PeerEntry* ref = nullptr;
    for (const auto& [node, e] : peers_)
        if (e.config.announced && (!ref || e.first_up_ms < ref->first_up_ms)) {
            ref = &e;
            ref_node = &node;
        }
    const std::string& own = gen_->cfg.cluster.name;
    std::vector<std::string> keep;
    for (auto& [node, e] : peers_) {
        auto diffs = link::peer_differences(e.config, own, ref == &e ? nullptr : &ref->config,
                                            ref_node ? std::string_view(*ref_node) : std::string_view());
        if (diffs != e.differences && !diffs.empty())
            EP_WARN("link", "edge-c {} disagrees with this cluster: {} (the link stays up)", node,
                    fmt::join(diffs, "; "));
        else if (diffs.empty() && !e.differences.empty())
            EP_INFO("link", "edge-c {} now agrees with this cluster", node);
        e.differences = std::move(diffs);
        if (e.differences.empty()) continue;
        std::string id = "link.peer_config:" + node;
        app_.alarms().raise(id, obs::Severity::Major,
                            fmt::format("edge-c {}: {}", node, fmt::join(e.differences, "; ")));
        keep.push_back(std::move(id));
    }
    app_.alarms().clear_family("link.peer_config:", keep);
    if (peers_mismatched_) peers_mismatched_->set(int64_t(keep.size()));
}

std::string EdgeE::peers_json() const {
    auto list = [](const std::vector<std::string>& v) {
        std::string out;
        for (auto& d : v)
            out += (out.empty() ? "" : ",") + admin::json_str(d);
        return "[" + out + "]";
    };
    std::string out;
    for (const auto& [node, e] : peers_)
        out += fmt::format(
            "{}{{\"node\":{},\"links_up\":{},\"links_by_worker\":[{}],\"announced\":{},"
            "\"cluster\":{},\"domains\":{},\"deployments\":{},\"consistent\":{},\"mismatch\":{}}}",
            out.empty() ? "" : ",", admin::json_str(node), e.links, fmt::join(e.per_worker, ","),
            e.config.announced ? "true" : "false", admin::json_str(e.config.cluster), list(e.config.domains),
            list(e.config.deployments), e.differences.empty() ? "true" : "false", list(e.differences));
    return "[" + out + "]";
}

void EdgeE::on_control_message(std::string msg) {
    app_.main_loop().post([this, msg = std::move(msg)] {
        auto j = mra::control_type(msg);
        if (j == "snapshot") {
            auto in = mra::snapshot_input_from_control(msg);
            if (!in) {
                EP_WARN("link", "edge-c pushed a bad snapshot: {}", in.error().message);
                counters_.link_control_errors->inc();
                return;
            }
            auto snap = mra::build_snapshot(std::move(*in));
            if (!snap) {
                EP_WARN("link", "edge-c pushed a snapshot that does not validate: {}", snap.error().message);
                counters_.link_control_errors->inc();
                return;
            }
            snapshot_ = *snap;
            ++snapshots_applied_;
            auto sp = snapshot_;
            app_.process().broadcast(
                [this, sp](core::Worker& w) { workers_[w.index()]->apply_snapshot(sp); });
            EP_INFO("link", "applied snapshot from edge-c: {} domains, {} nodes, {} allow-list rules",
                    sp->domains.size(), sp->nodes.size(), sp->allow_list.rules().size());
            check_sso_modes();
        } else {
            EP_DEBUG("link", "control message ignored: {}", j);
        }
    });
}

Result<void> EdgeE::prepare(const std::string& path) {
    return app::prepare_generation(
        path, config::load_edge_e_config, [this](auto cfg) { return build(std::move(cfg)); }, pending_);
}

void EdgeE::start() {
    open_link_listener();
    if (cluster_.store) cluster_.store->start();
}

void EdgeE::commit() {
    gen_ = std::move(pending_);
    if (gen_->cfg.cluster.redis != cluster_.config.redis)
        EP_WARN("edge-e",
                "the cluster section changed: it applies at the next restart (Redis {} kept until then)",
                cluster_.store ? cluster_.store->redis_address() : std::string("none"));
    tickets_.set_rotation(gen_->cfg.tls.session_ticket_rotation);
    ban_store_->apply(protection_settings(gen_->cfg.protection));
    // Listener failures are judged afresh: every listener that is not open is tried again below and raises
    // its alarm again if it still cannot bind; one that moved away from a taken address no longer alarms.
    app_.alarms().clear_family("port.conflict:", {});
    open_link_listener();
    auto gen = gen_;
    app_.process().broadcast([this, gen](core::Worker& w) { workers_[w.index()]->apply(gen); },
                             [] { EP_INFO("edge-e", "reload applied on every worker"); });
    check_sso_modes();
    check_peer_configs(); // cluster.name may have changed
}

void EdgeE::check_sso_modes() {
    app_.alarms().clear_family("sso.mode:", {});
    app_.alarms().clear_family("sso.internal_check", {});
    if (!snapshot_ || !gen_) return;
    const auto& sso = gen_->cfg.sso;
    for (const auto& d : sso.domains) {
        // A domain edge-e signs in through an IdP that edge-c does not serve: its /authorize and /fedlet
        // cannot work, and the operator meant one of the two configurations.
        if (d.mode == config::SsoMode::Off || snapshot_->find_domain(d.name)) continue;
        EP_WARN("sso", "domain {}: single sign-on is {} here but edge-c has no such domain", d.name,
                config::to_string(d.mode));
        app_.alarms().raise(
            "sso.mode:" + d.name, obs::Severity::Warning,
            fmt::format("single sign-on for {} is {} on edge-e, and edge-c has no such domain", d.name,
                        config::to_string(d.mode)));
    }
    if (snapshot_->sso_check_internal && *snapshot_->sso_check_internal != sso.check_internal_availability) {
        // Either side answers get_edge_sso depending on it (edge-e alone when off): the answer a client gets
        // would depend on the edge's own setting.
        EP_WARN(
            "sso",
            "sso.check_internal_availability is {} on edge-c and {} here; set the same value on both edges",
            *snapshot_->sso_check_internal, sso.check_internal_availability);
        app_.alarms().raise("sso.internal_check", obs::Severity::Warning,
                            fmt::format("sso.check_internal_availability is {} on edge-c, {} on edge-e",
                                        *snapshot_->sso_check_internal, sso.check_internal_availability));
    }
    for (const auto& d : snapshot_->domains) {
        const std::string here = config::to_string(gen_->cfg.sso.mode_of(d.name));
        if (here == d.sso) continue;
        EP_WARN("sso",
                "domain {}: single sign-on is {} on edge-c and {} here; set the same mode on both edges",
                d.name, d.sso, here);
        app_.alarms().raise(
            "sso.mode:" + d.name, obs::Severity::Warning,
            fmt::format("single sign-on for {} is {} on edge-c, {} on edge-e", d.name, d.sso, here));
    }
}

void EdgeE::drain_begin() {
    EP_INFO("edge-e", "draining: listeners closed, waiting for {} sessions", open_sessions_.load());
    app_.process().broadcast([this](core::Worker& w) { workers_[w.index()]->stop_listening(); });
    link_listener_.reset();
}

// Ready (200): at least one traversal link is up on some worker and edge-c pushed its configuration. Not a
// promise that every worker has its own link: a request on a worker without one waits for that worker's link
// (WorkerState::wait_for_link, up to http.link_wait) rather than being refused, and edge-c dials one link per
// worker, so the others follow within its reconnect time.
std::string EdgeE::ready_reason() {
    int up = 0;
    for (auto& w : workers_)
        up += w->links_up();
    if (up == 0) return "no traversal link to edge-c";
    if (!snapshot_) return "no configuration pushed by edge-c yet";
    return {};
}

std::string EdgeE::status_fields() {
    auto& cfg = gen_->cfg;
    std::string listeners;
    auto add_listener = [&](const char* name, const auto& section) {
        if (!section) return;
        if (!listeners.empty()) listeners += ',';
        listeners +=
            fmt::format("{{\"name\":\"{}\",\"address\":{}}}", name, admin::json_str(section->listen.str()));
    };
    add_listener("https", cfg.listeners.https);
    add_listener("sip_tls", cfg.listeners.sip_tls);
    add_listener("xmpp", cfg.listeners.xmpp);
    add_listener("xmpp_s2s", cfg.federation.xmpp);
    add_listener("sip_federation", cfg.federation.sip);
    std::string sni;
    for (auto& n : gen_->https_tls->sni().names())
        sni += (sni.empty() ? "" : ",") + admin::json_str(n);
    std::string links = app::links_json(workers_);
    std::string snap = "null";
    if (snapshot_) {
        std::string domains;
        for (auto& d : snapshot_->domains)
            domains += (domains.empty() ? "" : ",") + admin::json_str(d.name);
        std::string nodes;
        for (auto& n : snapshot_->nodes)
            nodes += (nodes.empty() ? "" : ",") + admin::json_str(n.name);
        snap = fmt::format("{{\"applied\":{},\"domains\":[{}],\"nodes\":[{}],\"allow_list_rules\":{}}}",
                           snapshots_applied_, domains, nodes, snapshot_->allow_list.rules().size());
    }
    // Federation (issue #19): its settings, and the refusal and DNS-failure counters by reason / stage
    // (summed over workers by the registry), so an operator sees why partners are refused without scraping
    // /metrics.
    auto by_label = [this](const std::string& family) { return admin::counters_json(metrics(), family); };
    auto list = [](const std::vector<std::string>& v) {
        std::string out;
        for (auto& d : v)
            out += (out.empty() ? "" : ",") + admin::json_str(d);
        return "[" + out + "]";
    };
    std::string fed_parts;
    if (cfg.federation.xmpp) {
        const auto& fx = *cfg.federation.xmpp;
        fed_parts = fmt::format(
            "\"xmpp\":{{\"listen\":{},\"security\":\"{}\",\"local_domains\":{},\"allow\":{},"
            "\"deny\":{},\"refusals\":{},\"dns_failures\":{}}}",
            admin::json_str(fx.listen.str()), config::to_string(fx.security), list(fx.local_domains),
            list(fx.allow), list(fx.deny), by_label("edgepair_xmpp_federation_refusals_total"),
            by_label("edgepair_xmpp_federation_dns_failures_total"));
    }
    if (cfg.federation.sip) {
        const auto& fs = *cfg.federation.sip;
        fed_parts += fmt::format("{}\"sip\":{{\"listen\":{},\"tls_verify\":{},\"local_domains\":{},"
                                 "\"allow\":{},\"deny\":{},\"refusals\":{},\"dns_failures\":{}}}",
                                 fed_parts.empty() ? "" : ",", admin::json_str(fs.listen.str()),
                                 fs.tls_verify ? "true" : "false", list(fs.local_domains), list(fs.allow),
                                 list(fs.deny), by_label("edgepair_sip_federation_refusals_total"),
                                 by_label("edgepair_sip_federation_dns_failures_total"));
    }
    // Open federated sessions per remote domain (the gauges the sessions hold), summed over workers by the
    // registry; a domain whose sessions all ended is left out.
    std::string open;
    for (const char* proto : {"xmpp", "sip"}) {
        for (auto& [labels, n] : metrics().gauge_values(fmt::format("edgepair_{}_federation_open", proto))) {
            if (n <= 0) continue;
            std::string direction, domain;
            for (auto& [k, v] : labels)
                (k == "direction" ? direction : domain) = v;
            open += fmt::format("{}{{\"protocol\":\"{}\",\"direction\":{},\"domain\":{},\"sessions\":{}}}",
                                open.empty() ? "" : ",", proto, admin::json_str(direction),
                                admin::json_str(domain), n);
        }
    }
    if (!fed_parts.empty()) fed_parts += ",\"open\":[" + open + "]";
    std::string fed = fed_parts.empty() ? "null" : "{" + fed_parts + "}";
    return fmt::format(
        ",\"listeners\":[{}],\"cluster\":{},\"link\":{{\"listen\":{},\"links\":[{}],\"edge_c_peers\":{}}},"
        "\"snapshot\":{},"
        "\"sni_names\":[{}],\"sessions\":{},\"sessions_by_protocol\":{{\"https\":{},\"sip_tls\":{},"
        "\"xmpp\":{},\"xmpp_s2s\":{},\"sip_federation\":{}}},\"federation\":{},\"protection\":{}",
        listeners, cluster_status(), admin::json_str(cfg.link.listen.str()), links, peers_json(), snap, sni,
        open_sessions_.load(), sessions_by_kind_[0].load(), sessions_by_kind_[1].load(),
        sessions_by_kind_[2].load(), sessions_by_kind_[3].load(), sessions_by_kind_[4].load(), fed,
        protection_status());
}

// ---- intrusion protection (issue #17) ----

std::string EdgeE::protection_status() {
    const auto& pc = gen_->cfg.protection;
    std::string cats, exempt;
    for (size_t i = 0; i < protection::kCategoryCount; ++i) {
        const auto& r = pc.categories[i];
        cats +=
            fmt::format("{}{{\"name\":\"{}\",\"enabled\":{},\"threshold\":{},\"window_s\":{},\"ban_s\":{}}}",
                        i ? "," : "", protection::kCategoryNames[i], r.enabled ? "true" : "false",
                        r.threshold, r.window_ms / 1000, r.ban_ms / 1000);
    }
    for (const auto& n : pc.exempt)
        exempt += (exempt.empty() ? "" : ",") + admin::json_str(n.str());
    auto bans = ban_store_->bans(app_.main_loop().now_ms()).size();
    return fmt::format("{{\"enabled\":{},\"store\":\"{}\",\"categories\":[{}],\"exempt\":[{}],"
                       "\"bans\":{},\"tracked\":{}}}",
                       pc.enabled ? "true" : "false", ban_store_->kind(), cats, exempt, bans,
                       ban_store_->tracked());
}

// The name from the running config; Redis as at start (the store's connections were made with it).
std::string EdgeE::cluster_status() {
    const auto& name = gen_->cfg.cluster.name; // announced by edge-c and compared on every link: reloadable
    if (!cluster_.store) return fmt::format("{{\"name\":{},\"redis\":null}}", admin::json_str(name));
    auto* st = cluster_.store;
    return fmt::format("{{\"name\":{},\"redis\":{{\"address\":{},\"up\":{},\"error\":{},"
                       "\"commands_failed\":{}}}}}",
                       admin::json_str(name), admin::json_str(st->redis_address()),
                       st->up() ? "true" : "false", admin::json_str(st->last_error()),
                       cluster_.commands_failed->value());
}

void EdgeE::install_protection_routes() {
    // The ban key of what the administrator typed: an address becomes its key (IPv6: the /64 it was banned
    // under); a key as /protection/bans lists it is taken as it is.
    auto key_of = [](const std::string& text) {
        auto a = net::numeric_addr(text, 0);
        return a ? http::client_rate_key(*a) : text;
    };
    auto lift = [this, key_of](const admin::Request& r) {
        auto v = http::query_values(r.query, "address", 1);
        if (v.empty() || v[0].empty()) return admin::text(400, "name the address: ?address=<ip>\n");
        auto key = key_of(v[0]);
        if (!ban_store_->lift(key, app_.main_loop().now_ms()))
            return admin::text(404, "no active ban for " + key + "\n");
        return admin::json(200, fmt::format("{{\"lifted\":{}}}\n", admin::json_str(key)));
    };
    app_.admin().route("/protection/bans", [this, lift](const admin::Request& r) {
        if (r.method == "DELETE") return lift(r);
        if (r.method != "GET" && r.method != "HEAD") return admin::text(405, "use GET or DELETE ?address=\n");
        auto now = app_.main_loop().now_ms();
        std::string out;
        for (const auto& b : ban_store_->bans(now))
            out += fmt::format("{}{{\"address\":{},\"category\":\"{}\",\"count\":{},\"since\":\"{}\","
                               "\"until\":\"{}\",\"remaining_s\":{}}}",
                               out.empty() ? "" : ",", admin::json_str(b.address),
                               protection::category_name(b.category), b.count, iso_utc(b.since_ms),
                               iso_utc(b.until_ms), (b.until_ms - now + 999) / 1000);
        return admin::json(200, "{\"bans\":[" + out + "]}\n");
    });
    app_.admin().route("/protection/lift", [lift](const admin::Request& r) {
        if (r.method != "POST") return admin::text(405, "use POST ?address=\n");
        return lift(r);
    });
}

// ---- alarms (issue #20) ----

// A link that comes back within this long (edge-c restarting its dialer, a reconnect after a ping timeout)
// is not worth waking anyone for.
constexpr uint64_t kLinkAlarmDelayMs = 3000;

void EdgeE::check_alarms() {
    std::vector<size_t> without;
    for (size_t i = 0; i < workers_.size(); ++i)
        if (workers_[i]->links_up() == 0) without.push_back(i);
    const uint64_t now = app_.main_loop().now_ms();
    if (without.empty()) {
        link_down_since_ms_ = 0;
        app_.alarms().clear("link.down");
        return;
    }
    if (link_down_since_ms_ == 0) link_down_since_ms_ = now;
    if (now - link_down_since_ms_ < kLinkAlarmDelayMs) return;
    if (without.size() == workers_.size()) {
        app_.alarms().raise("link.down", obs::Severity::Critical,
                            fmt::format("no traversal link from edge-c is up (listening on {}): MRA traffic "
                                        "cannot reach the internal network",
                                        gen_->cfg.link.listen.str()));
        return;
    }
    app_.alarms().raise("link.down", obs::Severity::Major,
                        fmt::format("{} of {} workers have no traversal link up (worker {}): their requests "
                                    "wait for one",
                                    without.size(), workers_.size(), fmt::join(without, ", ")));
}

std::vector<app::CertFile> EdgeE::cert_files() const {
    auto& tls = gen_->cfg.tls;
    std::vector<app::CertFile> out{{"tls.default_certificate.cert", tls.default_certificate.cert},
                                   {"tls.trusted_cas", tls.trusted_cas}};
    for (size_t i = 0; i < tls.certificates.size(); ++i)
        out.push_back({fmt::format("tls.certificates[{}].cert", i), tls.certificates[i].files.cert});
    return out;
}

} // namespace edgepair::edge_e
