#include "edge-c/media_b2bua.h"

#include <charconv>
#include <cstring>
#include <deque>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/link/link_conn.h"
#include "common/media/sdp_relay.h"
#include "common/media/traversal.h"
#include "common/mra/json_fields.h"
#include "common/obs/log.h"

namespace edgepair::edge_c {

namespace {
constexpr const char* kLog = "media";
constexpr size_t kMaxStreams = 8;
constexpr uint64_t kSweepMs = 1000;
constexpr unsigned kKeepaliveSweeps = 10; // traversal keep-alive every 10 s: keeps the DMZ firewall open
constexpr uint64_t kOpenTimeoutMs = 5000;
// A call that never got a 2xx is kept while it rings, however long, but not forever.
constexpr uint64_t kSetupTimeoutMs = 10 * 60 * 1000;

std::string savp(std::string_view proto) {
    if (proto == "RTP/AVP" || proto == "RTP/SAVP") return "RTP/SAVP";
    if (proto == "RTP/AVPF" || proto == "RTP/SAVPF") return "RTP/SAVPF";
    return std::string(proto);
}

std::string avp(std::string_view proto) {
    if (proto == "RTP/AVP" || proto == "RTP/SAVP") return "RTP/AVP";
    if (proto == "RTP/AVPF" || proto == "RTP/SAVPF") return "RTP/AVPF";
    return std::string(proto);
}

// The first a=crypto we can use (an offer), or the one answering our tag (an answer).
std::optional<media::CryptoAttr> pick_crypto(const media::SdpMedia& md, std::optional<unsigned> tag) {
    for (auto v : md.attributes("crypto")) {
        auto a = media::CryptoAttr::parse(v);
        if (!a || a->has_mki || !a->session_params.empty()) continue;
        if (tag && a->tag != *tag) continue;
        return a;
    }
    return std::nullopt;
}

std::unique_ptr<media::SrtpStream> make_stream(const media::CryptoAttr& k, media::SrtpStream::Direction d) {
    auto s = media::SrtpStream::create(k.suite, k.master_key, d);
    if (!s) {
        EP_WARN(kLog, "SRTP context: {}", s.error().message);
        return nullptr;
    }
    return std::move(*s);
}

bool is_sdp(const sip::Message& m) {
    if (m.body().empty()) return false;
    auto* h = m.find(sip::HeaderId::content_type);
    if (!h) return false;
    std::string_view v = h->value;
    auto semi = v.find(';');
    if (semi != std::string_view::npos) v = v.substr(0, semi);
    while (!v.empty() && v.back() == ' ')
        v.remove_suffix(1);
    return v.size() == 15 && strncasecmp(v.data(), "application/sdp", 15) == 0;
}

const char* drop_reason(media::SrtpStatus s) {
    switch (s) {
    case media::SrtpStatus::AuthFail:
        return "srtp_auth";
    case media::SrtpStatus::ReplayFail:
        return "srtp_replay";
    default:
        return "srtp_bad";
    }
}
} // namespace

namespace {
// One leg's SDES keys: the peer's (decrypts what it sends) and ours (encrypts what it receives).
struct Keys {
    std::optional<media::CryptoAttr> in_key, out_key;
    std::unique_ptr<media::SrtpStream> in, out;

    // The peer's a=crypto from an offer or an answer. Answering an offer, our key follows the suite and
    // tag the peer chose; a key that did not change keeps its stream (and its replay window).
    void learn(const media::CryptoAttr& theirs, bool offer) {
        if (!in_key || in_key->suite != theirs.suite || in_key->master_key != theirs.master_key) {
            in_key = theirs;
            in = make_stream(theirs, media::SrtpStream::Direction::Inbound);
        }
        if (offer && (!out_key || out_key->suite != theirs.suite || out_key->tag != theirs.tag))
            make_ours(theirs.tag, theirs.suite);
    }
    // Ours for an offer we make, kept across re-offers.
    const media::CryptoAttr& ours_for_offer() {
        if (!out_key) make_ours(1, media::SrtpSuite::AES_CM_128_HMAC_SHA1_80);
        return *out_key;
    }
    void make_ours(unsigned tag, media::SrtpSuite suite) {
        out_key = media::CryptoAttr::random(tag, suite);
        out = make_stream(*out_key, media::SrtpStream::Direction::Outbound);
    }
    void clear_in() {
        in_key.reset();
        in.reset();
    }
    void clear_out() {
        out_key.reset();
        out.reset();
    }
};
} // namespace

struct MediaB2bua::LinkMedia {
    link::LinkConn* link = nullptr;
    media::UdpSocket sock;
    std::unique_ptr<core::IoWatcher> watch;
    net::SockAddr mux; // edge-e's traversal port for this link's worker
    size_t calls = 0;
};

struct MediaB2bua::Leg {
    Call* call = nullptr;
    media::RelayKind kind = media::RelayKind::Rtp;
    // Set by each offer: whether this m-line is relayed now. An answer relays only what the offer did, so a
    // line rejected onward is rejected back, whatever the answerer says.
    bool active = false;
    // rtcp-mux per leg (RFC 5761): each leg's side decides for itself; the relay converts between a muxed
    // and an unmuxed leg. The offerer's choice is kept in offer_mux until our answer accepts it.
    bool mux_client = false, mux_internal = false, offer_mux = false;
    uint32_t chan[2] = {0, 0};
    uint16_t e_port = 0; // edge-e's public RTP port
    media::UdpSocket in[2];
    std::unique_ptr<core::IoWatcher> in_watch[2];
    uint16_t c_port = 0; // our RTP port towards the internal endpoint
    net::SockAddr dst[2];
    // Client leg: its key decrypts what it sends; ours encrypts what it receives.
    Keys client;
    // Internal leg, used when the internal endpoint does SRTP.
    bool in_srtp = false;
    Keys internal;
};

struct MediaB2bua::Call {
    enum class State { Idle, Opening, Open, Failed };
    std::string call_id;
    uint64_t flow = 0;
    link::LinkConn* link = nullptr;
    std::string client_ip;
    State state = State::Idle;
    uint32_t req = 0;
    uint64_t opened_at = 0;
    std::vector<uint64_t> sessions; // edge-e's: one per media_open (a re-offer adding m-lines opens another)
    std::string e_addr;
    LinkMedia* lm = nullptr;
    std::vector<size_t> want; // the m-lines the pending media_open is for
    std::vector<std::unique_ptr<Leg>> legs;
    std::vector<Leg*> slots; // by m-line index; nullptr: the line has no relay (rejected)
    std::deque<std::function<void(Call*)>> waiting;
    bool invite_had_sdp = false;
    bool established = false;
    bool counted = false;
    uint64_t last_ms = 0;
};

MediaB2bua::MediaB2bua(core::Loop& loop, const config::EdgeCMediaConfig& cfg,
                       const media::MediaMetrics& metrics, Refusals refusals,
                       std::function<bool(link::LinkConn*)> link_alive)
    : loop_(loop), cfg_(cfg), m_(metrics), refused_(refusals), link_alive_(std::move(link_alive)) {
    if (auto ip = net::numeric_addr(cfg.address, 0))
        alloc_ = std::make_unique<media::PortPairAllocator>(*ip, cfg.ports.lo, cfg.ports.hi);
    sweep_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        sweep();
        sweep_timer_->arm(kSweepMs);
    });
    sweep_timer_->arm(kSweepMs);
}

MediaB2bua::~MediaB2bua() {
    for (auto& [id, c] : calls_)
        if (c->counted) m_.sessions->add(-1);
}

void MediaB2bua::process(uint64_t flow, link::LinkConn* link, const std::string& client_ip, From from,
                         sip::Message&& msg, Continue next) {
    auto* cid_h = msg.find(sip::HeaderId::call_id);
    if (!cid_h) {
        next(std::move(msg), 0, {});
        return;
    }
    // Keyed per call leg (the client flow and the Call-ID), not per Call-ID: with the pair in the middle of a
    // call between two of its own clients both halves carry the same Call-ID, and each half needs its own
    // edge-e ports and keys (issue #16).
    std::string cid = std::to_string(flow) + "/" + cid_h->value;
    auto it = calls_.find(cid);
    if (it == calls_.end()) {
        // Only an INVITE starts a call we relay media for.
        if (!msg.is_request() || msg.method() != "INVITE") {
            next(std::move(msg), 0, {});
            return;
        }
        auto c = std::make_unique<Call>();
        c->call_id = cid;
        c->flow = flow;
        c->link = link;
        c->client_ip = client_ip;
        c->last_ms = loop_.now_ms();
        it = calls_.emplace(cid, std::move(c)).first;
    }
    Call& c = *it->second;
    c.last_ms = loop_.now_ms();
    auto m = std::make_shared<sip::Message>(std::move(msg));
    auto step = [this, from, m, next = std::move(next)](Call* c) mutable {
        if (!c) {
            next(std::move(*m), 0, {}); // the call went away meanwhile: signalling still flows
            return;
        }
        handle(*c, from, std::move(*m), std::move(next), true);
    };
    // Messages of one call keep their order behind an open in progress.
    if (c.state == Call::State::Opening || !c.waiting.empty()) {
        c.waiting.push_back(std::move(step));
        return;
    }
    step(&c);
}

void MediaB2bua::open(Call& c, size_t n) {
    c.state = Call::State::Opening;
    c.req = next_req_++;
    c.opened_at = loop_.now_ms();
    opening_[c.req] = c.call_id;
    // edge-e's x-client-addr is "ip:port" / "[v6]:port"; media latches to the IP alone.
    if (auto hp = net::split_host_port(c.client_ip)) c.client_ip = hp->first;
    const std::string& ip = c.client_ip;
    auto msg = nlohmann::json{{"type", "media_open"}, {"id", c.req}, {"client", ip}, {"streams", n}};
    if (!link_alive_(c.link) || !c.link->send_control(msg.dump())) {
        opening_.erase(c.req);
        c.state = c.legs.empty() ? Call::State::Failed : Call::State::Open;
    }
}

void MediaB2bua::on_control(link::LinkConn* link, std::string_view json) {
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    // Every field opened() reads is checked here first, typed and in range (common/mra/json_fields.h):
    // nlohmann's value() throws on a field of the wrong JSON type, nothing above this link callback catches,
    // and a mux_port of 70000 would silently become 4464.
    auto req = mra::json_uint_as<uint32_t>(j, "id", 0);
    if (!req) {
        EP_WARN(kLog, "bad media control message from edge-e: {}", req.error().message);
        return;
    }
    auto type = mra::json_string(j, "type");
    auto session = mra::json_uint(j, "session", 0);
    auto error = mra::json_string(j, "error", "?");
    auto malformed = [&]() -> std::string {
        for (const Error* e : {type ? nullptr : &type.error(), session ? nullptr : &session.error(),
                               error ? nullptr : &error.error()})
            if (e) return e->message;
        if (*type != "media_opened") return {};
        if (auto a = mra::json_string(j, "address"); !a) return a.error().message;
        if (auto p = mra::json_uint_as<uint16_t>(j, "mux_port", 0); !p) return p.error().message;
        auto streams = j.find("streams");
        if (streams == j.end()) return {};
        if (!streams->is_array())
            return std::string("field \"streams\" must be an array, not ") + streams->type_name();
        for (auto& s : *streams) {
            if (!s.is_object()) return std::string("a stream must be an object, not ") + s.type_name();
            if (auto p = mra::json_uint_as<uint16_t>(s, "port", 0); !p) return "stream: " + p.error().message;
            for (const char* k : {"rtp", "rtcp"})
                if (auto c = mra::json_uint_as<uint32_t>(s, k, 0); !c) return "stream: " + c.error().message;
        }
        return {};
    }();
    // edge-e holds ports for a session it announced, even in an answer we cannot use: give them back.
    auto give_back = [&] {
        if (type && *type == "media_opened" && session)
            link->send_control(nlohmann::json{{"type", "media_close"}, {"session", *session}}.dump());
    };
    auto o = opening_.find(*req);
    if (o == opening_.end()) {
        if (!malformed.empty())
            EP_WARN(kLog, "bad media control message {} from edge-e: {}", *req, malformed);
        give_back(); // a late answer for a call that is gone
        return;
    }
    std::string cid = o->second;
    opening_.erase(o);
    auto it = calls_.find(cid);
    if (it == calls_.end()) return;
    Call& c = *it->second;
    // A call that already relays media goes on with what it has: the new m-lines are rejected.
    auto failed = c.legs.empty() ? Call::State::Failed : Call::State::Open;
    if (!malformed.empty()) {
        EP_WARN(kLog, "call {}: edge-e's media answer is malformed: {}", cid, malformed);
        give_back();
        c.state = failed;
    } else if (*type == "media_opened") {
        opened(c, j);
    } else {
        EP_WARN(kLog, "call {}: edge-e refused media: {}", cid, *error);
        c.state = failed;
    }
    run_waiting(cid);
}

void MediaB2bua::opened(Call& c, const nlohmann::json& j) {
    uint64_t session = j.value("session", uint64_t(0));
    std::string e_addr = j.value("address", "");
    uint16_t mux_port = j.value("mux_port", uint16_t(0));
    auto fail = [&](std::string why) {
        EP_WARN(kLog, "call {}: media relay unavailable: {}", c.call_id, why);
        c.link->send_control(nlohmann::json{{"type", "media_close"}, {"session", session}}.dump());
        c.state = c.legs.empty() ? Call::State::Failed : Call::State::Open;
    };
    if (c.lm && c.e_addr != e_addr) return fail("edge-e answered another media address for the same call");
    auto* lm = c.lm ? c.lm : link_media(c.link, mux_port);
    if (!lm) return fail("no traversal socket");
    if (lm->mux.port() != mux_port) return fail("edge-e answered another traversal port for the same link");
    if (!alloc_) return fail("media.address is not usable");
    auto streams = j.value("streams", nlohmann::json::array());
    if (!streams.is_array() || streams.size() != c.want.size())
        return fail("edge-e answered a wrong stream count");
    // Every port first, then the commit: a failure half-way leaves the call as it was.
    std::vector<std::unique_ptr<Leg>> fresh;
    for (auto& s : streams) {
        auto pair = alloc_->allocate();
        if (!pair) return fail("media.ports: " + pair.error().message);
        auto leg = std::make_unique<Leg>();
        leg->call = &c;
        leg->e_port = s.value("port", uint16_t(0));
        leg->chan[0] = s.value("rtp", uint32_t(0));
        leg->chan[1] = s.value("rtcp", uint32_t(0));
        leg->c_port = pair->port;
        leg->in[0] = std::move(pair->rtp);
        leg->in[1] = std::move(pair->rtcp);
        fresh.push_back(std::move(leg));
    }
    for (size_t k = 0; k < fresh.size(); ++k) {
        Leg* raw = fresh[k].get();
        for (int w = 0; w < 2; ++w) {
            raw->in_watch[w] = std::make_unique<core::IoWatcher>(
                loop_, raw->in[w].fd(), core::IoWatcher::Interest::ReadLevel,
                [this, raw, w](short) { on_internal(*raw, w); });
            channels_[raw->chan[w]] = {raw, w};
        }
        size_t line = c.want[k];
        if (c.slots.size() <= line) c.slots.resize(line + 1, nullptr);
        c.slots[line] = raw;
        c.legs.push_back(std::move(fresh[k]));
    }
    c.sessions.push_back(session);
    c.e_addr = e_addr;
    if (!c.lm) {
        c.lm = lm;
        ++lm->calls;
    }
    c.state = Call::State::Open;
    if (!c.counted) {
        c.counted = true;
        m_.sessions->add(1);
    }
    // Tells edge-e where our traversal socket is before any media needs it.
    uint8_t ka[media::kTraversalHeader];
    media::write_traversal_header(ka, {c.legs.front()->chan[0], false});
    lm->sock.send_to(ka, sizeof ka, lm->mux);
}

MediaB2bua::LinkMedia* MediaB2bua::link_media(link::LinkConn* link, uint16_t mux_port) {
    auto& lm = links_[link];
    if (lm) return lm.get();
    auto mux = net::numeric_addr(link->connection().peer().ip(), mux_port);
    if (!mux) return nullptr;
    auto bind_to = net::numeric_addr(mux->family() == AF_INET6 ? "::" : "0.0.0.0", 0);
    if (!bind_to) return nullptr;
    auto s = media::UdpSocket::bind(*bind_to);
    if (!s) {
        EP_WARN(kLog, "traversal socket: {}", s.error().message);
        links_.erase(link);
        return nullptr;
    }
    auto n = std::make_unique<LinkMedia>();
    n->link = link;
    n->sock = std::move(*s);
    n->mux = *mux;
    LinkMedia* raw = n.get();
    n->watch = std::make_unique<core::IoWatcher>(loop_, n->sock.fd(), core::IoWatcher::Interest::ReadLevel,
                                                 [this, raw](short) { on_traversal(*raw); });
    lm = std::move(n);
    return raw;
}

void MediaB2bua::run_waiting(const std::string& cid) {
    for (;;) {
        auto it = calls_.find(cid);
        if (it == calls_.end()) return;
        Call& c = *it->second;
        if (c.state == Call::State::Opening || c.waiting.empty()) return;
        auto step = std::move(c.waiting.front());
        c.waiting.pop_front();
        step(&c);
    }
}

void MediaB2bua::handle(Call& c, From from, sip::Message&& m, Continue next, bool may_open) {
    auto cseq = m.cseq();
    std::string_view method = m.is_request() ? std::string_view(m.method())
                              : cseq         ? std::string_view(cseq->method)
                                             : std::string_view();
    bool sdp = is_sdp(m);
    bool offer = false, classified = false;
    if (m.is_request()) {
        if (method == "BYE") {
            release(c.call_id, "BYE");
            next(std::move(m), 0, {});
            return;
        }
        if (method == "CANCEL") {
            if (!c.established) release(c.call_id, "CANCEL");
            next(std::move(m), 0, {});
            return;
        }
        if (method == "INVITE") {
            c.invite_had_sdp = sdp;
            offer = classified = sdp;
        } else if (method == "ACK" && sdp) {
            classified = true; // the answer to a 2xx offer (late offer)
        }
    } else if (method == "INVITE") {
        int st = m.status();
        if (st >= 200 && st < 300) c.established = true;
        if (st >= 300 && !c.established) {
            release(c.call_id, fmt::format("INVITE answered {}", st));
            next(std::move(m), 0, {});
            return;
        }
        if (sdp && st > 100 && st < 300) {
            classified = true;
            offer = !c.invite_had_sdp;
        }
    }
    if (!classified) {
        next(std::move(m), 0, {});
        return;
    }
    bool req = m.is_request();
    auto sdp_r = media::Sdp::parse(m.body());
    if (sdp_r && offer && may_open && c.state != Call::State::Opening) {
        // m-lines we can relay that have no relay yet: the call's first offer, or a re-offer adding video,
        // content or floor control mid-call. Past kMaxStreams they are rejected.
        std::vector<size_t> want;
        for (size_t i = 0; i < sdp_r->media.size(); ++i)
            if (media::relay_kind(sdp_r->media[i]) != media::RelayKind::None &&
                (i >= c.slots.size() || !c.slots[i]) && c.legs.size() + want.size() < kMaxStreams)
                want.push_back(i);
        if (!want.empty()) {
            c.want = std::move(want);
            open(c, c.want.size());
            if (c.state == Call::State::Opening) {
                auto held = std::make_shared<sip::Message>(std::move(m));
                c.waiting.push_front([this, from, held, next = std::move(next)](Call* c) mutable {
                    if (!c) {
                        next(std::move(*held), 0, {});
                        return;
                    }
                    handle(*c, from, std::move(*held), std::move(next), false);
                });
                return;
            }
        }
    }
    if (c.state != Call::State::Open) {
        if (req) {
            refused_.unavailable->inc();
            next(std::move(m), 503, "Media relay unavailable");
            if (!c.established) release(c.call_id, "media relay unavailable");
            return;
        }
        next(std::move(m), 0, {});
        return;
    }
    if (!sdp_r) {
        EP_INFO(kLog, "call {}: bad SDP from the {}: {}", c.call_id,
                from == From::Client ? "client" : "internal side", sdp_r.error().message);
        if (req) {
            next(std::move(m), 400, "Malformed SDP");
            if (!c.established) release(c.call_id, "malformed SDP");
            return;
        }
        next(std::move(m), 0, {});
        return;
    }
    int status = from == From::Client ? rewrite_from_client(c, *sdp_r, offer)
                                      : rewrite_from_internal(c, *sdp_r, offer);
    if (status) {
        refused_.unencrypted->inc();
        if (req && offer) {
            next(std::move(m), status, "Not Acceptable Here");
            if (!c.established) release(c.call_id, "unencrypted offer");
            return;
        }
    }
    m.set_body(sdp_r->serialize(), "application/sdp");
    next(std::move(m), 0, {});
}

int MediaB2bua::rewrite_from_client(Call& c, media::Sdp& sdp, bool offer) {
    std::vector<media::LineView> views(sdp.media.size());
    bool any = false, unencrypted = false;
    for (size_t i = 0; i < sdp.media.size(); ++i) {
        auto& md = sdp.media[i];
        Leg* L = i < c.slots.size() ? c.slots[i] : nullptr;
        auto kind = media::relay_kind(md);
        if (!L || kind == media::RelayKind::None || (!offer && (!L->active || kind != L->kind))) {
            if (L && offer) L->active = false;
            continue;
        }
        media::LineView& v = views[i];
        if (kind == media::RelayKind::Bfcp) {
            // Floor control carries no media and no keys: relayed as it is, outside media.encryption.
            L->kind = kind;
            L->active = true;
            v = {true, L->c_port, {}, {}, false};
            any = true;
            continue;
        }
        std::optional<unsigned> want_tag;
        if (!offer && L->client.out_key) want_tag = L->client.out_key->tag;
        auto ck = pick_crypto(md, want_tag);
        if (!ck && cfg_.encryption == config::MediaEncryption::Force) {
            // The guide's "Force encrypted", per stream: this one is rejected on both legs, not relayed in
            // clear.
            unencrypted = true;
            EP_INFO(kLog, "call {}: m-line {} ({}) from the client without a usable a=crypto: rejected",
                    c.call_id, i, md.media);
            L->active = false;
            L->client.clear_in();
            continue;
        }
        if (ck) {
            L->client.learn(*ck, offer);
        } else {
            // best_effort with a client that does not encrypt: plain RTP on the client leg.
            L->client.clear_in();
            if (offer) L->client.clear_out();
        }
        L->kind = kind;
        L->active = true;
        any = true;
        bool mux = media::wants_rtcp_mux(md);
        if (offer) {
            // The client's rtcp-mux is offered onward and accepted towards the client in our answer.
            L->offer_mux = mux;
            L->mux_client = mux;
            // Best effort inwards: RTP/AVP with a key; the internal answer decides whether SRTP is used.
            v = {true, L->c_port, avp(md.proto), L->internal.ours_for_offer().format(), mux};
        } else {
            // The client answering our offer: it muxes if it accepted the rtcp-mux we offered; the internal
            // side is answered with what it offered.
            L->mux_client = mux && L->offer_mux;
            L->mux_internal = L->offer_mux;
            if (L->in_srtp && L->internal.out_key)
                v = {true, L->c_port, savp(md.proto), L->internal.out_key->format(), L->offer_mux};
            else
                v = {true, L->c_port, avp(md.proto), {}, L->offer_mux};
        }
    }
    media::rewrite_for_relay(sdp, views, cfg_.address);
    // An offer with nothing left to relay because of missing keys is refused as a whole (488), as before.
    if (unencrypted && !any && offer) return 488;
    if (unencrypted && !offer) {
        // Too late to refuse the call: the internal side is told port 0, the client's packets are dropped.
        EP_WARN(kLog,
                "call {}: client answered an m-line without SRTP keys: rejected towards the internal side",
                c.call_id);
        return 488;
    }
    return 0;
}

int MediaB2bua::rewrite_from_internal(Call& c, media::Sdp& sdp, bool offer) {
    std::vector<media::LineView> views(sdp.media.size());
    for (size_t i = 0; i < sdp.media.size(); ++i) {
        auto& md = sdp.media[i];
        Leg* L = i < c.slots.size() ? c.slots[i] : nullptr;
        auto kind = media::relay_kind(md);
        if (!L || kind == media::RelayKind::None || (!offer && (!L->active || kind != L->kind))) {
            if (L && offer) L->active = false;
            continue;
        }
        L->kind = kind;
        L->active = true;
        // Muxed: offered (we accept it) or accepted in the answer to our offer (which asked for it).
        bool mux = kind == media::RelayKind::Rtp && media::wants_rtcp_mux(md) && (offer || L->offer_mux);
        if (auto ip = sdp.address_of(i)) {
            uint16_t rtcp = uint16_t(md.port + 1);
            auto ra = md.attributes("rtcp");
            if (!ra.empty()) {
                unsigned p = 0;
                auto v = ra.front();
                auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), p);
                if (ec == std::errc() && p > 0 && p < 65536) rtcp = uint16_t(p);
            }
            if (mux) rtcp = md.port;
            auto a0 = net::numeric_addr(*ip, md.port);
            auto a1 = net::numeric_addr(*ip, rtcp);
            if (a0 && a1) {
                L->dst[0] = *a0;
                L->dst[1] = *a1;
            }
        }
        media::LineView& v = views[i];
        if (kind == media::RelayKind::Bfcp) {
            L->in_srtp = false;
            v = {true, L->e_port, {}, {}, false};
            continue;
        }
        std::optional<unsigned> want_tag;
        if (!offer && L->internal.out_key) want_tag = L->internal.out_key->tag;
        auto ik = pick_crypto(md, want_tag);
        L->in_srtp = ik.has_value();
        if (ik) L->internal.learn(*ik, offer);
        if (offer) {
            L->offer_mux = mux;
            L->mux_internal = mux;
        } else {
            L->mux_internal = mux;
            L->mux_client = L->offer_mux;
        }
        bool tell_mux = offer ? mux : L->offer_mux;
        if (offer || L->client.out_key)
            v = {true, L->e_port, savp(md.proto),
                 (offer ? L->client.ours_for_offer() : *L->client.out_key).format(), tell_mux};
        else
            v = {true,
                 L->e_port,
                 avp(md.proto),
                 {},
                 tell_mux}; // best_effort and a client that offered plain RTP
    }
    media::rewrite_for_relay(sdp, views, c.e_addr);
    return 0;
}

void MediaB2bua::release(const std::string& cid, std::string_view why) {
    auto it = calls_.find(cid);
    if (it == calls_.end()) return;
    auto c = std::move(it->second);
    calls_.erase(it);
    EP_DEBUG(kLog, "call {}: media released ({})", cid, why);
    if (c->state == Call::State::Opening) opening_.erase(c->req);
    if (link_alive_(c->link))
        for (uint64_t session : c->sessions)
            c->link->send_control(nlohmann::json{{"type", "media_close"}, {"session", session}}.dump());
    for (auto& leg : c->legs)
        for (int k = 0; k < 2; ++k)
            channels_.erase(leg->chan[k]);
    if (c->lm && --c->lm->calls == 0) links_.erase(c->lm->link);
    if (c->counted) m_.sessions->add(-1);
    // Whatever still waits behind this call is forwarded as it is.
    while (!c->waiting.empty()) {
        auto step = std::move(c->waiting.front());
        c->waiting.pop_front();
        step(nullptr);
    }
}

void MediaB2bua::flow_closed(uint64_t flow) {
    std::vector<std::string> gone;
    for (auto& [id, c] : calls_)
        if (c->flow == flow) gone.push_back(id);
    for (auto& id : gone)
        release(id, "client flow closed");
}

void MediaB2bua::link_closed(link::LinkConn* link) {
    std::vector<std::string> gone;
    for (auto& [id, c] : calls_)
        if (c->link == link) gone.push_back(id);
    for (auto& id : gone)
        release(id, "link closed");
    links_.erase(link);
}

void MediaB2bua::on_traversal(LinkMedia& lm) {
    media::RecvBatch& b = traversal_batch_;
    for (int round = 0; round < media::kMaxBatchesPerEvent; ++round) {
        if (lm.sock.recv_batch(b) <= 0) break;
        for (size_t i = 0; i < b.count(); ++i) {
            uint8_t* buf = b.data(i);
            size_t n = b.len(i);
            if (n > b.cap()) {
                m_.drop("too_big");
                continue;
            }
            if (!net::same_host(b.from(i), lm.mux)) {
                m_.drop("wrong_source");
                continue;
            }
            auto h = media::read_traversal_header(buf, n);
            auto it = h ? channels_.find(h->channel) : channels_.end();
            if (it == channels_.end() || it->second.first->call->lm != &lm ||
                (it->second.second == 1) != h->rtcp) {
                m_.drop("unknown_channel");
                continue;
            }
            auto [leg, which] = it->second;
            uint8_t* p = buf + media::kTraversalHeader;
            size_t len = n - media::kTraversalHeader;
            if (len == 0) continue;
            size_t cap = b.cap() + b.tailroom() - media::kTraversalHeader;
            if (leg->kind == media::RelayKind::Bfcp) {
                if (which == 0) forward_internal(*leg, 0, p, len);
                continue;
            }
            if (which == 0 && leg->mux_client && media::is_muxed_rtcp(p, len)) which = 1;
            if (leg->client.in_key) {
                if (!leg->client.in) {
                    m_.drop("srtp_bad");
                    continue;
                }
                auto st =
                    which ? leg->client.in->unprotect_rtcp(p, len) : leg->client.in->unprotect_rtp(p, len);
                if (st != media::SrtpStatus::Ok) {
                    m_.drop(drop_reason(st));
                    continue;
                }
            } else if (cfg_.encryption == config::MediaEncryption::Force) {
                m_.drop(
                    "srtp_bad"); // no key from the client (it answered without one): never relay cleartext
                continue;
            }
            if (leg->in_srtp && leg->internal.out) {
                auto st = which ? leg->internal.out->protect_rtcp(p, len, cap)
                                : leg->internal.out->protect_rtp(p, len, cap);
                if (st != media::SrtpStatus::Ok) {
                    m_.drop(drop_reason(st));
                    continue;
                }
            }
            forward_internal(*leg, which, p, len);
        }
        if (b.count() < media::RecvBatch::kSlots) break;
    }
    flush_tally();
    m_.kernel_drops(lm.sock.take_kernel_drops());
}

void MediaB2bua::forward_internal(Leg& leg, int which, const uint8_t* p, size_t len) {
    if (leg.dst[which].len == 0) {
        m_.drop("not_ready");
        return;
    }
    leg.call->last_ms = loop_.now_ms();
    // A muxed internal leg gets RTCP on the RTP port, from our RTP port.
    int sock = leg.mux_internal ? 0 : which;
    if (leg.in[sock].send_to(p, len, leg.dst[which])) {
        ++tally_packets_;
        tally_bytes_ += len;
    }
}

void MediaB2bua::on_internal(Leg& leg, int which) {
    media::RecvBatch& b = internal_batch_;
    size_t cap = b.cap() + b.tailroom();
    for (int round = 0; round < media::kMaxBatchesPerEvent; ++round) {
        if (leg.in[which].recv_batch(b) <= 0) break;
        for (size_t i = 0; i < b.count(); ++i) {
            uint8_t* buf = b.slot(i);
            uint8_t* p = b.data(i);
            size_t len = b.len(i);
            if (len > b.cap()) {
                m_.drop("too_big");
                continue;
            }
            if (leg.dst[0].len == 0) {
                m_.drop("not_ready");
                continue;
            }
            if (!net::same_host(b.from(i), leg.dst[0])) {
                m_.drop("wrong_source");
                continue;
            }
            int kind = which; // RTP or RTCP, whichever port it came in on
            if (leg.kind == media::RelayKind::Bfcp) {
                if (which == 0) forward_client(leg, 0, buf, len);
                continue;
            }
            if (which == 0 && leg.mux_internal && media::is_muxed_rtcp(p, len)) kind = 1;
            if (leg.in_srtp && leg.internal.in) {
                auto st =
                    kind ? leg.internal.in->unprotect_rtcp(p, len) : leg.internal.in->unprotect_rtp(p, len);
                if (st != media::SrtpStatus::Ok) {
                    m_.drop(drop_reason(st));
                    continue;
                }
            }
            if (leg.client.out) {
                auto st = kind ? leg.client.out->protect_rtcp(p, len, cap)
                               : leg.client.out->protect_rtp(p, len, cap);
                if (st != media::SrtpStatus::Ok) {
                    m_.drop(drop_reason(st));
                    continue;
                }
            } else if (cfg_.encryption == config::MediaEncryption::Force) {
                m_.drop("srtp_bad");
                continue;
            }
            forward_client(leg, kind, buf, len);
        }
        if (b.count() < media::RecvBatch::kSlots) break;
    }
    flush_tally();
    m_.kernel_drops(leg.in[which].take_kernel_drops());
}

void MediaB2bua::forward_client(Leg& leg, int which, uint8_t* buf, size_t len) {
    LinkMedia* lm = leg.call->lm;
    // A muxed client leg gets RTCP on its RTP port: edge-e sends what comes on the RTP channel from that
    // port.
    int ch = leg.mux_client ? 0 : which;
    media::write_traversal_header(buf, {leg.chan[ch], ch == 1});
    leg.call->last_ms = loop_.now_ms();
    if (lm->sock.send_to(buf, media::kTraversalHeader + len, lm->mux)) {
        ++tally_packets_;
        tally_bytes_ += len;
    }
}

void MediaB2bua::flush_tally() {
    if (tally_packets_) m_.packets->inc(std::exchange(tally_packets_, 0));
    if (tally_bytes_) m_.bytes->inc(std::exchange(tally_bytes_, 0));
}

void MediaB2bua::sweep() {
    uint64_t now = loop_.now_ms();
    uint64_t idle = uint64_t(cfg_.idle_timeout.count());
    std::vector<std::string> gone;
    for (auto& [id, c] : calls_) {
        if (c->state == Call::State::Opening && now - c->opened_at > kOpenTimeoutMs) {
            EP_WARN(kLog, "call {}: edge-e did not answer media_open", id);
            opening_.erase(c->req);
            c->state = c->legs.empty() ? Call::State::Failed : Call::State::Open;
            loop_.post([this, id = id] { run_waiting(id); });
            continue;
        }
        uint64_t limit = c->established ? idle : std::max(idle, kSetupTimeoutMs);
        if (now - c->last_ms > limit) gone.push_back(id);
    }
    for (auto& id : gone)
        release(id, "idle");
    if (++sweeps_ % kKeepaliveSweeps == 0) {
        for (auto& [id, c] : calls_) {
            if (c->state != Call::State::Open || c->legs.empty() || !c->lm) continue;
            uint8_t ka[media::kTraversalHeader];
            media::write_traversal_header(ka, {c->legs.front()->chan[0], false});
            c->lm->sock.send_to(ka, sizeof ka, c->lm->mux);
        }
    }
}

} // namespace edgepair::edge_c
