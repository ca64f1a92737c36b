// edge-c's half of XMPP over MRA (issue #7). edge-e terminated the client's TLS and sends the client's
// restarted stream (header, SASL, everything after) down one link stream. edge-c picks an IM&P node of the
// domain's deployment, connects to it on 5222, and negotiates STARTTLS itself, as Expressway-C does (the hop
// inside the enterprise is encrypted and the node's certificate checked when discovery runs with TLS verify),
// then replays the client's bytes into the protected stream and relays both ways. IM&P therefore sees a TLS
// stream whose header is the client's: it offers SASL next, and authentication happens at IM&P.
//
// Home node (issue #16, edge-c/imp_home.h): until SASL ends, both directions go through a framer. The
// client's <auth/> names the user; when this worker remembers another node as the user's home, or the node
// answers the <auth/> with the home-node hint, edge-c opens the stream again on that node (STARTTLS, the
// client's stream header, the node's features swallowed because the client has them already) and sends the
// <auth/> there, so the credential reaches one node at a time and the client sees one stream. A home node
// that does not answer is replaced by its presence redundancy group peer. After <success/> the relay is
// raw bytes again.
//
// MRA access policy and OAuth (issue #15, edge-c/mra_access_policy.h): the same watch holds the <auth/>
// while edge-c checks a token mechanism's token itself and looks up the user's policy; a refusal ends the
// stream with a stream error and IM&P never sees the <auth/>. In a domain whose single sign-on is Exclusive
// (issue #21) the watch is always on and only a token mechanism's <auth/> goes on: a password never reaches
// IM&P. A failed <auth/> keeps the watch on, so a retry on the same stream is read like the first.
//
// Until the upstream stream is ready the client's bytes are held unconsumed, so the link's per-stream window
// bounds them. Failures before that are answered with a non-200 status and x-xmpp-error (the condition
// edge-e sends to the client); after it, an abrupt upstream loss resets the stream and edge-e turns that into
// a stream error.
#include "edge-c/xmpp_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>

#include "common/net/connection.h"
#include "common/obs/access_log.h"
#include "common/obs/counter_memo.h"
#include "common/obs/log.h"
#include "common/xmpp/framer.h"
#include "common/xmpp/writer.h"
#include "edge-c/edge_c.h"
#include "edge-c/edge_token.h"
#include "edge-c/imp_home.h"
#include "edge-c/mra_access_policy.h"
#include "edge-c/oauth_validator.h"
#include "edge-c/s2s_service.h"
#include "edge-c/xmpp_sasl.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "xmpp";
constexpr uint16_t kImpXmppPort = 5222;
constexpr uint64_t kNegotiateTimeoutMs = 10000; // connect + stream header + STARTTLS + TLS, per node
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
// What the client may send while its stream moves to the home node (it waits for the SASL outcome, so this
// is the <auth/> and keep-alives); more is a misbehaving client.
constexpr size_t kMaxHeld = 64 * 1024;

struct Candidate {
    std::string name;
    bool verify = true;
};

class XmppUpstream final : public link::StreamHandler {
  public:
    XmppUpstream(CWorker& w, link::LinkStream* s, const link::Headers& h)
        : w_(w), s_(s), domain_(link::header_value(h, "x-domain")),
          client_(link::header_value(h, "x-client-addr")),
          id_(obs::checked_request_id(link::header_value(h, obs::kRequestIdHeader))) {}

    void start();

    void on_data(link::LinkStream& s, const char* data, size_t len) override;
    void on_end(link::LinkStream&) override;
    void on_writable(link::LinkStream&) override;
    void on_close(link::LinkStream&, const core::Failure& failure) override;

  private:
    enum class Phase { Connecting, Header, Proceed, Handshake, Relaying, Done };

    void try_next();
    void connect_to(const net::SockAddr& addr);
    void on_up_ready();
    void on_up_data(const char* data, size_t len);
    void on_up_close(std::string_view why);
    void attempt_failed(std::string why);
    void refuse(int status, std::string_view condition, std::string reason, std::string_view result);
    // Sign-in watching (home node).
    void client_in(std::string_view data);
    void server_in(std::string_view data);
    void send_up(std::string_view bytes);
    void to_client(std::string_view bytes);
    void on_client_auth(const std::string& raw);
    void judge_auth(const std::string& raw, const SaslAuth& who);
    void continue_auth(const std::string& raw, bool judged);
    void refuse_in_stream(std::string_view condition, std::string text, std::string_view reason);
    bool follow_hint(const std::string& host);
    void rehome(const std::string& node);
    void stop_watching();
    void cut(std::string reason);
    std::vector<Candidate> candidates_for(const std::string& node) const;
    void count(std::string_view result);
    void destroy_later();

    CWorker& w_;
    link::LinkStream* s_; // null once the stream is gone
    std::string domain_, client_;
    std::vector<Candidate> nodes_;
    size_t next_ = 0;
    Candidate cur_;
    std::string last_error_;
    Phase phase_ = Phase::Connecting;
    std::unique_ptr<net::Connection> up_;
    std::unique_ptr<xmpp::Framer> neg_; // IM&P's side while edge-c negotiates STARTTLS
    std::unique_ptr<core::Timer> timer_;
    std::string pending_; // the client's bytes received before the upstream stream is ready (unconsumed)
    size_t owed_ = 0;     // bytes written upstream while it was above its watermark, consumed once drained
    bool up_paused_ = false;
    bool dying_ = false;
    uint64_t attempt_ = 0;
    std::string id_;           // edge-e's request id for this stream
    obs::FlowAccess access_;   // log.access: open at start(), close in destroy_later()
    std::string close_reason_; // first cause of the end; "client_closed" when edge-e ended it
    std::string dep_;          // the domain's deployment
    // The domain signs in through single sign-on only (seeds/002 Exclusive; its own mode or its deployment's,
    // config::credential_sso_mode): a SASL mechanism without a token (a password) is refused before IM&P sees
    // it. Fixed when the stream starts, as the nodes are.
    bool sso_exclusive_ = false;
    bool counted_ok_ = false;
    // Home node: set while SASL is watched (both framers), and while the stream moves to another node.
    std::unique_ptr<xmpp::Framer> cfr_, sfr_;
    bool watching_ = false;
    bool rehoming_ = false; // connecting to another node; the client's stream is already answered
    bool judging_ = false;  // the <auth/> waits for the MRA access policy; later client bytes are held
    bool swallow_ = false;  // that node's first features are not relayed (the client has them)
    int rehomes_ = 0;
    std::string client_header_, auth_, held_, user_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void XmppUpstream::start() {
    access_.open(w_.gen()->access_log, "xmpp", id_, client_);
    auto snap = w_.snapshot();
    if (!snap)
        return refuse(503, "remote-connection-failed", "edge-c has no valid MRA configuration", "no_config");
    const mra::Domain* d = snap->find_domain(domain_);
    if (!d || !d->services.imp)
        return refuse(404, "host-unknown", fmt::format("domain {} has no IM and Presence service", domain_),
                      "unknown_domain");
    std::string dep = snap->resolve_deployment(d->deployment);
    dep_ = dep;
    sso_exclusive_ = config::credential_sso_mode(w_.gen()->cfg, domain_) == config::SsoMode::Exclusive;
    std::vector<Candidate> unreachable;
    for (const mra::UcNode* n : snap->nodes_of(dep, mra::NodeType::ImP)) {
        // Nodes discovery could not reach are tried last, not skipped: the state may be stale.
        (n->status == mra::NodeStatus::Unreachable ? unreachable : nodes_)
            .push_back({n->name, n->tls_verify});
    }
    if (nodes_.size() > 1) {
        // Spread sessions over the deployment's nodes; failover walks the rest in order.
        std::rotate(nodes_.begin(), nodes_.begin() + long(w_.xmpp().next_start() % nodes_.size()),
                    nodes_.end());
    }
    nodes_.insert(nodes_.end(), unreachable.begin(), unreachable.end());
    if (nodes_.empty())
        return refuse(503, "remote-connection-failed",
                      fmt::format("no IM and Presence node discovered in deployment {}", dep), "no_node");
    timer_ = std::make_unique<core::Timer>(w_.worker().loop(), [this] {
        attempt_failed(fmt::format("{}: no XMPP stream within {} ms", cur_.name, kNegotiateTimeoutMs));
    });
    try_next();
}

void XmppUpstream::try_next() {
    neg_.reset();
    if (next_ >= nodes_.size()) {
        if (rehoming_) return cut("IM and Presence home node and its backup unreachable: " + last_error_);
        return refuse(502, "remote-connection-failed", "IM and Presence unreachable: " + last_error_,
                      "unreachable");
    }
    cur_ = nodes_[next_++];
    phase_ = Phase::Connecting;
    timer_->arm(kNegotiateTimeoutMs);
    std::weak_ptr<bool> alive = alive_;
    w_.resolver().resolve(cur_.name, [this, alive](Result<std::vector<net::SockAddr>> r) {
        if (alive.expired() || dying_) return;
        if (!r || r->empty())
            return attempt_failed(
                fmt::format("{} does not resolve{}", cur_.name, r ? "" : ": " + r.error().message));
        net::SockAddr a = r->front();
        if (a.family() == AF_INET6)
            reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(kImpXmppPort);
        else
            reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(kImpXmppPort);
        connect_to(a);
    });
}

void XmppUpstream::connect_to(const net::SockAddr& addr) {
    std::string err;
    up_ = net::Connection::connect(w_.worker().loop(), addr, nullptr, &err);
    if (!up_) return attempt_failed(err);
    // Callbacks of an abandoned attempt's connection (freed a loop turn later) must not reach this one.
    const uint64_t a = ++attempt_;
    up_->set_callbacks({[this, a] {
                            if (a == attempt_ && !dying_) on_up_ready();
                        },
                        [this, a](const char* d, size_t n) {
                            if (a == attempt_ && !dying_) on_up_data(d, n);
                        },
                        [this, a](std::string_view why) {
                            if (a == attempt_) on_up_close(why);
                        },
                        [this, a] {
                            if (a != attempt_ || dying_) return;
                            if (owed_ && s_) s_->consumed(owed_);
                            owed_ = 0;
                        }});
    EP_DEBUG(kLog, "{} ({}): connecting to IM&P {} at {}", client_, domain_, cur_.name, addr.str());
    up_->start();
}

void XmppUpstream::on_up_ready() {
    if (phase_ == Phase::Connecting) {
        phase_ = Phase::Header;
        neg_ = std::make_unique<xmpp::Framer>();
        up_->write(fmt::format("<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}' "
                               "version='1.0'>",
                               xmpp::kClientNs, xmpp::kStreamsNs, xmpp::escape_xml(domain_)));
        return;
    }
    if (phase_ != Phase::Handshake) return;
    // The protected stream is ready: IM&P waits for a stream header, which is the client's, held in pending_.
    phase_ = Phase::Relaying;
    timer_->cancel();
    neg_.reset();
    if (rehoming_) {
        // The client's stream continues here: its header again, this node's features swallowed, then the
        // held <auth/> (server_in sends it when the features arrive).
        rehoming_ = false;
        swallow_ = true;
        sfr_ = std::make_unique<xmpp::Framer>();
        EP_INFO(kLog, "{} ({}): user {} moved to IM&P {} over TLS", client_, domain_, user_, cur_.name);
        up_->write(client_header_);
        return;
    }
    if (!counted_ok_) count("ok");
    counted_ok_ = true;
    EP_INFO(kLog, "{} ({}): relaying to IM&P {} over TLS", client_, domain_, cur_.name);
    if (!s_ || !s_->send_headers({{":status", "200"}})) return;
    const bool judge = w_.gen()->cfg.mra_policy.enabled || w_.gen()->oauth || sso_exclusive_;
    if (kHomeNodeHint != HomeNodeHint::None || judge) {
        watching_ = true;
        cfr_ = std::make_unique<xmpp::Framer>();
        sfr_ = std::make_unique<xmpp::Framer>();
    }
    if (!pending_.empty()) {
        size_t n = pending_.size();
        std::string bytes = std::move(pending_);
        pending_.clear();
        if (watching_)
            client_in(bytes);
        else
            up_->write(bytes);
        if (up_ && up_->above_high_watermark())
            owed_ += n;
        else if (s_)
            s_->consumed(n);
    }
}

void XmppUpstream::to_client(std::string_view bytes) {
    access_.add_out(bytes.size());
    if (s_ && !s_->write(bytes) && !up_paused_ && up_) {
        up_paused_ = true;
        up_->pause_reading();
    }
}

void XmppUpstream::send_up(std::string_view bytes) {
    if (rehoming_ || swallow_ || judging_ || !up_) {
        held_.append(bytes);
        if (held_.size() > kMaxHeld)
            cut(judging_ ? "client sent more than 64 KiB while its sign-in was checked"
                         : "client sent more than 64 KiB while its stream moved to its home node");
        return;
    }
    up_->write(bytes);
}

void XmppUpstream::client_in(std::string_view data) {
    if (!cfr_) return send_up(data);
    cfr_->feed(data);
    while (cfr_ && watching_ && phase_ != Phase::Done) {
        auto ev = cfr_->next();
        if (!ev) break;
        switch (ev->type) {
        case xmpp::EventType::stream_open:
            client_header_ = ev->header.raw;
            send_up(ev->header.raw);
            break;
        case xmpp::EventType::stanza:
            if (ev->name == "auth" && ev->ns == kSaslNs) {
                on_client_auth(ev->raw);
                break;
            }
            if (sso_exclusive_ && ev->ns != kSaslNs) {
                // Before SASL succeeds only SASL elements have a use; anything else could carry a password
                // past the <auth/> check (XEP-0078 jabber:iq:auth, XEP-0077 registration).
                EP_INFO(kLog,
                        "{} ({}): <{}/> before sign-in refused: the domain signs in through single "
                        "sign-on only",
                        client_, domain_, ev->name);
                return refuse_in_stream("not-authorized", "this domain signs in through single sign-on only",
                                        "sso_exclusive");
            }
            send_up(ev->raw);
            break;
        case xmpp::EventType::keepalive:
        case xmpp::EventType::starttls:
            send_up(ev->raw);
            break;
        case xmpp::EventType::stream_close:
            send_up(ev->raw.empty() ? std::string_view("</stream:stream>") : std::string_view(ev->raw));
            break;
        case xmpp::EventType::error:
            // edge-e framed this stream with the same rules already; failing here is a bug or a desync.
            return cut("client stream unreadable while watching the sign-in: " + ev->detail);
        }
    }
}

void XmppUpstream::on_client_auth(const std::string& raw) {
    auth_ = raw;
    auto who = read_sasl_auth(raw);
    user_ = who ? who->user : std::string();
    if (who && who->token.starts_with(kEdgeTokenPrefix)) {
        // IM&P cannot validate an edge token, and edge-c has no way to vouch for the user towards IM&P on
        // the client port (Expressway's XCP link on 7400 is not public): refused here, so that the token
        // never leaves the pair (docs/SECURITY.md "Registering after sign-in").
        EP_INFO(kLog, "{} ({}): SASL {} refused: an edge token is not an IM&P credential", client_, domain_,
                who->mechanism);
        return refuse_in_stream("not-authorized", "edge tokens do not sign in to IM and Presence",
                                "edge_token_on_xmpp");
    }
    if (sso_exclusive_ && (!who || who->token.empty())) {
        // seeds/002 Exclusive: the IdP "is the only permitted authentication agent". Only a token mechanism
        // (OAUTHBEARER, X-OAUTH2: a Unified CM token the sign-in bought) goes on; PLAIN, CISCO-VTG-TOKEN,
        // SCRAM and whatever edge-c cannot read carry, or stand for, a password.
        EP_INFO(kLog, "{} ({}): SASL {} refused: the domain signs in through single sign-on only", client_,
                domain_, who ? who->mechanism : std::string("<auth/> (unreadable)"));
        return refuse_in_stream("not-authorized", "this domain signs in through single sign-on only",
                                "sso_exclusive");
    }
    if (who && (w_.gen()->cfg.mra_policy.enabled || w_.gen()->oauth)) return judge_auth(raw, *who);
    continue_auth(raw, false);
}

// The policy hook (issue #15): a token mechanism's token is checked here, as on HTTP and SIP, it must belong
// to the identity the message names, and the MRA access policy (or, alone, oauth.require_active_user) applies
// to the user the <auth/> (or its token) names. A mechanism that names no user edge-c can read is left to
// IM&P.
void XmppUpstream::judge_auth(const std::string& raw, const SaslAuth& who) {
    if (!who.token.empty()) {
        auto r = check_access_token(w_, who.token, dep_);
        if (auto* reason = std::get_if<const char*>(&r)) {
            EP_INFO(kLog, "{} ({}): SASL {} refused: OAuth token refused: {}", client_, domain_,
                    who.mechanism, *reason);
            return refuse_in_stream("not-authorized", "invalid access token", "oauth_refused");
        }
        const auto& id = std::get<OAuthIdentity>(r);
        if (!named_id_matches(who.named, id.user, domain_)) {
            // IM&P signs in whom the message names, and may not bind the token to that user (Prosody's
            // mod_auth_oauthbearer does not): user A's valid token must not open user B's session.
            w_.counters()
                .get("edgepair_oauth_refused_total", "OAuth access tokens refused, by reason",
                     {{"reason", "identity_mismatch"}})
                .inc();
            EP_INFO(kLog, "{} ({}): SASL {} refused: the token is user {}'s, the message names {}", client_,
                    domain_, who.mechanism, id.user,
                    who.named.user.empty()     ? std::string("an unreadable identity")
                    : who.named.domain.empty() ? who.named.user
                                               : who.named.user + "@" + who.named.domain);
            return refuse_in_stream("not-authorized", "the access token belongs to another user",
                                    "oauth_identity_mismatch");
        }
        user_ = mra::to_lower(id.user);
    }
    const auto& cfg = w_.gen()->cfg;
    const bool active_only = !cfg.mra_policy.enabled && cfg.oauth.require_active_user && !who.token.empty();
    if (user_.empty() || (!cfg.mra_policy.enabled && !active_only)) return continue_auth(raw, false);
    judging_ = true;
    std::weak_ptr<bool> alive = alive_;
    w_.mra_access().lookup(user_, dep_, [this, alive, raw](Result<UserAccess> r) {
        if (alive.expired() || dying_ || phase_ == Phase::Done || !judging_) return;
        const auto& pc = w_.gen()->cfg.mra_policy;
        if (!r && !pc.allow_on_lookup_error)
            return refuse_in_stream("remote-connection-failed", "user directory unavailable",
                                    "policy_lookup_failed");
        if (!pc.enabled) {
            // oauth.require_active_user: the token is valid, but its user was removed from Unified CM.
            if (r && !r->found) {
                w_.counters()
                    .get("edgepair_oauth_refused_total", "OAuth access tokens refused, by reason",
                         {{"reason", "user_not_active"}})
                    .inc();
                EP_INFO(kLog, "{} ({}): SASL refused: OAuth token of user {}, who is not on Unified CM",
                        client_, domain_, user_);
                return refuse_in_stream("not-authorized", "invalid access token", "oauth_user_not_active");
            }
            judging_ = false;
            return continue_auth(raw, true);
        }
        // The resource (which names the platform) is bound only after SASL: the class is not known yet.
        MraPolicy pol =
            r ? effective_policy(*r, DeviceClass::Unknown, pc.unknown_device_class) : MraPolicy::ImVoiceVideo;
        if (!policy_allows(pol, MraService::Xmpp)) {
            w_.mra_access().count_refusal(MraService::Xmpp, pol);
            EP_INFO(kLog, "{} ({}): user {} refused: MRA access policy {}", client_, domain_, user_,
                    policy_label(pol));
            return refuse_in_stream("policy-violation",
                                    fmt::format("MRA access policy: {}", policy_label(pol)), "mra_policy");
        }
        judging_ = false;
        continue_auth(raw, true);
    });
}

// The <auth/> may go on: to the node this worker remembers as the user's home, or to the current one.
void XmppUpstream::continue_auth(const std::string& raw, bool judged) {
    // What the client sent while the policy was looked up goes after the <auth/>; otherwise held_ belongs to
    // a move to the home node and stays as it is.
    std::string later = judged ? std::exchange(held_, {}) : std::string();
    if (!user_.empty() && rehomes_ == 0) {
        auto home = w_.xmpp().homes().get(dep_, user_, w_.worker().loop().now_ms());
        if (home && *home != cur_.name && !candidates_for(*home).empty()) {
            EP_DEBUG(kLog, "{} ({}): user {} was last accepted by IM&P {}; moving there before <auth/>",
                     client_, domain_, user_, *home);
            held_ = raw + later;
            return rehome(*home);
        }
    }
    send_up(raw);
    if (!later.empty()) send_up(later);
}

void XmppUpstream::refuse_in_stream(std::string_view condition, std::string text, std::string_view reason) {
    // IM&P's stream is open towards the client (its header and features went through): the error goes in
    // it, and IM&P never sees the held <auth/>.
    if (close_reason_.empty()) close_reason_ = reason;
    w_.xmpp().count_refused_sign_in(reason);
    phase_ = Phase::Done;
    judging_ = false;
    held_.clear();
    stop_watching();
    if (timer_) timer_->cancel();
    if (up_) {
        ++attempt_;
        w_.retire(std::move(up_));
    }
    if (!s_) return destroy_later();
    to_client(
        fmt::format("<stream:error><{} xmlns='{}'/><text xmlns='{}'>{}</text></stream:error></stream:stream>",
                    condition, xmpp::kStreamErrorNs, xmpp::kStreamErrorNs, xmpp::escape_xml(text)));
    // The stream's on_close frees us (the handler must outlive the stream).
    s_->end();
}

void XmppUpstream::server_in(std::string_view data) {
    if (!sfr_) return to_client(data);
    sfr_->feed(data);
    while (sfr_ && watching_ && phase_ != Phase::Done) {
        auto ev = sfr_->next();
        if (!ev) break;
        switch (ev->type) {
        case xmpp::EventType::stream_open:
            if (!swallow_) to_client(ev->header.raw);
            break;
        case xmpp::EventType::keepalive:
            if (!swallow_) to_client(ev->raw);
            break;
        case xmpp::EventType::stanza:
            if (swallow_) {
                if (ev->name == "features" && ev->ns == xmpp::kStreamsNs) {
                    swallow_ = false;
                    std::string held = std::move(held_);
                    held_.clear();
                    if (!held.empty()) up_->write(held);
                } else if (ev->name == "error" && ev->ns == xmpp::kStreamsNs) {
                    return cut(fmt::format("IM&P {} refused the moved stream: {}", cur_.name, ev->raw));
                }
                break;
            }
            if (ev->name == "error" && ev->ns == xmpp::kStreamsNs) {
                if (auto host = home_node_hint(ev->raw); host && follow_hint(*host)) return;
            }
            to_client(ev->raw);
            if (ev->ns == kSaslNs && ev->name == "success") {
                w_.xmpp().homes().put(dep_, user_, cur_.name, w_.worker().loop().now_ms(),
                                      uint64_t(w_.gen()->cfg.credentials.home_cache.count()));
                return stop_watching();
            }
            if (ev->ns == kSaslNs && ev->name == "failure") {
                // The client may try again on this stream (RFC 6120 6.4.5): its next <auth/> is read as the
                // first was, or a second attempt would reach IM&P unchecked (a password in an Exclusive
                // domain, another user past the MRA access policy).
                auth_.clear();
                user_.clear();
            }
            break;
        case xmpp::EventType::stream_close:
            to_client(ev->raw.empty() ? std::string_view("</stream:stream>") : std::string_view(ev->raw));
            break;
        case xmpp::EventType::starttls:
        case xmpp::EventType::error:
            return cut(fmt::format("IM&P {} stream unreadable while watching the sign-in: {}", cur_.name,
                                   ev->detail));
        }
    }
}

void XmppUpstream::stop_watching() {
    // SASL is over: the client restarts its stream next (RFC 6120 6.4.6), and from here on the relay does not
    // read the XML. Nothing follows <success/> from either side until that restart.
    watching_ = false;
    cfr_.reset();
    sfr_.reset();
    auth_.clear();
    auth_.shrink_to_fit();
    // Only a move to another node replays the header, and no move starts after SASL.
    std::string().swap(client_header_);
}

std::vector<Candidate> XmppUpstream::candidates_for(const std::string& node) const {
    std::vector<Candidate> out;
    auto snap = w_.snapshot();
    if (!snap) return out;
    const mra::UcNode* home = nullptr;
    for (const mra::UcNode* n : snap->nodes_of(dep_, mra::NodeType::ImP))
        if (n->name == node) home = n;
    if (!home) return out; // never follow a hint out of the deployment's discovered IM&P nodes
    out.push_back({home->name, home->tls_verify});
    // Its presence redundancy group peer takes the user over when it fails; without known groups, the other
    // nodes of its IM&P cluster in discovery order.
    for (const mra::UcNode* n : snap->nodes_of(dep_, mra::NodeType::ImP)) {
        if (n == home) continue;
        const bool peer =
            home->imp_peer.empty() ? n->publisher == home->publisher : n->name == home->imp_peer;
        if (peer) out.push_back({n->name, n->tls_verify});
    }
    return out;
}

bool XmppUpstream::follow_hint(const std::string& host) {
    if (user_.empty() || auth_.empty() || rehomes_ >= kMaxRedirects || host == cur_.name) {
        EP_WARN(kLog, "{} ({}): IM&P {} points to {}; not followed ({})", client_, domain_, cur_.name, host,
                user_.empty()               ? "no SASL user seen"
                : rehomes_ >= kMaxRedirects ? "too many moves"
                                            : "same node");
        w_.xmpp().count_redirect("refused");
        return false;
    }
    if (candidates_for(host).empty()) {
        EP_WARN(kLog,
                "{} ({}): IM&P {} points user {} to {}, which is not a discovered IM&P node of deployment "
                "{}; not followed",
                client_, domain_, cur_.name, user_, host, dep_);
        w_.xmpp().count_redirect("refused");
        return false;
    }
    EP_INFO(kLog, "{} ({}): IM&P {} says user {} is homed on {}", client_, domain_, cur_.name, user_, host);
    w_.xmpp().count_redirect("followed");
    held_ = auth_;
    rehome(host);
    return true;
}

void XmppUpstream::rehome(const std::string& node) {
    ++rehomes_;
    rehoming_ = true;
    swallow_ = false;
    sfr_.reset();
    if (up_) {
        ++attempt_; // the old connection's callbacks no longer reach this stream
        w_.retire(std::move(up_));
    }
    if (owed_ && s_) s_->consumed(owed_);
    owed_ = 0;
    nodes_ = candidates_for(node);
    next_ = 0;
    last_error_.clear();
    try_next();
}

void XmppUpstream::cut(std::string reason) {
    if (phase_ == Phase::Done || dying_) return;
    EP_WARN(kLog, "{} ({}): stream cut: {}", client_, domain_, reason);
    count("unreachable");
    if (close_reason_.empty()) close_reason_ = "unreachable";
    phase_ = Phase::Done;
    rehoming_ = false;
    if (timer_) timer_->cancel();
    if (up_) {
        ++attempt_;
        w_.retire(std::move(up_));
    }
    // The client's stream was answered already: a reset becomes remote-connection-failed at edge-e.
    if (s_) {
        s_->reset(link::kInternalError);
        s_ = nullptr;
    }
    destroy_later();
}

void XmppUpstream::on_up_data(const char* data, size_t len) {
    if (phase_ == Phase::Relaying && watching_) return server_in(std::string_view(data, len));
    if (phase_ == Phase::Relaying) {
        access_.add_out(len);
        if (s_ && !s_->write(std::string_view(data, len)) && !up_paused_) {
            up_paused_ = true;
            up_->pause_reading();
        }
        return;
    }
    if (!neg_ || (phase_ != Phase::Header && phase_ != Phase::Proceed)) return;
    neg_->feed(std::string_view(data, len));
    while (auto ev = neg_->next()) {
        switch (ev->type) {
        case xmpp::EventType::stream_open:
        case xmpp::EventType::keepalive:
            break;
        case xmpp::EventType::stanza:
            if (phase_ == Phase::Header && ev->name == "features" && ev->ns == xmpp::kStreamsNs) {
                if (ev->raw.find(xmpp::kTlsNs) == std::string::npos)
                    return attempt_failed(fmt::format("{} does not offer STARTTLS", cur_.name));
                phase_ = Phase::Proceed;
                up_->write(fmt::format("<starttls xmlns='{}'/>", xmpp::kTlsNs));
            } else if (phase_ == Phase::Proceed && ev->name == "proceed" && ev->ns == xmpp::kTlsNs) {
                auto& gen = w_.gen();
                auto& ctx = cur_.verify ? gen->upstream_verify : gen->upstream_noverify;
                phase_ = Phase::Handshake;
                neg_.reset();
                if (!up_->start_tls(ctx->new_ssl(cur_.name)))
                    return attempt_failed(fmt::format("{}: TLS upgrade refused", cur_.name));
                return; // the rest arrives encrypted
            } else if (ev->name == "error" && ev->ns == xmpp::kStreamsNs) {
                return attempt_failed(fmt::format("{} sent a stream error: {}", cur_.name, ev->raw));
            } else if (ev->name == "failure") {
                return attempt_failed(fmt::format("{} refused STARTTLS", cur_.name));
            }
            break;
        case xmpp::EventType::starttls:
        case xmpp::EventType::stream_close:
            return attempt_failed(fmt::format("{} closed the stream during negotiation", cur_.name));
        case xmpp::EventType::error:
            return attempt_failed(fmt::format("{} sent malformed XML: {}", cur_.name, ev->detail));
        }
    }
}

void XmppUpstream::on_up_close(std::string_view why) {
    if (dying_) return;
    if (phase_ == Phase::Done) return destroy_later(); // we closed it after the link stream went away
    if (phase_ != Phase::Relaying) return attempt_failed(fmt::format("{}: {}", cur_.name, why));
    phase_ = Phase::Done;
    if (close_reason_.empty())
        close_reason_ = why == "closed by peer" || why == "closed" ? "server_closed" : "server_cut";
    EP_INFO(kLog, "{} ({}): IM&P {} connection ended: {}", client_, domain_, cur_.name, why);
    if (s_) {
        // A TLS close after </stream:stream> is a clean end; anything else cut the stream mid-way and edge-e
        // must tell the client so.
        if (why == "closed by peer" || why == "closed")
            s_->end();
        else
            s_->reset(link::kInternalError);
        if (why != "closed by peer" && why != "closed") s_ = nullptr;
    }
    if (!s_) destroy_later();
}

void XmppUpstream::attempt_failed(std::string why) {
    if (dying_ || phase_ == Phase::Relaying || phase_ == Phase::Done) return;
    EP_WARN(kLog, "{} ({}): IM&P attempt failed: {}", client_, domain_, why);
    last_error_ = std::move(why);
    // Not inline: this may run inside the upstream connection's own callback.
    std::weak_ptr<bool> alive = alive_;
    phase_ = Phase::Connecting;
    ++attempt_;
    if (up_) {
        // Freed on the next turn: this may run inside that connection's own callback.
        w_.retire(std::move(up_));
    }
    w_.worker().loop().post([this, alive] {
        if (!alive.expired() && !dying_) try_next();
    });
}

void XmppUpstream::refuse(int status, std::string_view condition, std::string reason,
                          std::string_view result) {
    count(result);
    if (close_reason_.empty()) close_reason_ = result;
    EP_INFO(kLog, "{} ({}): refused: {}", client_, domain_, reason);
    phase_ = Phase::Done;
    if (timer_) timer_->cancel();
    if (s_) {
        if (!pending_.empty()) s_->consumed(pending_.size());
        pending_.clear();
        for (auto& c : reason)
            if (c == '\r' || c == '\n') c = ' ';
        s_->send_headers({{":status", std::to_string(status)},
                          {"x-xmpp-error", std::string(condition)},
                          {"x-xmpp-reason", reason}},
                         true);
        // The stream's on_close (edge-e resets it on the refusal, or the link ends) frees us: the handler
        // must outlive the stream.
        return;
    }
    destroy_later();
}

void XmppUpstream::count(std::string_view result) {
    w_.xmpp().count(result);
}

void XmppUpstream::on_data(link::LinkStream& s, const char* data, size_t len) {
    if (phase_ == Phase::Done) return s.consumed(len);
    access_.add_in(len);
    if (rehoming_ || (phase_ == Phase::Relaying && swallow_)) {
        // The stream is moving to the home node: held (bounded) until that node's features arrived.
        client_in(std::string_view(data, len));
        if (phase_ == Phase::Done) return;
        return s.consumed(len);
    }
    if (phase_ != Phase::Relaying) {
        pending_.append(data, len);
        return;
    }
    if (watching_)
        client_in(std::string_view(data, len));
    else
        up_->write(std::string_view(data, len));
    if (phase_ == Phase::Done) return;
    if (!up_) return s.consumed(len);
    if (up_->above_high_watermark())
        owed_ += len;
    else
        s.consumed(len);
}

void XmppUpstream::on_end(link::LinkStream&) {
    // The client side is finished (edge-e closed the client connection): let IM&P know, after its last bytes.
    if (phase_ == Phase::Relaying && up_) return up_->close();
    if (phase_ == Phase::Done) return;
    // Still connecting to IM&P: nobody is left to relay for.
    if (close_reason_.empty()) close_reason_ = "client_closed";
    phase_ = Phase::Done;
    rehoming_ = false;
    if (up_) {
        ++attempt_;
        w_.retire(std::move(up_));
    }
    if (auto* s = s_) {
        s_ = nullptr;
        s->set_handler(nullptr);
        s->end();
    }
    destroy_later();
}

void XmppUpstream::on_writable(link::LinkStream&) {
    if (!up_paused_ || !up_) return;
    up_paused_ = false;
    up_->resume_reading();
}

void XmppUpstream::on_close(link::LinkStream&, const core::Failure& failure) {
    s_ = nullptr;
    if (close_reason_.empty()) close_reason_ = failure ? "link_closed" : "client_closed";
    if (failure) EP_DEBUG(kLog, "{} ({}): link stream closed: {}", client_, domain_, failure.str());
    if (up_ && phase_ == Phase::Relaying) {
        // Flush what the client sent last, then close; the upstream's on_close frees us.
        phase_ = Phase::Done;
        up_->close();
        return;
    }
    destroy_later();
}

void XmppUpstream::destroy_later() {
    if (dying_) return;
    dying_ = true;
    *alive_ = false;
    if (timer_) timer_->cancel();
    access_.close(close_reason_.empty() ? "closed" : close_reason_);
    // Not inline: this may run inside a LinkStream or Connection callback that still holds `this`.
    w_.retire(this);
}

} // namespace

XmppService::XmppService(CWorker& w) : w_(w) {
    for (size_t i = 0; i < kResults.size(); ++i)
        results_[i] = &w.app().metrics().counter("edgepair_xmpp_upstream_total",
                                                 "XMPP sessions edge-c set up towards IM and Presence",
                                                 {{"result", std::string(kResults[i])}});
    const char* help =
        "IM and Presence home-node hints during XMPP sign-in (followed to a discovered node, or not)";
    redirects_followed_ =
        &w.app().metrics().counter("edgepair_xmpp_home_redirects_total", help, {{"result", "followed"}});
    redirects_refused_ =
        &w.app().metrics().counter("edgepair_xmpp_home_redirects_total", help, {{"result", "refused"}});
    refused_sign_ins_ = std::make_unique<obs::OpenLabelCounters>(
        w.app().metrics(), "edgepair_xmpp_signin_refused_total",
        "XMPP sign-ins edge-c refused inside the stream before IM and Presence saw them, by reason",
        obs::Labels{}, "reason");
}

XmppService::~XmppService() = default;

void XmppService::count_refused_sign_in(std::string_view reason) {
    refused_sign_ins_->get(reason).inc();
}

void XmppService::count_redirect(std::string_view result) {
    (result == "followed" ? redirects_followed_ : redirects_refused_)->inc();
}

void XmppService::count(std::string_view result) {
    for (size_t i = 0; i < kResults.size(); ++i)
        if (kResults[i] == result) return results_[i]->inc();
}

void XmppService::serve(link::LinkStream* s, const link::Headers& headers) {
    if (!link::header_value(headers, "x-xmpp-s2s").empty()) {
        // Federation (edge-c/s2s_service.h).
        if (auto* f = w_.s2s()) return f->serve(s, headers);
        s->send_headers({{":status", "404"},
                         {"x-xmpp-error", "remote-connection-failed"},
                         {"x-xmpp-reason", "XMPP federation is not configured on edge-c"}},
                        true);
        return;
    }
    auto* x = w_.own(std::make_unique<XmppUpstream>(w_, s, headers));
    // XmppUpstream copied the fields it uses; `headers` is that block, not to be read after this.
    s->release_request_headers();
    s->set_handler(x);
    x->start();
}

} // namespace edgepair::edge_c
