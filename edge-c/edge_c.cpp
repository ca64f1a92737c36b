#include "edge-c/edge_c.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/app/main.h"
#include "common/cluster/cluster_identity.h"
#include "common/http/b64_domain.h"
#include "common/http/query.h"
#include "common/link/peer_config.h"
#include "common/mra/snapshot_json.h"
#include "common/obs/log.h"
#include "edge-c/allow_list_admin.h"
#include "edge-c/cluster_signin.h"
#include "edge-c/credentials.h"
#include "edge-c/edge_token.h"
#include "edge-c/mra_access_policy.h"
#include "edge-c/oauth_keys.h"
#include "edge-c/oauth_validator.h"
#include "edge-c/s2s_service.h"
#include "edge-c/saml_sp.h"
#include "edge-c/sip_router.h"
#include "edge-c/sip_service.h"
#include "edge-c/sipfed_service.h"
#include "edge-c/snapshot_input.h"
#include "edge-c/stream_router.h"
#include "edge-c/xmpp_service.h"

namespace edgepair::edge_c {

// ---- CWorker ----

CWorker::CWorker(EdgeC& app, core::Worker& w, std::shared_ptr<const Generation> gen)
    : app_(app), worker_(w), gen_(std::move(gen)), counters_(app.metrics()), owner_(w.loop()) {}

CWorker::~CWorker() = default;

void CWorker::add_dialer(size_t peer, link::LinkDialer::Config cfg) {
    if (torn_down_) return; // posted before the stop, arrived after it
    if (!cfg.host.empty()) cfg.resolver = resolver_.get();
    // The callbacks need the dialer they belong to, which exists only after construction.
    auto self = std::make_shared<link::LinkDialer*>(nullptr);
    link::LinkCallbacks cb;
    cb.on_up = [this, self] {
        link::LinkDialer* d = *self;
        EP_INFO("link", "worker {}: link to {} is up", worker_.index(), d->peer_name());
        if (push_ && d->link()) d->link()->send_control(*push_);
        refresh_status();
    };
    cb.on_close = [this](std::string_view) { worker_.loop().post([this] { refresh_status(); }); };
    cb.on_control_message = [this, peer, self](std::string_view msg) {
        auto type = mra::control_type(msg);
        if (type == "hello")
            app_.on_peer_hello(peer, mra::control_uint(msg, "workers", 1));
        else if (type.starts_with("media_") && (*self)->link())
            on_media_control(*this, (*self)->link(), msg);
        else if (type.starts_with("s2s_") && s2s_)
            s2s_->on_control(msg);
        else if (type.starts_with("sipfed_") && sipfed_)
            sipfed_->on_control(msg);
    };
    cb.on_stream = [this](link::LinkStream* s, const link::Headers& h) { serve_stream(*this, s, h); };
    auto d =
        std::make_unique<link::LinkDialer>(worker_.loop(), std::move(cfg), app_.metrics(), std::move(cb));
    *self = d.get();
    link::LinkDialer* raw = d.get();
    dialers_.emplace_back(peer, std::move(d));
    raw->start();
    if (!status_timer_) {
        status_timer_ = std::make_unique<core::Timer>(worker_.loop(), [this] {
            refresh_status();
            status_timer_->arm(1000);
        });
        status_timer_->arm(1000);
    }
}

namespace {
net::ResolverOptions resolver_options(const config::EdgeCConfig& cfg) {
    net::ResolverOptions o;
    for (auto& a : cfg.dns.servers)
        o.servers.push_back(a.str());
    o.timeout_ms = uint32_t(cfg.dns.timeout.count());
    o.max_cache_ttl_s =
        uint32_t(std::chrono::duration_cast<std::chrono::seconds>(cfg.dns.max_cache_ttl).count());
    return o;
}

http::ClientOptions client_options(const Generation& g) {
    http::ClientOptions o;
    o.tls_verify = g.upstream_verify;
    o.tls_noverify = g.upstream_noverify;
    o.response_timeout_ms = uint64_t(g.cfg.http.upstream_timeout.count());
    o.max_idle_per_origin = size_t(g.cfg.http.upstream_idle_per_origin);
    o.pool_idle_timeout_ms = uint64_t(g.cfg.http.upstream_idle_timeout.count());
    return o;
}
} // namespace

void CWorker::init() {
    auto& g = gen_;
    auto r = net::Resolver::create(worker_.loop(), resolver_options(g->cfg));
    if (!r) throw std::runtime_error("dns: " + r.error().message);
    resolver_ = std::move(*r);
    http_ = std::make_unique<http::Client>(worker_.loop(), *resolver_, client_options(*g));
    UdsCheckerOptions o;
    o.snapshot = [this] { return snapshot(); };
    o.refresh_ms = [this] { return uint64_t(gen_->cfg.credentials.refresh_interval.count()); };
    o.cleanup_ms = uint64_t(g->cfg.credentials.cleanup_interval.count());
    o.home_cache_ms = [this] { return uint64_t(gen_->cfg.credentials.home_cache.count()); };
    o.vouched = [this](std::string_view deployment, std::string_view user,
                       std::string_view password) -> std::optional<CredentialStamps::Vouch> {
        const auto& sealer = gen_->edge_tokens; // the stamps exist only with edge tokens
        if (!sealer || stamps_.size() == 0) return std::nullopt;
        return stamps_.vouch(deployment, user, sealer->stamp_of(deployment, user, password), wall_clock_ms(),
                             uint64_t(gen_->cfg.credentials.refresh_interval.count()));
    };
    credentials_ = std::make_unique<UdsCredentialChecker>(worker_.loop(), *http_, std::move(o));
    mra_access_ = std::make_unique<MraAccessDirectory>(*this);
    xmpp_ = std::make_unique<XmppService>(*this);
    sip_ = std::make_unique<SipRouter>(*this);
    if (g->cfg.federation.xmpp) s2s_ = std::make_unique<S2sService>(*this);
    if (g->cfg.federation.sip) sipfed_ = std::make_unique<SipFedService>(*this);
}

link::LinkConn* CWorker::pick_link() {
    for (size_t i = 0; i < dialers_.size(); ++i) {
        auto& d = dialers_[(next_link_ + i) % dialers_.size()].second;
        if (d->up() && d->link()) {
            next_link_ = (next_link_ + i + 1) % dialers_.size();
            return d->link();
        }
    }
    return nullptr;
}

void CWorker::apply_generation(std::shared_ptr<const Generation> gen) {
    // Another token key: stamps made with the old one compare with nothing the new one seals.
    if (!gen_ || gen->edge_tokens != gen_->edge_tokens) stamps_.clear();
    gen_ = std::move(gen);
    http_->set_tls(gen_->upstream_verify, gen_->upstream_noverify);
    http_->set_response_timeout(uint64_t(gen_->cfg.http.upstream_timeout.count()));
    http_->set_pool(size_t(gen_->cfg.http.upstream_idle_per_origin),
                    uint64_t(gen_->cfg.http.upstream_idle_timeout.count()));
}

void CWorker::teardown() {
    torn_down_ = true;
    status_timer_.reset();
    // Closing a link closes its streams: their handlers still reach the services and the HTTP client.
    dialers_.clear();
    owner_.clear();
    sipfed_.reset();
    s2s_.reset();
    sip_.reset();
    xmpp_.reset();
    mra_access_.reset();
    credentials_.reset();
    http_.reset();
    resolver_.reset();
    refresh_status();
}

void CWorker::learn_node_address(const std::string& ip, const std::string& node) {
    if (sip_) sip_->learn_node_address(ip, node);
}

void CWorker::stop_dialers() {
    for (auto& [p, d] : dialers_)
        d->stop();
}

void CWorker::apply(std::shared_ptr<const mra::Snapshot> snap, std::shared_ptr<const std::string> push) {
    snapshot_ = std::move(snap);
    push_ = std::move(push);
    for (auto& [p, d] : dialers_)
        if (d->up()) d->link()->send_control(*push_);
}

void CWorker::refresh_status() {
    std::string js;
    int up = 0;
    for (auto& [p, d] : dialers_) {
        if (!js.empty()) js += ',';
        if (d->link())
            js += d->link()->status_json();
        else
            js +=
                fmt::format("{{\"peer_name\":{},\"state\":\"connecting\",\"attempts\":{},\"last_error\":{}}}",
                            admin::json_str(d->peer_name()), d->attempts(), admin::json_str(d->last_error()));
        if (d->up()) ++up;
    }
    std::lock_guard<std::mutex> lk(status_mu_);
    links_json_ = std::move(js);
    links_up_ = up;
}

bool CWorker::link_alive(const link::LinkConn* l) const {
    for (auto& [p, d] : dialers_)
        if (d->link() == l) return d->up();
    return false;
}

std::string CWorker::links_json() const {
    std::lock_guard<std::mutex> lk(status_mu_);
    return links_json_;
}

// ---- EdgeC ----

EdgeC::EdgeC(std::string config_path, config::EdgeCConfig cfg)
    : app_("edge-c", std::move(config_path),
           {"srtp_auth", "srtp_replay", "srtp_bad", "unknown_channel", "wrong_source", "not_ready", "too_big",
            "kernel_rcvbuf"}) {
    if (RAND_bytes(flow_token_key_.data(), int(flow_token_key_.size())) != 1)
        throw std::runtime_error("RAND_bytes failed: no SIP flow-token key");
    gen_ = app::value_or_throw(build(std::move(cfg)));
}

EdgeC::~EdgeC() {
    OPENSSL_cleanse(flow_token_key_.data(), flow_token_key_.size());
}

void EdgeC::share_node_address(const std::string& ip, const std::string& node) {
    app_.process().broadcast(
        [this, ip, node](core::Worker& w) { workers_[w.index()]->learn_node_address(ip, node); });
}

void EdgeC::saml_remember_request(std::string id, std::string domain, int64_t expires_s) {
    if (signin_) {
        app_.main_loop().post([this, id = std::move(id), domain = std::move(domain), expires_s] {
            signin_->remember_request(id, domain, expires_s, int64_t(wall_clock_ms() / 1000));
        });
        return;
    }
    workers_.front()->worker().loop().post([cache = saml_cache_, id = std::move(id),
                                            domain = std::move(domain),
                                            expires_s] { cache->remember_request(id, domain, expires_s); });
}

void EdgeC::saml_admit(CWorker& from, SamlIdentity id, std::string domain, int64_t now_s, SamlAdmitted done) {
    core::Loop& back = from.worker().loop();
    if (signin_) {
        app_.main_loop().post([this, &back, id = std::move(id), domain = std::move(domain), now_s,
                               done = std::move(done)]() mutable {
            SamlIdentity copy = id;
            signin_->admit(copy, domain, now_s,
                           [&back, id = std::move(id), done = std::move(done)](std::optional<SamlRefusal> why,
                                                                               std::string detail) mutable {
                               back.post([id = std::move(id), why, detail = std::move(detail),
                                          done = std::move(done)]() mutable {
                                   done(std::move(id), why, std::move(detail));
                               });
                           });
        });
        return;
    }
    workers_.front()->worker().loop().post([cache = saml_cache_, &back, id = std::move(id),
                                            domain = std::move(domain), now_s,
                                            done = std::move(done)]() mutable {
        std::string detail;
        auto why = cache->admit(id, domain, now_s, detail);
        back.post([id = std::move(id), why, detail = std::move(detail), done = std::move(done)]() mutable {
            done(std::move(id), why, std::move(detail));
        });
    });
}

void EdgeC::share_limiter_take(const char* kind, const std::string& key) {
    if (!signin_) return;
    app_.main_loop().post([this, kind, key] {
        if (signin_) signin_->tally(kind, key);
    });
}

void EdgeC::share_credential_stamp(CWorker& from, const std::string& deployment, const std::string& user,
                                   const CredentialStamp& stamp, uint64_t seen_ms, uint64_t cleanup_ms,
                                   const std::string& node) {
    from.learn_credential_stamp(deployment, user, stamp, seen_ms, cleanup_ms, node);
    if (signin_)
        app_.main_loop().post([this, deployment, user, stamp, seen_ms, node] {
            // As long as a token sealed before this check may still be accepted: an HTTP token lives
            // refresh_interval from its issue, a REGISTER's token that plus sip_token_extra_ttl.
            const auto& c = gen_->cfg;
            const uint64_t ttl = uint64_t(c.credentials.refresh_interval.count()) +
                                 uint64_t(c.sso.sip_token_extra_ttl.count());
            signin_->share_stamp(deployment, user, stamp, seen_ms, ttl, node);
        });
    if (workers_.size() < 2) return;
    const size_t origin = from.worker().index();
    app_.process().broadcast([this, origin, deployment, user, stamp, seen_ms, cleanup_ms,
                              node](core::Worker& w) {
        if (w.index() != origin)
            workers_[w.index()]->learn_credential_stamp(deployment, user, stamp, seen_ms, cleanup_ms, node);
    });
}

Result<std::shared_ptr<const Generation>> EdgeC::build(config::EdgeCConfig cfg) {
    auto gen = std::make_shared<Generation>();
    net::TlsClientOptions o;
    o.trusted_cas = cfg.tls.trusted_cas;
    o.cert = cfg.tls.certificate.cert;
    o.key = cfg.tls.certificate.key;
    o.min_version = cfg.tls.min_version == config::TlsVersion::V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    o.alpn = {"edgepair-link/1"};
    auto tls = net::TlsClientContext::create(o);
    if (!tls) return make_error("tls (link client): " + tls.error().message);
    gen->link_tls = *tls;
    // Upstream TLS: the same certificate (edge-c's serverAuth+clientAuth cert, for nodes that ask), no ALPN.
    net::TlsClientOptions up = o;
    up.alpn.clear();
    auto verify = net::TlsClientContext::create(up);
    if (!verify) return make_error("tls (upstream): " + verify.error().message);
    up.verify = false;
    auto noverify = net::TlsClientContext::create(up);
    if (!noverify) return make_error("tls (upstream, no verify): " + noverify.error().message);
    gen->upstream_verify = *verify;
    gen->upstream_noverify = *noverify;
    if (cfg.federation.xmpp) {
        const auto& ck = cfg.federation.xmpp->certificate.cert.empty() ? cfg.tls.certificate
                                                                       : cfg.federation.xmpp->certificate;
        net::TlsServerOptions so;
        so.default_cert = {ck.cert, ck.key, {}};
        so.min_version = o.min_version;
        so.ciphers = cfg.tls.ciphers;
        so.ciphersuites = cfg.tls.ciphersuites;
        auto s2s = net::TlsServerContext::create(so);
        if (!s2s) return make_error("tls (federation.xmpp listener): " + s2s.error().message);
        gen->s2s_inside_tls = *s2s;
    }
    if (cfg.credentials.max_failures > 0) {
        http::RateLimitOptions rl;
        rl.burst = cfg.credentials.max_failures;
        rl.rate =
            double(cfg.credentials.max_failures) * 1000.0 / double(cfg.credentials.failure_period.count());
        gen->auth_failures = app::carry_limiter(gen_ ? gen_->auth_failures : nullptr, rl);
    }
    if (cfg.credentials.max_authorizations > 0) {
        // A bucket of max_authorizations refilled over the period: at most that many sign-ins in any period
        // after a quiet one, and a steady max/period afterwards.
        http::RateLimitOptions rl;
        rl.burst = cfg.credentials.max_authorizations;
        rl.rate = double(cfg.credentials.max_authorizations) * 1000.0 /
                  double(cfg.credentials.authorization_period.count());
        gen->authorizations = app::carry_limiter(gen_ ? gen_->authorizations : nullptr, rl);
    }
    if (auto r = app::open_access_log(cfg.log.access, "edge-c"); !r)
        return make_error("log.access: " + r.error().message);
    else
        gen->access_log = *r;
    if (gen_ && gen_->edge_tokens && gen_->cfg.credentials.token_key_file == cfg.credentials.token_key_file) {
        gen->edge_tokens = gen_->edge_tokens; // keeps the stamps of passwords seen
    } else {
        auto sealer = cfg.credentials.token_key_file.empty()
                          ? EdgeTokenSealer::ephemeral()
                          : EdgeTokenSealer::from_key_file(cfg.credentials.token_key_file);
        if (!sealer) return make_error(sealer.error().message);
        gen->edge_tokens = std::move(*sealer);
    }
    if (cfg.oauth.enabled) {
        // Fetched keys come from the fetcher (null while the constructor runs: fetched clusters start
        // keyless).
        CombinedKeySource keys(oauth_keys_.get());
        auto v = OAuthValidator::from_config(cfg.oauth, keys);
        if (!v) return make_error(v.error().message);
        gen->oauth = std::move(*v);
    }
    bool any_sso = false;
    for (const auto& d : cfg.domains)
        any_sso = any_sso || d.sso != config::SsoMode::Off;
    if (any_sso) {
        auto sp = SamlServiceProvider::create(cfg.sso, saml_acs_urls(cfg));
        if (!sp) return make_error(sp.error().message);
        gen->saml = std::move(*sp);
    }
    gen->cfg = std::move(cfg);
    return std::shared_ptr<const Generation>(gen);
}

std::string saml_acs_url(std::string_view edge_e_address, std::string_view domain) {
    std::string hp(edge_e_address);
    if (hp.find(':') == std::string::npos) hp += ":8443";
    return fmt::format("https://{}/{}/fedlet", hp, http::encode_domain(domain));
}

std::vector<std::string> saml_acs_urls(const config::EdgeCConfig& cfg, std::string_view deployment) {
    std::vector<std::string> out;
    for (const auto& d : cfg.domains) {
        if (d.sso == config::SsoMode::Off || (!deployment.empty() && d.deployment != deployment)) continue;
        for (const auto& a : cfg.sso.edge_e_addresses)
            out.push_back(saml_acs_url(a, d.name));
    }
    return out;
}

const config::DomainConfig* find_domain_config(const config::EdgeCConfig& cfg, std::string_view domain) {
    for (const auto& d : cfg.domains)
        if (d.name == domain) return &d;
    return nullptr;
}

Result<void> EdgeC::create(app::App& app) {
    for (auto& w : app.process().workers())
        workers_.push_back(std::make_unique<CWorker>(*this, *w, gen_));
    auto r = net::Resolver::create(app.main_loop(), resolver_options(gen_->cfg));
    if (!r) return make_error("dns: " + r.error().message);
    resolver_ = std::move(*r);
    http_ = std::make_unique<http::Client>(app.main_loop(), *resolver_, client_options(*gen_));
    oauth_keys_ = std::make_unique<OAuthKeyFetcher>(*http_, &app.metrics());
    oauth_keys_->configure(gen_->cfg.oauth);
    oauth_keys_->on_change([this] { on_oauth_keys_change(); });
    // Here, not in the constructor: its Redis connections need the main loop, which the App makes in run().
    make_cluster_signin();
    return {};
}

void EdgeC::make_cluster_signin() {
    const auto& cfg = gen_->cfg;
    cluster_.config = cfg.cluster;
    if (!cfg.cluster.redis) return;
    auto& m = app_.metrics();
    cluster_.commands_failed = &m.counter("edgepair_cluster_redis_commands_failed_total",
                                          "Redis commands that got an error or no reply (cluster state)");
    static const char* const kWhat[] = {"assertion", "request", "stamp", "tally"};
    for (size_t i = 0; i < 4; ++i)
        cluster_.fallbacks[i] =
            &m.counter("edgepair_cluster_redis_fallbacks_total",
                       "Sign-in decisions made from this peer's memory alone because Redis "
                       "was unreachable or slow: assertion (replay and InResponseTo "
                       "check), request (AuthnRequest not shared), stamp (password "
                       "change not shared), tally (a per-user limiter take not shared)",
                       {{"what", kWhat[i]}});
    m.gauge_fn("edgepair_cluster_redis_up", "1 while this peer reaches the cluster's Redis, else 0",
               [this] { return signin_ && signin_->up() ? 1.0 : 0.0; });
    ClusterSignin::Options o;
    {
        auto id = cluster_id();
        o.redis = std::move(id.redis);
        o.prefix = std::move(id.prefix);
        o.origin = std::move(id.origin);
    }
    ClusterSignin::Hooks h;
    h.stamp = [this](const signin_wire::Stamp& s) {
        const uint64_t cleanup = uint64_t(gen_->cfg.credentials.cleanup_interval.count());
        app_.process().broadcast([this, s, cleanup](core::Worker& w) {
            workers_[w.index()]->learn_credential_stamp(s.deployment, s.user, s.stamp, s.seen_ms, cleanup,
                                                        s.node);
        });
    };
    h.tally = [this](const cluster::TallyEntry& e) {
        // The limiters are the generation's, shared by the workers (locked inside): taken here, on the main
        // loop, with the same monotonic clock the workers read.
        const auto& lim = e.kind == "auth_failures"    ? gen_->auth_failures
                          : e.kind == "authorizations" ? gen_->authorizations
                                                       : nullptr;
        if (!lim) return; // off here, or a kind this version does not know
        const uint64_t now = app_.main_loop().now_ms();
        const uint32_t n = std::min<uint32_t>(e.count, uint32_t(lim->options().burst) + 1);
        for (uint32_t i = 0; i < n; ++i)
            lim->take(e.key, now);
    };
    h.fallback = [this](const char* what) {
        for (size_t i = 0; i < 4; ++i)
            if (std::string_view(what) == kWhat[i]) cluster_.fallbacks[i]->inc();
    };
    h.command_failed = [this] { cluster_.commands_failed->inc(); };
    h.state = [this](bool up, const std::string& why) {
        if (up) {
            app_.alarms().clear("cluster.redis");
            return;
        }
        app_.alarms().raise(
            "cluster.redis", obs::Severity::Major,
            fmt::format("Redis {} of cluster {} unreachable ({}): sign-in state is not shared "
                        "with the other edge-c peers until it returns (each peer judges "
                        "replays, AuthnRequests and password changes by its own memory)",
                        signin_->redis_address(), cluster_.config.name, why));
    };
    signin_ = std::make_unique<ClusterSignin>(app_.main_loop(), saml_cache_, std::move(o), std::move(h));
    signin_->set_keys(signin_wire::stamp_key_id(*gen_->edge_tokens), gen_->edge_tokens->cluster_doc_key());
}

// The name from the running config; Redis as at start (the connections were made with it).
std::string EdgeC::cluster_status() const {
    const auto& name = gen_->cfg.cluster.name;
    if (!signin_) return fmt::format("{{\"name\":{},\"redis\":null}}", admin::json_str(name));
    return fmt::format("{{\"name\":{},\"redis\":{{\"address\":{},\"up\":{},\"error\":{},"
                       "\"commands_failed\":{},\"pending\":{}}}}}",
                       admin::json_str(name), admin::json_str(signin_->redis_address()),
                       signin_->up() ? "true" : "false", admin::json_str(signin_->last_error()),
                       cluster_.commands_failed->value(), signin_->pending());
}

void EdgeC::start() {
    if (signin_) signin_->start();
    start_discovery();
    oauth_keys_->refresh(); // keys are fetched when discovery runs
    start_allow_list_admin();
    // seeds/002 "Exporting the SAML Metadata from the Expressway-C": this peer's SP metadata, naming the
    // edge-e peers' consumer URLs of one deployment's SSO domains (?deployment=, default "default").
    app_.admin().route("/sso/metadata", [this](const admin::Request& r) {
        if (r.method != "GET" && r.method != "HEAD") return admin::text(405, "use GET\n");
        if (!gen_->saml) return admin::text(404, "single sign-on is off for every domain\n");
        auto deps = http::query_values(r.query, "deployment");
        std::string dep = deps.empty() ? gen_->cfg.deployments.front() : deps.front();
        if (std::find(gen_->cfg.deployments.begin(), gen_->cfg.deployments.end(), dep) ==
            gen_->cfg.deployments.end())
            return admin::text(404, "unknown deployment\n");
        auto acs = saml_acs_urls(gen_->cfg, dep);
        if (acs.empty()) return admin::text(404, "no domain of this deployment has single sign-on\n");
        admin::Response resp;
        resp.content_type = "application/samlmetadata+xml";
        resp.body = gen_->saml->metadata(acs);
        return resp;
    });
    publish_snapshot();
    start_links();
}

link::LinkDialer::Config EdgeC::dialer_config(size_t peer) {
    auto& cfg = gen_->cfg;
    link::LinkDialer::Config d;
    const auto& peer_cfg = cfg.link.peers[peer];
    if (peer_cfg.kind == config::Address::Kind::Name) {
        d.host = peer_cfg.host; // CWorker::add_dialer gives the dialer its worker's resolver
        d.port = peer_cfg.port;
    } else if (auto a = net::numeric_addr(peer_cfg.host, peer_cfg.port)) {
        d.address = *a;
    }
    d.peer_name = peer_cfg.host;
    d.tls = gen_->link_tls;
    d.link.role = link::Role::Acceptor;
    d.link.node_name = cfg.node_name;
    d.link.username = cfg.link.username;
    d.link.password = cfg.link.password;
    std::vector<std::string> domains;
    for (const auto& dom : cfg.domains)
        domains.push_back(dom.name);
    d.link.announce =
        link::to_headers(link::make_peer_config(cfg.cluster.name, std::move(domains), cfg.deployments));
    d.link.ping_interval_ms = uint64_t(cfg.link.ping_interval.count());
    d.link.ping_timeout_ms = uint64_t(cfg.link.ping_timeout.count());
    d.link.max_concurrent_streams = uint32_t(cfg.link.max_streams);
    d.backoff_min_ms = uint64_t(cfg.link.reconnect_min.count());
    d.backoff_max_ms = uint64_t(cfg.link.reconnect_max.count());
    return d;
}

void EdgeC::start_links() {
    // Names are looked up by each dialer on its worker's resolver before every dial (LinkDialer), never
    // here: a peer whose name does not resolve yet is dialled again like one that does not answer.
    for (size_t p = 0; p < gen_->cfg.link.peers.size(); ++p) {
        dialers_per_peer_.push_back(0);
        on_peer_hello(p, 1);
    }
}

void EdgeC::on_peer_hello(size_t peer, unsigned workers) {
    app_.main_loop().post([this, peer, workers] {
        if (app_.draining() || peer >= dialers_per_peer_.size()) return;
        unsigned want = std::min(workers, 16u); // an edge-e with more workers still gets a bounded number
        while (dialers_per_peer_[peer] < want) {
            unsigned k = dialers_per_peer_[peer]++;
            auto* w = workers_[(peer + k) % workers_.size()].get();
            auto cfg = dialer_config(peer);
            w->worker().loop().post(
                [w, peer, cfg = std::move(cfg)]() mutable { w->add_dialer(peer, std::move(cfg)); });
        }
    });
}

mra::SnapshotInput EdgeC::current_input(const std::vector<mra::AllowRule>& imported) const {
    auto in = snapshot_input(gen_->cfg, nodes_);
    in.editable_rules.insert(in.editable_rules.end(), imported.begin(), imported.end());
    return in;
}

void EdgeC::start_allow_list_admin() {
    const auto& path = gen_->cfg.allow_list.rules_file;
    if (!path.empty()) {
        // The snapshot does not exist yet; its deployments are the configured ones (the default among them).
        mra::CsvContext ctx;
        ctx.deployments = gen_->cfg.deployments;
        auto loaded = load_imported_rules(path, ctx);
        if (loaded) {
            imported_rules_ = std::move(*loaded);
            if (!imported_rules_.empty())
                EP_INFO("allowlist", "{} imported allow-list rules from {}", imported_rules_.size(), path);
        } else {
            // Kept on disk untouched (the next import replaces it); serving goes on with the YAML rules.
            EP_ERROR("allowlist", "imported rules not loaded: {}", loaded.error().message);
        }
        // The file's age stands for the import's: a peer with a newer import wins over it at the first sync.
        std::error_code ec;
        auto mtime = std::filesystem::last_write_time(path, ec);
        if (!ec && loaded && !imported_rules_.empty())
            imported_version_ms_ =
                uint64_t(std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                                                  .count()));
    }
    AllowListAdmin hooks;
    hooks.snapshot = [this] { return snapshot_; };
    hooks.imported = [this]() -> const std::vector<mra::AllowRule>& { return imported_rules_; };
    hooks.validate = [this](const std::vector<mra::AllowRule>& rules) -> Result<void> {
        auto snap = mra::build_snapshot(current_input(rules));
        if (!snap) return snap.error();
        return {};
    };
    hooks.commit = [this](std::vector<mra::AllowRule> rules) -> Result<void> {
        if (app_.draining()) return make_error("draining");
        const auto& file = gen_->cfg.allow_list.rules_file;
        if (file.empty())
            return make_error(
                "neither allow_list.rules_file nor discovery.state_file is configured: imported "
                "rules would not survive a restart");
        if (auto w = save_imported_rules(file, rules); !w) return w;
        imported_rules_ = std::move(rules);
        imported_version_ms_ = wall_clock_ms();
        imported_origin_ = origin_;
        publish_snapshot();
        if (rules_share_) rules_share_->share();
        return {};
    };
    install_allow_list_routes(app_.admin(), std::move(hooks));
    make_cluster_rules();
}

cluster::ClusterIdentity EdgeC::cluster_id() {
    auto id = cluster::cluster_identity(gen_->cfg.cluster, gen_->cfg.node_name);
    // One name for this process on every channel it shares, drawn once.
    if (origin_.empty())
        origin_ = id.origin;
    else
        id.origin = origin_;
    return id;
}

std::unique_ptr<cluster::SharedDoc>
EdgeC::make_shared_doc(const char* key, const char* channel, const char* what,
                       std::function<cluster::doc_wire::Doc()> local,
                       std::function<void(const cluster::doc_wire::Doc&)> adopt) {
    auto id = cluster_id();
    cluster::SharedDoc::Options o{std::move(id.redis),
                                  std::move(id.prefix),
                                  std::move(id.origin),
                                  key,
                                  channel,
                                  what,
                                  gen_->edge_tokens->cluster_doc_key()};
    cluster::SharedDoc::Hooks h;
    h.local = std::move(local);
    h.adopt = std::move(adopt);
    h.command_failed = [this] {
        if (cluster_.commands_failed) cluster_.commands_failed->inc();
    };
    auto doc = std::make_unique<cluster::SharedDoc>(app_.main_loop(), std::move(o), std::move(h));
    doc->start();
    return doc;
}

void EdgeC::make_cluster_rules() {
    if (!gen_->cfg.cluster.redis) return;
    if (imported_origin_.empty()) imported_origin_ = cluster_id().origin; // rules read from the file at start
    rules_share_ = make_shared_doc(
        "allowlist:imported", "allowlist", "imported allow-list rules",
        [this] {
            cluster::doc_wire::Doc r;
            r.version_ms = imported_version_ms_;
            r.origin = imported_origin_;
            if (auto csv = imported_rules_csv(imported_rules_)) r.text = std::move(*csv);
            return r;
        },
        [this](const cluster::doc_wire::Doc& r) { adopt_peer_rules(r); });
}

void EdgeC::adopt_peer_rules(const cluster::doc_wire::Doc& r) {
    if (app_.draining()) return;
    // Checked as an upload here would be: against this peer's deployments, then as a whole snapshot.
    mra::CsvContext ctx;
    if (snapshot_)
        ctx = mra::csv_context_of(*snapshot_);
    else
        ctx.deployments = gen_->cfg.deployments;
    auto rules = mra::import_rules_csv(r.text, ctx);
    if (!rules) {
        EP_ERROR("allowlist", "imported allow-list rules of peer {} not adopted: {}", r.origin,
                 rules.error().message);
        return;
    }
    if (auto snap = mra::build_snapshot(current_input(*rules)); !snap) {
        EP_ERROR("allowlist", "imported allow-list rules of peer {} not adopted: {}", r.origin,
                 snap.error().message);
        return;
    }
    const auto& file = gen_->cfg.allow_list.rules_file;
    if (!file.empty()) {
        if (auto w = save_imported_rules(file, *rules); !w) {
            EP_ERROR("allowlist", "imported allow-list rules of peer {} not adopted: {}", r.origin,
                     w.error().message);
            return;
        }
    } else {
        EP_WARN("allowlist",
                "imported allow-list rules of peer {} held in memory only (no allow_list.rules_file)",
                r.origin);
    }
    imported_rules_ = std::move(*rules);
    imported_version_ms_ = r.version_ms;
    imported_origin_ = r.origin;
    EP_INFO("allowlist", "adopted {} imported allow-list rules from peer {}", imported_rules_.size(),
            r.origin);
    publish_snapshot();
}

void EdgeC::publish_snapshot() {
    auto in = current_input(imported_rules_);
    auto push = std::make_shared<const std::string>(mra::snapshot_control(in));
    auto snap = mra::build_snapshot(std::move(in));
    if (!snap) {
        snapshot_error_ = snap.error().message;
        EP_ERROR("edge-c", "MRA configuration does not validate: {}", snapshot_error_);
        return;
    }
    snapshot_error_.clear();
    snapshot_ = *snap;
    for (auto& w : (*snap)->warnings)
        EP_WARN("edge-c", "{}", w);
    auto sp = snapshot_;
    app_.process().broadcast([this, sp, push](core::Worker& w) { workers_[w.index()]->apply(sp, push); });
}

Result<void> EdgeC::prepare(const std::string& path) {
    return app::prepare_generation(
        path, config::load_edge_c_config, [this](auto cfg) { return build(std::move(cfg)); }, pending_);
}

void EdgeC::commit() {
    const bool new_key = !gen_ || gen_->edge_tokens != pending_->edge_tokens;
    gen_ = std::move(pending_);
    if (gen_->cfg.cluster.redis != cluster_.config.redis)
        EP_WARN("edge-c",
                "the cluster section changed: it applies at the next restart (Redis {} kept until then)",
                signin_ ? signin_->redis_address() : std::string("none"));
    if (signin_ && new_key)
        signin_->set_keys(signin_wire::stamp_key_id(*gen_->edge_tokens),
                          gen_->edge_tokens->cluster_doc_key());
    http_->set_tls(gen_->upstream_verify, gen_->upstream_noverify);
    auto gen = gen_;
    app_.process().broadcast([this, gen](core::Worker& w) { workers_[w.index()]->apply_generation(gen); });
    reconfigure_discovery();
    oauth_keys_->configure(gen_->cfg.oauth);
    oauth_keys_->refresh();
    publish_snapshot();
}

void EdgeC::on_oauth_keys_change() {
    if (app_.draining() || !gen_->cfg.oauth.enabled) return;
    CombinedKeySource keys(oauth_keys_.get());
    auto v = OAuthValidator::from_config(gen_->cfg.oauth, keys);
    if (!v) {
        // A keys_file that broke since the last reload: the reload that notices it reports it too.
        EP_ERROR("oauth", "fetched keys not applied: {}", v.error().message);
        return;
    }
    auto g = std::make_shared<Generation>(*gen_);
    g->oauth = std::move(*v);
    gen_ = g;
    app_.process().broadcast([this, g](core::Worker& w) { workers_[w.index()]->apply_oauth_keys(g); });
}

void EdgeC::drain_begin() {
    EP_INFO("edge-c", "draining: closing links");
    app_.process().broadcast([this](core::Worker& w) { workers_[w.index()]->stop_dialers(); });
}

std::string EdgeC::ready_reason() {
    if (!snapshot_) return "MRA configuration invalid: " + snapshot_error_;
    int up = 0;
    for (auto& w : workers_)
        up += w->links_up();
    if (up == 0) return "no traversal link to edge-e";
    if (discovery_) return discovery_->ready_reason();
    return {};
}

std::string EdgeC::status_fields() {
    auto& cfg = gen_->cfg;
    std::string peers;
    for (auto& p : cfg.link.peers)
        peers += (peers.empty() ? "" : ",") + admin::json_str(p.str());
    std::string links = app::links_json(workers_);
    std::string deployments;
    for (auto& d : cfg.deployments)
        deployments += (deployments.empty() ? "" : ",") + admin::json_str(d);
    std::string domains;
    for (auto& d : cfg.domains)
        domains += (domains.empty() ? "" : ",") + fmt::format("{{\"name\":{},\"deployment\":{}}}",
                                                              admin::json_str(d.name),
                                                              admin::json_str(d.deployment));
    // Federation (issue #19): what edge-c refused and how its connections with IM&P went, as on /metrics.
    std::string fed;
    auto fed_part = [&](const char* proto) {
        fed += fmt::format(
            "{}\"{}\":{{\"refusals\":{},\"imp\":{}}}", fed.empty() ? "" : ",", proto,
            admin::counters_json(app_.metrics(), fmt::format("edgepair_{}_federation_refusals_total", proto)),
            admin::counters_json(app_.metrics(), fmt::format("edgepair_{}_federation_imp_total", proto)));
    };
    if (cfg.federation.xmpp) fed_part("xmpp");
    if (cfg.federation.sip) fed_part("sip");
    return fmt::format(
        ",\"cluster\":{},\"link\":{{\"peers\":[{}],\"links\":[{}]}},\"deployments\":[{}],"
        "\"domains\":[{}],\"allow_list\":{},\"discovery\":{},\"oauth_keys\":{},\"federation\":{}",
        cluster_status(), peers, links, deployments, domains, allow_list_json(),
        discovery_ ? discovery_->status_json(snapshot_.get()) : std::string("null"),
        oauth_keys_ ? oauth_keys_->status_json() : std::string("[]"),
        fed.empty() ? std::string("null") : "{" + fed + "}");
}

// ---- discovery wiring (issue #4) ----

void EdgeC::start_discovery() {
    discovery_ =
        std::make_unique<Discovery>(app_.main_loop(), *http_, *resolver_, gen_->cfg.discovery.state_file);
    discovery_->configure(gen_->cfg.discovery);
    // The last known nodes serve until the publishers answer (or if they never do).
    if (auto st = discovery_->load_state(); !st)
        EP_ERROR("discovery", "ignoring the state file: {}", st.error().message);
    nodes_ = discovery_->nodes();
    discovery_->on_change([this] { on_discovery_change(); });
    const auto& primary = gen_->cfg.cluster.discovery_primary;
    discovery_follower_ = !primary.empty() && primary != gen_->cfg.node_name;
    // Answers 202 at once: discovery takes seconds (TLS test, several AXL requests per publisher) and the
    // admin endpoint is synchronous; /status shows each publisher's outcome when its run ends.
    app_.admin().route("/discovery/refresh", [this](const admin::Request& r) {
        if (r.method != "POST") return admin::text(405, "use POST\n");
        if (app_.draining()) return admin::text(503, "draining\n");
        oauth_keys_->refresh();
        if (discovery_follower_)
            return admin::text(409, "discovery runs on the cluster's primary peer " +
                                        gen_->cfg.cluster.discovery_primary +
                                        " (cluster.discovery_primary): refresh it there\n");
        return admin::json(202, discovery_->refresh() + "\n");
    });
    make_cluster_discovery();
    if (discovery_follower_)
        EP_INFO("discovery",
                "following the discovery of primary peer {} through Redis (cluster.discovery_primary)",
                primary);
    else
        discovery_->refresh();
}

void EdgeC::make_cluster_discovery() {
    if (!gen_->cfg.cluster.redis) return;
    discovery_share_ = make_shared_doc(
        "discovery:state", "discovery", "discovery result",
        [this] {
            return cluster::doc_wire::Doc{discovery_version_ms_,
                                          discovery_origin_,
                                          discovery_version_ms_ ? discovery_->state_json() : std::string(),
                                          {}};
        },
        [this](const cluster::doc_wire::Doc& d) { adopt_peer_discovery(d); });
}

void EdgeC::adopt_peer_discovery(const cluster::doc_wire::Doc& d) {
    if (app_.draining()) return;
    auto taken = discovery_->adopt_peer_state(d.text, d.origin);
    if (!taken) {
        EP_WARN("discovery", "discovery result of peer {} ignored: {}", d.origin, taken.error().message);
        return;
    }
    // As new as that version now, whatever was taken: the next (re)connect must not push an older one back.
    discovery_version_ms_ = d.version_ms;
    discovery_origin_ = d.origin;
    if (*taken == 0) return;
    EP_INFO("discovery", "took the nodes of {} publisher(s) from peer {}", *taken, d.origin);
    nodes_ = discovery_->nodes();
    publish_snapshot();
}

void EdgeC::reconfigure_discovery() {
    // "Discovery runs when a publisher is added": new (or re-credentialed) publishers only.
    auto added = discovery_->configure(gen_->cfg.discovery);
    nodes_ = discovery_->nodes();
    if (!added.empty() && !discovery_follower_) discovery_->refresh(added);
}

void EdgeC::on_discovery_change() {
    if (app_.draining()) return;
    nodes_ = discovery_->nodes();
    publish_snapshot();
    // A run of this peer ended: the other peers take what it found (per publisher, when newer than theirs).
    if (discovery_share_) {
        discovery_version_ms_ = wall_clock_ms();
        discovery_origin_ = origin_;
        discovery_share_->share();
    }
}

// ---- alarms (issue #20) ----

// A link that comes back within this long (a reconnect after edge-e restarted a worker) is not an alarm.
constexpr uint64_t kLinkAlarmDelayMs = 3000;

void EdgeC::check_alarms() {
    auto& alarms = app_.alarms();
    unsigned want = 0;
    for (auto n : dialers_per_peer_)
        want += n;
    int up = 0;
    for (auto& w : workers_)
        up += w->links_up();
    const uint64_t now = app_.main_loop().now_ms();
    if (up >= int(want)) {
        link_down_since_ms_ = 0;
        alarms.clear("link.down");
    } else {
        if (link_down_since_ms_ == 0) link_down_since_ms_ = now;
        if (now - link_down_since_ms_ >= kLinkAlarmDelayMs) {
            std::string peers;
            for (auto& p : gen_->cfg.link.peers)
                peers += (peers.empty() ? "" : ", ") + p.str();
            alarms.raise(
                "link.down", up == 0 ? obs::Severity::Critical : obs::Severity::Major,
                up == 0 ? fmt::format("no traversal link to edge-e ({}) is up: clients outside cannot "
                                      "reach any service",
                                      peers)
                        : fmt::format("{} of {} traversal links to edge-e ({}) are up", up, want, peers));
        }
    }

    // Discovery: one alarm per publisher whose last run failed (its last known nodes keep serving).
    std::vector<std::string> failing, unreachable;
    if (discovery_)
        for (auto& p : discovery_->publishers()) {
            if (p.state != PublisherState::State::Error) continue;
            std::string id = fmt::format("discovery.failing:{}:{}", p.cfg.address, p.cfg.port);
            alarms.raise(id, obs::Severity::Major,
                         fmt::format("{} publisher {}:{}: {}{}", section_name(p.cfg.kind), p.cfg.address,
                                     p.cfg.port, p.error,
                                     p.nodes.empty() ? std::string(" (no nodes known from it)")
                                                     : fmt::format(" (serving its {} last known nodes)",
                                                                   p.nodes.size())));
            failing.push_back(std::move(id));
            // A publisher is a node too. transport_error() (discovery.cpp) phrases a connection that could
            // not be made, or a name that does not resolve, as "cannot reach ..."; a TLS or AXL failure is
            // not that.
            if (p.error.starts_with("cannot reach ")) {
                std::string node = "node.unreachable:" + p.cfg.address;
                alarms.raise(
                    node, obs::Severity::Major,
                    fmt::format("{} ({} publisher): {}", p.cfg.address, section_name(p.cfg.kind), p.error));
                unreachable.push_back(std::move(node));
            }
        }
    alarms.clear_family("discovery.failing:", failing);
    alarms.clear_family("node.unreachable:", unreachable);

    // OAuth key fetches: one alarm per cluster whose last fetch failed (its last good keys keep serving).
    std::vector<std::string> key_failing;
    if (oauth_keys_)
        for (auto& c : oauth_keys_->clusters()) {
            if (c.error.empty()) continue;
            std::string id = "oauth.keys:" + c.cfg.name;
            alarms.raise(id, obs::Severity::Major,
                         fmt::format("OAuth cluster {}: {} ({})", c.cfg.name, c.error,
                                     c.jwks.empty() ? "no keys: its tokens are refused"
                                                    : "serving the last good keys"));
            key_failing.push_back(std::move(id));
        }
    alarms.clear_family("oauth.keys:", key_failing);

    if (!snapshot_)
        alarms.raise("mra.config_invalid", obs::Severity::Critical,
                     "the MRA configuration does not validate: " + snapshot_error_);
    else
        alarms.clear("mra.config_invalid");
}

std::vector<app::CertFile> EdgeC::cert_files() const {
    auto& tls = gen_->cfg.tls;
    return {{"tls.certificate.cert", tls.certificate.cert}, {"tls.trusted_cas", tls.trusted_cas}};
}

// The whole allow list as served: automatic rules (from discovery), configured ones (YAML) and imported ones.
std::string EdgeC::allow_list_json() const {
    if (!snapshot_) return "[]";
    auto imported = [this](const mra::AllowRule& r) {
        return std::any_of(imported_rules_.begin(), imported_rules_.end(), [&](const mra::AllowRule& i) {
            return mra::to_string(i.url) == mra::to_string(r.url) && i.deployment == r.deployment &&
                   i.match == r.match && i.description == r.description;
        });
    };
    std::string out = "[";
    for (auto& r : snapshot_->allow_list.rules()) {
        if (out.size() > 1) out += ',';
        const char* origin = r.origin == mra::RuleOrigin::Automatic ? "automatic"
                             : imported(r)                          ? "imported"
                                                                    : "configured";
        out += fmt::format("{{\"origin\":\"{}\",\"url\":{},\"methods\":{},\"match\":{},\"deployment\":{},"
                           "\"description\":{}}}",
                           origin, admin::json_str(mra::to_string(r.url)),
                           admin::json_str(snapshot_->allow_list.effective_methods(r).to_string()),
                           admin::json_str(mra::to_string(r.match)), admin::json_str(r.deployment),
                           admin::json_str(r.description));
    }
    return out + "]";
}

} // namespace edgepair::edge_c
