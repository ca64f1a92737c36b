#include "edge-e/sip_federation.h"

#include <algorithm>
#include <deque>
#include <optional>

#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/link/link_conn.h"
#include "common/net/x509_check.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/sip/fed_route.h"
#include "common/sip/framer.h"
#include "common/sip/link_codec.h"
#include "common/sip/message.h"
#include "common/sip/proxy.h"

namespace edgepair::edge_e {

namespace {

constexpr const char* kLog = "sip-fed";
constexpr uint16_t kDefaultSipsPort = 5061; // RFC 3263 4.2: no SRV record, TLS
constexpr size_t kMaxLabelledDomains = 256; // per worker; later domains are counted as "other"
constexpr size_t kMaxFromLink = 2 * 1024 * 1024;
constexpr uint64_t kFailedLingerMs = 2000; // a failed outbound leg answers IM&P this long, then ends
constexpr size_t kMaxHeld = 64 * 1024;     // IM&P's requests before the remote connection is up
constexpr std::string_view kRefusals[] = {"register",      "denied",    "not_allowed", "bad_domain",
                                          "not_certified", "not_local", "no_link",     "remote_unreachable",
                                          "invalid"};

void set_port(net::SockAddr& a, uint16_t port) {
    if (a.family() == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
    else
        reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), ::tolower);
    return out;
}

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 120))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

// edge-e's own hop for federated Record-Route entries: TLS, as remote domains reach it.
std::optional<sip::FedHop> self_hop(const config::EdgeESipFederationConfig& c) {
    auto a = config::fed_self_route(c.record_route, c.listen);
    if (!a) return std::nullopt;
    return sip::FedHop{a->host, a->port, "tls"};
}

// One SIP flow between a remote domain's server (TLS) and one link stream. The subclasses decide how the
// remote connection comes to be; both hold the remote's requests to the same policy.
class FedFlow : public ClientSession, public link::StreamHandler {
  public:
    explicit FedFlow(SipFederation& fed)
        : fed_(fed), ws_(fed.ws()), gen_(ws_.gen()), framer_(limits()), from_link_(kMaxFromLink) {}
    ~FedFlow() override {
        *alive_ = false;
        detach_stream();
    }

    void on_headers(link::LinkStream&, const link::Headers& h) override {
        auto status = link::header_value(h, ":status");
        if (status != "200") EP_INFO(kLog, "{}: edge-c refused the federation stream: {}", peer_, status);
    }
    void on_data(link::LinkStream& s, const char* data, size_t len) override {
        s.consumed(len);
        if (closing_) return;
        bool framed = from_link_.feed_each(std::string_view(data, len), [this](std::string_view msg) {
            from_edge_c(msg);
            return !closing_;
        });
        if (framed) return;
        EP_WARN(kLog, "{}: edge-c sent a message without a valid boundary", peer_);
        close_remote();
    }
    void on_end(link::LinkStream&) override { close_remote(); }
    void on_writable(link::LinkStream&) override {
        if (paused_ && conn_) {
            paused_ = false;
            conn_->resume_reading();
        }
    }
    void on_close(link::LinkStream&, const core::Failure& failure) override {
        stream_ = nullptr;
        if (failure) EP_INFO(kLog, "{}: federation stream closed: {}", peer_, failure.str());
        close_remote();
    }

  protected:
    sip::FramerLimits limits() const {
        sip::FramerLimits l;
        l.max_message_size = size_t(gen_->cfg.federation.sip->max_message_size);
        l.max_headers = 128;
        l.recover = true;
        return l;
    }

    // A message from edge-c (IM&P's side) for the remote.
    virtual void from_edge_c(std::string_view msg) {
        if (conn_) conn_->write(routed(msg));
    }

    // A request crossing edge-e either way loses the Route entries naming edge-e, and a dialog-forming one
    // gets edge-e's Record-Route (common/sip/fed_route.h): the remote's in-dialog requests then come to
    // federation.sip.listen, IM&P's reach edge-e through edge-c. Responses and unparseable bytes pass as
    // they are (a response's Record-Route is the request's, echoed).
    std::string routed(std::string_view bytes, bool outward = true) {
        auto m = sip::Message::parse(bytes);
        if (!m || !m->is_request()) return std::string(bytes);
        if (outward) fed_.count_request("out", m->method());
        auto hop = self_hop(*gen_->cfg.federation.sip);
        if (!hop) return std::string(bytes);
        auto out = sip::fed_route_through(bytes, *m, *hop);
        return out ? std::move(*out) : std::string(bytes); // the next hop answers the malformed Route
    }
    // Whether the connection's peer may speak for `domain` (federation.sip.verify_client, inbound only).
    virtual bool from_certified(const std::string&) { return true; }
    // A request from the remote that passed the policy.
    virtual void forward(std::string_view bytes, const sip::Message& m, const sip::RoutingInfo& info) = 0;

    void wire(net::Connection& c) {
        c.set_callbacks({[this] { on_remote_ready(); },
                         [this](const char* d, size_t n) { on_remote_data(d, n); },
                         [this](std::string_view why) { on_remote_close(why); }, nullptr});
        c.set_idle_timeout(uint64_t(gen_->cfg.limits.client_idle_timeout.count()));
    }
    virtual void on_remote_ready() {}
    virtual void on_remote_close(std::string_view why) {
        EP_DEBUG(kLog, "{}: closed: {}", peer_, why);
        closing_ = true;
        detach_stream();
        ws_.remove(this);
    }

    void on_remote_data(const char* data, size_t len) {
        if (closing_) return;
        framer_.feed(std::string_view(data, len));
        while (!closing_) {
            auto ev = framer_.next();
            switch (ev.type) {
            case sip::FrameEventType::need_more:
                return;
            case sip::FrameEventType::keepalive_ping:
                conn_->write("\r\n");
                break;
            case sip::FrameEventType::keepalive_pong:
            case sip::FrameEventType::stun:
                break;
            case sip::FrameEventType::message:
                on_remote_message(ev.message);
                break;
            case sip::FrameEventType::error:
                EP_INFO(kLog, "{}: refused message: {} ({})", peer_, sip::metric_label(ev.error->code),
                        ev.error->detail);
                if (ev.error->can_reply)
                    if (auto m = sip::Message::parse_head(ev.error->head); m && m->is_request())
                        reply(*m, sip::reply_status(ev.error->code), ev.error->detail);
                if (ev.error->fatal) return close_remote();
                break;
            }
        }
    }

    void on_remote_message(std::string_view bytes) {
        auto m = sip::Message::parse(bytes);
        if (!m) {
            EP_INFO(kLog, "{}: unparseable message: {}", peer_, m.error().message);
            return close_remote();
        }
        sip::RoutingInfo info;
        auto v = sip::validate(*m, {}, &info);
        if (!v.ok()) {
            fed_.count_refusal("invalid");
            if (m->is_request()) reply(*m, v.status, v.detail);
            return;
        }
        if (!m->is_request()) return to_link(bytes);
        // The federation policy (seed 001: inbound requests, and SUBSCRIBEs specifically, are held to the
        // permitted external domains). Every request is checked on its own: one connection may carry
        // several domains' traffic.
        if (m->method() == "REGISTER")
            return refuse(*m, 403, "Registration is not offered to federated domains", "register");
        std::string from = lower(info.from.uri.host);
        if (auto why = fed_.policy().refusal(from); !why.empty())
            return refuse(*m, 403, fmt::format("Federation with {} is not permitted", printable(from)), why);
        if (!from_certified(from))
            return refuse(*m, 403, fmt::format("The TLS certificate does not name {}", printable(from)),
                          "not_certified");
        // Outside a dialog the request must address one of our domains; inside one it follows the route set
        // IM&P gave (edge-c checks that it names an IM&P node).
        if (!info.to.tag() || info.to.tag()->empty()) {
            auto ruri = sip::Uri::parse(m->request_uri());
            if (!ruri || !fed_.local_domain(ruri->host))
                return refuse(*m, 404, "Not a domain of this deployment", "not_local");
        }
        auto out = routed(bytes, false);
        fed_.count_request("in", m->method());
        forward(out, *m, info);
    }

    void refuse(const sip::Message& req, int status, std::string reason, std::string_view metric) {
        fed_.count_refusal(metric);
        EP_INFO(kLog, "{}: {} refused ({}): {}", peer_, req.method(), metric, reason);
        reply(req, status, reason);
    }

    void reply(const sip::Message& req, int status, std::string_view detail) {
        if (req.method() == "ACK" || !conn_) return;
        sip::Message in = req;
        sip::fill_received_rport(in, conn_->peer().ip(), conn_->peer().port());
        conn_->write(sip::make_response(in, status, printable(detail)).serialize());
    }

    void to_link(std::string_view bytes) {
        if (!stream_) return;
        if (!stream_->write(sip::link_encode(bytes)) && conn_) {
            paused_ = true;
            conn_->pause_reading();
        }
    }

    void detach_stream() {
        if (!stream_) return;
        stream_->set_handler(nullptr);
        stream_->end();
        stream_ = nullptr;
    }

    void close_remote() {
        if (closing_) return;
        closing_ = true;
        detach_stream();
        if (conn_)
            conn_->close();
        else
            ws_.remove(this);
    }

    SipFederation& fed_;
    WorkerState& ws_;
    std::shared_ptr<const Generation> gen_;
    std::unique_ptr<net::Connection> conn_;
    sip::Framer framer_;
    sip::LinkDecoder from_link_;
    link::LinkStream* stream_ = nullptr;
    std::string peer_;
    bool closing_ = false;
    bool paused_ = false;
    obs::GaugeHold open_; // taken when the flow is relayed (edgepair_sip_federation_open)
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// ---- inbound: a remote domain's server -> edge-e -> link -> edge-c -> the IM&P routing node -------------

class SipFedIn final : public FedFlow {
  public:
    SipFedIn(SipFederation& fed, int fd) : FedFlow(fed) {
        conn_ = std::make_unique<net::Connection>(ws_.worker().loop(), fd, gen_->sipfed_tls->new_ssl(), true);
        wire(*conn_);
        peer_ = conn_->peer().str();
        conn_->start();
    }

  private:
    // RFC 5922 7.3 / 5923: with mutual TLS the peer's certificate, not the From it writes, says which domains
    // it serves. The SANs are read once per connection (the TLS context already checked the chain).
    bool from_certified(const std::string& domain) override {
        if (!gen_->cfg.federation.sip->verify_client) return true;
        if (!peer_cert_) {
            X509* cert = conn_ && conn_->ssl() ? SSL_get1_peer_certificate(conn_->ssl()) : nullptr;
            peer_cert_ = cert ? net::cert_info(cert) : net::CertInfo{};
            if (cert) X509_free(cert);
        }
        return net::san_matches(*peer_cert_, domain);
    }

    void forward(std::string_view bytes, const sip::Message&, const sip::RoutingInfo& info) override {
        if (!stream_) {
            link::LinkConn* link = ws_.pick_link();
            std::string domain = lower(info.from.uri.host);
            if (link)
                stream_ =
                    link->open_stream(link::StreamKind::Sip,
                                      {{std::string(kSipFederationHeader), "in"},
                                       {"x-client-addr", peer_},
                                       {"x-domain", domain},
                                       {std::string(obs::kRequestIdHeader), ws_.next_request_id()},
                                       {std::string(sip::kLinkFormatHeader), std::string(sip::kLinkFormat)}},
                                      this);
            if (!stream_) {
                auto m = sip::Message::parse(bytes);
                if (m) refuse(*m, 503, "Traversal link to edge-c is down", "no_link");
                return;
            }
            open_ = fed_.count_session("in", domain);
            EP_INFO(kLog, "{}: federation flow from {} on link stream {}", peer_, domain, stream_->id());
        }
        to_link(bytes);
    }

    std::optional<net::CertInfo> peer_cert_; // verify_client: the peer certificate's names, read once
};

// ---- outbound: IM&P -> edge-c -> link -> edge-e -> the remote domain's server ---------------------------

class SipFedOut final : public FedFlow {
  public:
    SipFedOut(SipFederation& fed, uint64_t id, std::string to) : FedFlow(fed), id_(id), to_(std::move(to)) {
        peer_ = to_;
    }

    void start(link::LinkConn* link) {
        stream_ =
            link ? link->open_stream(link::StreamKind::Sip,
                                     {{std::string(kSipFederationHeader), "out"},
                                      {"x-sipfed-id", std::to_string(id_)},
                                      {"x-domain", to_},
                                      {std::string(obs::kRequestIdHeader), ws_.next_request_id()},
                                      {std::string(sip::kLinkFormatHeader), std::string(sip::kLinkFormat)}},
                                     this)
                 : nullptr;
        if (!stream_) {
            fed_.count_refusal("no_link");
            return close_remote();
        }
        timer_ = std::make_unique<core::Timer>(ws_.worker().loop(), [this] {
            attempt_failed(fmt::format("{}: not connected within {} ms", cur_,
                                       gen_->cfg.federation.sip->connect_timeout.count()));
        });
        std::weak_ptr<bool> alive = alive_;
        fed_.targets(to_, [this, alive](std::vector<SipFederation::Target> t) {
            if (alive.expired() || closing_) return;
            targets_ = std::move(t);
            if (targets_.empty())
                return fail(404, fmt::format("No SIP server found for {}", to_), "remote_unreachable");
            next_attempt();
        });
    }

  private:
    void from_edge_c(std::string_view msg) override {
        if (up_) return FedFlow::from_edge_c(msg);
        if (failed_status_) return answer(msg);
        held_bytes_ += msg.size();
        if (held_bytes_ > kMaxHeld) return; // IM&P's retransmissions answer it later
        held_.push_back(routed(msg));
    }

    void forward(std::string_view bytes, const sip::Message&, const sip::RoutingInfo&) override {
        to_link(bytes);
    }

    void next_attempt() {
        if (closing_) return;
        if (next_addr_ < addrs_.size()) return connect_to(addrs_[next_addr_++]);
        if (next_target_ >= targets_.size())
            return fail(503, fmt::format("No server of {} answered: {}", to_, last_error_),
                        "remote_unreachable");
        auto t = targets_[next_target_++];
        cur_ = fmt::format("{}:{}", t.host, t.port);
        auto* r = fed_.resolver();
        if (!r) return attempt_failed("no resolver");
        std::weak_ptr<bool> alive = alive_;
        r->resolve(t.host, [this, alive, t](Result<std::vector<net::SockAddr>> res) {
            if (alive.expired() || closing_) return;
            addrs_.clear();
            next_addr_ = 0;
            if (!res || res->empty()) {
                fed_.count_dns_failure("address");
                last_error_ = fmt::format("{} does not resolve", t.host);
                return next_attempt();
            }
            for (auto a : *res) {
                set_port(a, t.port);
                addrs_.push_back(a);
            }
            next_attempt();
        });
    }

    void connect_to(const net::SockAddr& addr) {
        std::string err;
        if (conn_) dead_.push_back(std::move(conn_));
        cur_ = addr.str();
        // RFC 5922 4.1: the certificate must name the SIP domain we are sending to (not the SRV target).
        conn_ = net::Connection::connect(ws_.worker().loop(), addr, gen_->sipfed_out->new_ssl(to_), &err);
        if (!conn_) return attempt_failed(err);
        const uint64_t a = ++attempt_;
        conn_->set_callbacks({[this, a] {
                                  if (a == attempt_) on_remote_ready();
                              },
                              [this, a](const char* d, size_t n) {
                                  if (a == attempt_) on_remote_data(d, n);
                              },
                              [this, a](std::string_view why) {
                                  if (a == attempt_) on_remote_close(why);
                              },
                              nullptr});
        conn_->set_idle_timeout(uint64_t(gen_->cfg.limits.client_idle_timeout.count()));
        timer_->arm(uint64_t(gen_->cfg.federation.sip->connect_timeout.count()));
        conn_->start();
    }

    void attempt_failed(std::string why) {
        if (closing_ || up_ || failed_status_) return;
        last_error_ = why;
        fed_.count_target_failure(to_);
        EP_INFO(kLog, "to {}: target {} failed, trying the next: {}", to_, cur_, why);
        ++attempt_; // the abandoned connection's callbacks are ignored from now on
        if (conn_) {
            conn_->abort("abandoned");
            dead_.push_back(std::move(conn_));
        }
        next_attempt();
    }

    void on_remote_ready() override {
        if (up_) return;
        up_ = true;
        timer_->cancel();
        peer_ = fmt::format("{} ({})", to_, cur_);
        open_ = fed_.count_session("out", to_);
        EP_INFO(kLog, "federation flow to {} on link stream {}", peer_, stream_ ? stream_->id() : 0);
        for (auto& m : held_)
            conn_->write(m);
        held_.clear();
    }

    void on_remote_close(std::string_view why) override {
        if (!up_ && !closing_) return attempt_failed(std::string(why));
        FedFlow::on_remote_close(why);
    }

    void answer(std::string_view bytes) {
        auto m = sip::Message::parse(bytes);
        if (!m || !m->is_request() || m->method() == "ACK") return;
        to_link(sip::make_response(*m, failed_status_, failed_why_).serialize());
    }

    // Nothing reached the remote: every request IM&P sent meanwhile, and those still on their way over the
    // link, get `status` from here; the stream ends after a short linger (the next request dials anew).
    void fail(int status, std::string why, std::string_view metric) {
        if (closing_ || failed_status_) return;
        fed_.count_refusal(metric);
        EP_INFO(kLog, "to {}: {} ({})", to_, why, metric);
        failed_status_ = status;
        failed_why_ = printable(why);
        for (auto& bytes : held_)
            answer(bytes);
        held_.clear();
        if (conn_) {
            ++attempt_;
            conn_->abort("failed");
            dead_.push_back(std::move(conn_));
        }
        if (timer_) timer_->cancel();
        linger_ = std::make_unique<core::Timer>(ws_.worker().loop(), [this] { close_remote(); });
        linger_->arm(kFailedLingerMs);
    }

    uint64_t id_;
    std::string to_;
    bool up_ = false;
    int failed_status_ = 0;
    std::string failed_why_;
    std::deque<std::string> held_;
    size_t held_bytes_ = 0;
    std::vector<SipFederation::Target> targets_;
    size_t next_target_ = 0;
    std::vector<net::SockAddr> addrs_;
    size_t next_addr_ = 0;
    std::string cur_, last_error_;
    uint64_t attempt_ = 0;
    std::unique_ptr<core::Timer> timer_, linger_;
    std::vector<std::unique_ptr<net::Connection>> dead_; // abandoned attempts, freed with the session
};

} // namespace

// ---- SipFederation ---------------------------------------------------------------------------------------

SipFederation::SipFederation(WorkerState& ws)
    : ws_(ws), memo_(ws.app().metrics()), dns_(ws.worker().loop(), kDefaultSipsPort) {
    // The fixed label sets exist from the start, so a dashboard sees zeros rather than nothing.
    for (auto r : kRefusals)
        memo_.get("edgepair_sip_federation_refusals_total",
                  "SIP federation requests and flows refused, by reason", {{"reason", std::string(r)}});
    for (auto s : {"sips", "sip", "address", "domain"})
        memo_.get("edgepair_sip_federation_dns_failures_total",
                  "SIP federation DNS look-ups that found nothing usable, by stage", {{"stage", s}});
}

SipFederation::~SipFederation() {
    *alive_ = false;
}

void SipFederation::apply(const std::shared_ptr<const Generation>& gen) {
    // A reload that removes the section stops new federation flows; the open ones keep their generation.
    enabled_ = gen->cfg.federation.sip.has_value();
    if (!enabled_) return;
    const auto& fs = *gen->cfg.federation.sip;
    policy_.allow = fs.allow;
    policy_.deny = fs.deny;
    local_ = fs.local_domains;
    if (!self_hop(fs))
        EP_WARN(kLog,
                "federation.sip.listen {} is not an address partners can route to and "
                "federation.sip.record_route is unset: federated dialogs are not record-routed, so their "
                "in-dialog requests may bypass the pair",
                fs.listen.str());
    std::vector<std::string> servers;
    for (auto& a : fs.dns_servers)
        servers.push_back(a.str());
    if (auto r = dns_.configure(servers, fs.dns_timeout, fs.dns_cache_ttl); !r)
        EP_ERROR(kLog, "worker {}: federation resolver: {}", ws_.worker().index(), r.error().message);
}

bool SipFederation::local_domain(std::string_view d) const {
    return federation_local_domain(d, local_, ws_.snapshot().get());
}

std::unique_ptr<ClientSession> SipFederation::make_inbound(int fd) {
    if (!enabled_) {
        ::close(fd);
        return nullptr;
    }
    return std::make_unique<SipFedIn>(*this, fd);
}

void SipFederation::on_control(link::LinkConn* link, std::string_view msg) {
    auto j = nlohmann::json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("type", "") != "sipfed_dial") return;
    uint64_t id = 0;
    if (auto it = j.find("id"); it != j.end() && it->is_number_unsigned()) id = it->get<uint64_t>();
    auto failed = [&](int status, std::string_view error) {
        link->send_control(
            nlohmann::json{{"type", "sipfed_failed"}, {"id", id}, {"status", status}, {"error", error}}
                .dump());
    };
    if (!enabled_) return failed(503, "SIP federation not configured on edge-e");
    std::string to = xmpp::normalise_domain(j.value("to", ""));
    if (id == 0 || to.empty()) return failed(400, "bad sipfed_dial");
    if (auto why = policy_.refusal(to); !why.empty()) {
        count_refusal(why);
        EP_INFO(kLog, "to {}: federation refused ({})", to, why);
        return failed(403, fmt::format("Federation with {} is not permitted", to));
    }
    auto s = std::make_unique<SipFedOut>(*this, id, to);
    auto* raw = s.get();
    ws_.add(SessionKind::SipFederation, std::move(s));
    raw->start(link);
}

void SipFederation::targets(const std::string& domain, std::function<void(std::vector<Target>)> cb) {
    dns_.targets(
        domain, {{"_sips._tcp." + domain, "sips"}, {"_sip._tcp." + domain, "sip"}},
        [this](std::string_view stage) { count_dns_failure(stage); }, std::move(cb));
}

void SipFederation::count_refusal(std::string_view reason) {
    memo_
        .get("edgepair_sip_federation_refusals_total", "SIP federation requests and flows refused, by reason",
             {{"reason", std::string(reason)}})
        .inc();
}

std::string SipFederation::domain_label(std::string_view domain) {
    std::string d(domain);
    if (!labelled_.count(d)) {
        if (labelled_.size() >= kMaxLabelledDomains)
            d = "other";
        else
            labelled_.insert(d);
    }
    return d;
}

void SipFederation::count_request(std::string_view direction, std::string_view method) {
    // Bounded label set: a remote may send any token as a method.
    static constexpr std::string_view kMethods[] = {"MESSAGE", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INVITE",
                                                    "ACK",     "BYE",       "CANCEL", "OPTIONS", "INFO",
                                                    "REFER",   "UPDATE",    "PRACK"};
    std::string_view m = "other";
    for (auto k : kMethods)
        if (k == method) m = k;
    memo_
        .get("edgepair_sip_federation_requests_total",
             "SIP federation requests relayed, by direction and method",
             {{"direction", std::string(direction)}, {"method", std::string(m)}})
        .inc();
}

void SipFederation::count_target_failure(std::string_view domain) {
    memo_
        .get("edgepair_sip_federation_target_failures_total",
             "SIP federation servers (SRV targets) that did not take a connection, by remote domain",
             {{"domain", domain_label(domain)}})
        .inc();
}

obs::GaugeHold SipFederation::count_session(std::string_view direction, std::string_view domain) {
    obs::Labels labels{{"direction", std::string(direction)}, {"domain", domain_label(domain)}};
    memo_
        .get("edgepair_sip_federation_sessions_total",
             "SIP federation flows relayed, by direction and remote domain", labels)
        .inc();
    // Once per flow set-up, not per message: the registry's lock is not on a data path.
    return obs::GaugeHold(
        ws_.app().metrics().gauge("edgepair_sip_federation_open",
                                  "SIP federation flows open now, by direction and remote domain", labels));
}

void SipFederation::count_dns_failure(std::string_view stage) {
    memo_
        .get("edgepair_sip_federation_dns_failures_total",
             "SIP federation DNS look-ups that found nothing usable, by stage",
             {{"stage", std::string(stage)}})
        .inc();
}

} // namespace edgepair::edge_e
