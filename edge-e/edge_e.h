#pragma once
// edge-e, the external edge: client listeners (HTTPS 8443, SIP/TLS 5061, XMPP 5222) on every worker,
// the link listener for edge-c, and the admin endpoint on the main loop. It never dials inward.
#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/app/app.h"
#include "common/cluster/cluster_ban_store.h"
#include "common/config/auth_db.h"
#include "common/config/edge_e_config.h"
#include "common/core/process.h"
#include "common/http/rate_limit.h"
#include "common/link/link_conn.h"
#include "common/link/peer_config.h"
#include "common/media/media_metrics.h"
#include "common/mra/snapshot.h"
#include "common/net/listener.h"
#include "common/net/tls_context.h"
#include "common/obs/access_log.h"
#include "common/obs/metrics.h"
#include "common/protection/ban_store.h"
#include "edge-e/media_relay.h"
#include "edge-e/worker_counters.h"

namespace edgepair::edge_e {

// The client protocols, for sessions by protocol on /status and the status page.
enum class SessionKind { Https, SipTls, Xmpp, XmppS2s, SipFederation };
inline constexpr size_t kSessionKinds = 5;
// The listener label of edgepair_intrusion_refused_connections_total, by SessionKind.
inline constexpr std::array<const char*, kSessionKinds> kListenerNames = {"https", "sip_tls", "xmpp",
                                                                          "xmpp_s2s", "sip_federation"};

// Everything a worker needs that is rebuilt on reload: swapped whole, never edited in place.
struct Generation {
    config::EdgeEConfig cfg;
    std::shared_ptr<net::TlsServerContext> https_tls, sip_tls, link_tls;
    // XMPP federation (issue #19): remote servers' STARTTLS on the 5269 listener, and towards remote servers
    // (verifying against federation.xmpp.trusted_cas, or not). Null without federation.xmpp.
    std::shared_ptr<net::TlsServerContext> s2s_tls;
    std::shared_ptr<net::TlsClientContext> s2s_out_verify, s2s_out_noverify;
    // SIP federation (issue #19): the TLS remote SIP servers reach on federation.sip.listen, and towards
    // remote domains (verifying their certificate, or not: federation.sip.tls_verify). Null without
    // federation.sip.
    std::shared_ptr<net::TlsServerContext> sipfed_tls;
    std::shared_ptr<net::TlsClientContext> sipfed_out;
    std::shared_ptr<const config::AuthDb> auth_db;
    // Requests per client address on 8443, shared by every worker; null when http.rate_limit is off. Kept
    // across reloads that do not change its settings, so a SIGHUP does not hand everyone a fresh burst.
    std::shared_ptr<http::KeyedRateLimiter> rate_limiter;
    // log.access; null when off. Opened anew by every generation (docs/CONFIG.md, `log.access`).
    std::shared_ptr<const obs::AccessLog> access_log;
};

class ClientSession {
  public:
    virtual ~ClientSession() = default;
};

class EdgeE;
class Federation;
class SipFederation;

// A session waiting for a traversal link on its worker (WorkerState::wait_for_link). Dropping or cancelling
// the ticket drops the callback (and what it captured) at once; the worker forgets the entry lazily. The
// state is shared so that a ticket outliving its WorkerState (sessions die in ~WorkerState) stays harmless.
struct LinkWaitState {
    std::function<void(link::LinkConn*)> cb;
    uint64_t deadline_ms = 0;
};
class LinkTicket {
  public:
    LinkTicket() = default;
    explicit LinkTicket(std::shared_ptr<LinkWaitState> s) : s_(std::move(s)) {}
    LinkTicket(LinkTicket&&) = default;
    LinkTicket& operator=(LinkTicket&& o) noexcept {
        if (this != &o) {
            cancel();
            s_ = std::move(o.s_);
        }
        return *this;
    }
    ~LinkTicket() { cancel(); }
    void cancel() {
        if (s_) s_->cb = nullptr;
        s_.reset();
    }
    bool waiting() const { return s_ && s_->cb; }

  private:
    std::shared_ptr<LinkWaitState> s_;
};

// Link streams held per client address on one worker (http.max_link_streams_per_client). A slot is held by
// the request that owns a link stream and released when the stream is released; shared so that a slot
// outliving its WorkerState is harmless.
struct ClientStreamTable {
    std::unordered_map<std::string, uint32_t> held;
};
class ClientStreamSlot {
  public:
    ClientStreamSlot() = default;
    ClientStreamSlot(std::shared_ptr<ClientStreamTable> t, std::string key)
        : t_(std::move(t)), key_(std::move(key)) {}
    ClientStreamSlot(ClientStreamSlot&& o) noexcept : t_(std::move(o.t_)), key_(std::move(o.key_)) {}
    ClientStreamSlot& operator=(ClientStreamSlot&& o) noexcept {
        if (this != &o) {
            release();
            t_ = std::move(o.t_);
            key_ = std::move(o.key_);
        }
        return *this;
    }
    ~ClientStreamSlot() { release(); }
    void release();
    explicit operator bool() const { return t_ != nullptr; }

  private:
    std::shared_ptr<ClientStreamTable> t_;
    std::string key_;
};

// Per-worker state; lives on and is only touched from its worker's thread.
class WorkerState {
  public:
    WorkerState(EdgeE& app, core::Worker& w);
    core::Worker& worker() { return worker_; }
    EdgeE& app() { return app_; }
    std::shared_ptr<const Generation> gen() const { return gen_; }
    void apply(std::shared_ptr<const Generation> gen);
    void stop_listening();
    void add(SessionKind kind, std::unique_ptr<ClientSession> s);
    void remove(ClientSession* s);
    size_t sessions() const { return sessions_.size(); }

    // Traversal links that edge-c opened and the main thread handed to this worker.
    void accept_link(int fd);
    // Closes `l` if this worker still holds it (the main loop asks, so it may be gone already).
    void close_link(const link::LinkConn* l, std::string_view reason);
    // An authenticated link on this worker (round-robin), or nullptr: sessions never hop threads.
    link::LinkConn* pick_link();
    bool has_link() const; // some link of this worker is up; takes no turn
    // When pick_link() found none: `cb` gets an up link of this worker as soon as one is up (edge-c dials
    // one link per worker and edge-e hands each new link to the worker with the fewest, so a worker without
    // a link gets one within the reconnect time), or nullptr once http.link_wait has passed (then the
    // session refuses). Never called from inside wait_for_link; waiters are served in arrival order.
    // Waiting sessions stop reading their client.
    LinkTicket wait_for_link(std::function<void(link::LinkConn*)> cb);
    // One link stream for a client address (IPv4 address, IPv6 /64) on this worker; an empty slot when the
    // address already holds http.max_link_streams_per_client here (counted as `per_client_streams`).
    ClientStreamSlot take_client_stream(const net::SockAddr& peer);
    // Every data-path counter of this worker's sessions, bound when the worker state was built.
    WorkerCounters& counters() { return counters_; }
    void apply_snapshot(std::shared_ptr<const mra::Snapshot> snap) { snapshot_ = std::move(snap); }
    std::shared_ptr<const mra::Snapshot> snapshot() const { return snapshot_; }
    // Link states as JSON objects, refreshed on this worker and read by the admin thread.
    std::string links_json() const;
    int links_up() const { return links_up_.load(); }
    int links_total() const { return links_total_.load(); }
    MediaRelay* media() { return media_.get(); }
    // A new request id (HTTP request, SIP flow, XMPP stream) for the access logs of both edges.
    std::string next_request_id() { return request_ids_.next(); }
    // XMPP federation on this worker (edge-e/federation.h); null without federation.xmpp.
    Federation* federation() { return federation_.get(); }
    // SIP federation on this worker (edge-e/sip_federation.h); null without federation.sip.
    SipFederation* sip_federation() { return sip_federation_.get(); }

    // Automated intrusion protection (issue #17). A failure of category `c` from `peer`: counted, and
    // recorded in the process's ban store unless the category is off or the address exempt. Only failure
    // paths call it. A ban it causes holds on this worker at once (the answer that caused it already
    // closes the connection), on the others from their next loop turn.
    void report(protection::Category c, const net::SockAddr& peer);
    // Whether `peer`'s address is banned: the per-worker view, no lock (costs nothing while nobody is).
    bool banned(const net::SockAddr& peer);
    // The ban store's news, posted to this worker's loop.
    void ban_added(const std::string& address, uint64_t until_ms) { bans_.add(address, until_ms); }
    void ban_lifted(const std::string& address) { bans_.remove(address); }

  private:
    void open_listeners();
    // At accept, before TLS: true when the connection was from a banned address (closed and counted).
    bool refuse_banned(SessionKind listener, int fd, const net::SockAddr& peer);
    void refresh_link_status();
    void serve_link_waiters();
    void start_when_linked(int fd, std::function<void(int)> start);
    void expire_link_waiters();
    EdgeE& app_;
    core::Worker& worker_;
    WorkerCounters counters_;
    obs::RequestIds request_ids_;
    std::shared_ptr<const Generation> gen_;
    std::unique_ptr<net::Listener> https_, sip_, xmpp_, s2s_, sipfed_;
    std::string https_addr_, sip_addr_, xmpp_addr_, s2s_addr_, sipfed_addr_;
    std::unique_ptr<Federation> federation_;
    std::unique_ptr<SipFederation> sip_federation_;
    std::unordered_map<ClientSession*, std::unique_ptr<ClientSession>> sessions_;
    std::unordered_map<ClientSession*, SessionKind> session_kinds_; // for the per-protocol counts
    bool stopped_ = false;
    std::vector<std::unique_ptr<link::LinkConn>> links_;
    size_t next_link_ = 0;
    std::shared_ptr<const mra::Snapshot> snapshot_;
    std::unique_ptr<core::Timer> status_timer_;
    mutable std::mutex status_mu_;
    std::string links_json_;
    std::atomic<int> links_up_{0}, links_total_{0};
    std::unique_ptr<MediaRelay> media_; // created once: media settings need a restart
    std::deque<std::shared_ptr<LinkWaitState>> link_waiters_;
    std::unique_ptr<core::Timer> link_wait_timer_;
    std::unordered_map<uint64_t, LinkTicket> flow_waits_; // SIP/XMPP connections accepted before a link
    uint64_t next_flow_wait_ = 0;
    std::shared_ptr<ClientStreamTable> client_streams_ = std::make_shared<ClientStreamTable>();
    protection::BanView bans_;
};

// edge-e's roles in the common process skeleton (common/app).
class EdgeE final : public app::Roles {
  public:
    EdgeE(std::string config_path, config::EdgeEConfig cfg);
    ~EdgeE() override;
    int run() { return app_.run(*this); }
    obs::Registry& metrics() { return app_.metrics(); }
    std::atomic<int64_t>& open_sessions() { return open_sessions_; }
    std::atomic<int64_t>& open_sessions(SessionKind k) { return sessions_by_kind_[size_t(k)]; }

    struct Counters {
        obs::Counter* tls_handshake_failures;
        obs::Counter* http_requests;
        obs::Counter* http_rejected;
        obs::Counter* http_rate_limited;   // 429 answers
        obs::Counter* http_rate_untracked; // let through because the rate table was full
        obs::Counter* http2_connections;
        obs::Counter* http2_streams;
        obs::Counter* link_control_errors; // main loop: bad control messages from edge-c
    };
    Counters& counters() { return counters_; }
    // A control message from edge-c (any worker's link); applied on the main loop.
    void on_control_message(std::string msg);
    // Alarm sso.mode:<domain> where edge-c's SSO mode (from its snapshot) differs from this config's.
    void check_sso_modes();
    void link_closed(unsigned worker);
    // An edge-c link came up / went down on some worker (any thread): edge-e keeps, by edge-c node, what
    // the peer announced when its link opened (link/peer_config.h), compares the peers and reports a
    // disagreement by peer (alarm link.peer_config:<node>, /status link.peers, a gauge). Main loop.
    // `worker` holds the link, `address` is the peer's IP, `link` identifies it to that worker only.
    void peer_link_up(std::string node, link::PeerConfig config, unsigned worker, std::string address,
                      const link::LinkConn* link);
    void peer_link_down(std::string node, unsigned worker);
    size_t worker_count() const { return workers_.size(); }
    // Any thread: listener failures are reported from the workers.
    obs::AlarmTable& alarms() { return app_.alarms(); }
    const media::MediaMetrics& media_metrics() const { return app_.media_metrics(); }

    // Intrusion protection (issue #17): the process's ban store (any thread; failure paths and admin only)
    // and its counters, bound once.
    protection::BanStore& ban_store() { return *ban_store_; }
    struct ProtectionCounters {
        std::array<obs::Counter*, protection::kCategoryCount> failures{};
        std::array<obs::Counter*, protection::kCategoryCount> bans{};
        std::array<obs::Counter*, protection::kCategoryCount> peer_bans{}; // made by a cluster peer
        std::array<obs::Counter*, kSessionKinds> refused{};
    };
    ProtectionCounters& protection_counters() { return protection_counters_; }

  private:
    // app::Roles
    app::Basics basics() const override { return app::basics_of(gen_->cfg); }
    Result<void> create(app::App& app) override;
    void init_worker(core::Worker& w) override { workers_[w.index()]->apply(gen_); }
    void start() override;
    Result<void> prepare(const std::string& path) override;
    void commit() override;
    std::string ready_reason() override;
    std::string status_fields() override;
    void drain_begin() override;
    uint64_t drain_left() override { return uint64_t(open_sessions_.load()); }
    // The worker states (and the sessions they own) go with the process, after the workers joined.
    void teardown_worker(core::Worker&) override {}
    void check_alarms() override;
    std::vector<app::CertFile> cert_files() const override;

    Result<std::shared_ptr<const Generation>> build(config::EdgeEConfig cfg);
    void open_link_listener();
    void install_protection_routes();
    void check_peer_configs();
    std::string peers_json() const;
    std::string protection_status();
    std::string cluster_status();
    void make_ban_store();
    void tell_workers_banned(const protection::Ban& b);
    void tell_workers_lifted(const std::string& address);

    app::App app_; // first: the loops everything below runs on go last
    Counters counters_{};
    // One ring per client-facing listener, for the life of the process: tickets survive reloads and resume on
    // any worker, but never on another listener (whose client-certificate demands may differ).
    struct TicketRings {
        TicketRings() = default;
        explicit TicketRings(std::chrono::milliseconds r)
            : https(std::make_shared<net::TicketKeyRing>(r)), sip(std::make_shared<net::TicketKeyRing>(r)),
              s2s(std::make_shared<net::TicketKeyRing>(r)), sipfed(std::make_shared<net::TicketKeyRing>(r)) {}
        void set_rotation(std::chrono::milliseconds r) {
            for (auto* k : {&https, &sip, &s2s, &sipfed})
                if (*k) (*k)->set_rotation(r);
        }
        std::shared_ptr<net::TicketKeyRing> https, sip, s2s, sipfed;
    } tickets_;
    std::shared_ptr<const Generation> gen_;
    std::shared_ptr<const Generation> pending_; // built by prepare(), swapped in by commit()
    std::vector<std::unique_ptr<WorkerState>> workers_;
    std::unique_ptr<net::Listener> link_listener_;
    std::vector<int> pending_links_; // main loop only: links posted to a worker not yet counted there
    std::string link_listen_addr_;
    std::shared_ptr<const mra::Snapshot> snapshot_;
    uint64_t snapshots_applied_ = 0;
    std::atomic<int64_t> open_sessions_{0};
    std::array<std::atomic<int64_t>, kSessionKinds> sessions_by_kind_{}; // /status, the status page
    uint64_t link_down_since_ms_ = 0; // main loop: when some worker was first seen without a link (0: none)
    // Main loop only: the edge-c peers with a link up, by node name.
    struct PeerEntry {
        link::PeerConfig config; // as announced by its newest link
        uint64_t first_up_ms = 0;
        size_t links = 0;
        std::vector<unsigned> per_worker;     // links up by worker
        std::vector<std::string> differences; // the last verdict; logged when it changes
    };
    std::map<std::string, PeerEntry> peers_;
    // Main loop only: by edge-c address, the worker its next link goes to (see peer_link_up).
    std::map<std::string, unsigned> placement_hint_;
    obs::Gauge* peers_mismatched_ = nullptr;
    ProtectionCounters protection_counters_;
    // The cluster (issue #17; `cluster`, read at start): its Redis-backed ban store (owned by ban_store_)
    // and the settings it was made with, to tell a reload that changes them needs a restart.
    struct Cluster {
        cluster::ClusterBanStore* store = nullptr; // null without `cluster`
        config::ClusterConfig config;              // as at start
        obs::Counter* commands_failed = nullptr;
    } cluster_;
    // One per process: a LocalBanStore, or with `cluster` one shared by the peers through Redis. Declared
    // last: destroyed first, while the loops its Redis connections run on are still there.
    std::unique_ptr<protection::BanStore> ban_store_;
};

} // namespace edgepair::edge_e
