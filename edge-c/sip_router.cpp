#include "edge-c/sip_router.h"

#include <charconv>

#include <openssl/rand.h>

#include "common/net/dns.h"
#include "common/net/tls_context.h"
#include "common/obs/log.h"
#include "common/obs/metrics.h"
#include "common/sip/proxy.h"
#include "edge-c/edge_c.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "sip";
// A flow or upstream named in a Via branch: kMagicCookie + token + "." + the previous hop's branch. Keeping
// the previous branch makes ours a function of it, so a CANCEL or a non-2xx ACK (same branch as its INVITE)
// gets the same branch as the INVITE at the next hop without any transaction state here.
constexpr char kBranchSep = '.';
// RFC 5626 4.4.1 CRLF keep-alive on the persistent connection to Unified CM: a quiet line must not be
// closed by the node's idle timer or a firewall, because every registration through this worker names it.
constexpr uint64_t kKeepaliveMs = 30000;
// edge-e's limit on a client message is at most 1 MiB (listeners.sip_tls.max_message_size); beyond is a
// broken peer.
constexpr size_t kMaxFromEdge = 1024 * 1024;

void random_fill(uint8_t* out, size_t n) {
    if (RAND_bytes(out, int(n)) != 1) throw std::runtime_error("RAND_bytes failed");
}

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

bool dialog_forming(std::string_view method) {
    return method == "INVITE" || method == "SUBSCRIBE" || method == "REFER" || method == "NOTIFY";
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// SipFlow

SipFlow::SipFlow(SipRouter& r, link::LinkStream* s, uint64_t id, std::string domain, std::string client,
                 std::string sni, EdgeSide edge)
    : r_(r), s_(s), link_(&s->link()), id_(id), domain_(std::move(domain)), client_(std::move(client)),
      sni_(std::move(sni)), edge_(std::move(edge)), decoder_(kMaxFromEdge) {}

sip::Uri SipFlow::outside_uri() const {
    sip::Uri u;
    u.scheme = "sip";
    // The name the client connected by resolves for it (and its certificate check matches it); a client
    // that connected by address gets that address. Either way a client that reuses connections by peer
    // address (RFC 5923 style, baresip, Jabber) finds its one TLS flow again.
    u.host = !sni_.empty() ? sni_ : edge_.local_ip;
    if (edge_.local_port) u.port = edge_.local_port;
    u.params.set("transport", "tls");
    u.params.set("lr", std::nullopt);
    return u;
}

void SipFlow::on_data(link::LinkStream& s, const char* data, size_t len) {
    s.consumed(len);
    if (ended_) return;
    bool framed = decoder_.feed_each(std::string_view(data, len), [this](std::string_view msg) {
        r_.from_client(*this, msg);
        return !ended_;
    });
    if (framed) return;
    // edge-e frames each message and sends it with its boundary: this is a broken peer.
    r_.count("client_framing");
    EP_WARN(kLog, "flow {}: a message without a valid boundary on the link stream", id_);
    ended_ = true;
    r_.flow_ended(*this);
    s.reset(link::kProtocolError);
    s_ = nullptr;
    r_.flow_closed(*this); // reset() means no on_close
}

void SipFlow::close(std::string_view why) {
    if (ended_) return;
    EP_INFO(kLog, "flow {} ({}) closed: {}", id_, client_, why);
    ended_ = true;
    r_.flow_ended(*this);
    if (s_) {
        // A reset, not an end: edge-e closes the client's connection at once, whatever it is sending.
        s_->set_handler(nullptr);
        s_->reset(link::kCancel);
        s_ = nullptr;
    }
    r_.flow_closed(*this); // reset() means no on_close
}

void SipFlow::used(uint64_t upstream) {
    for (uint64_t u : upstreams)
        if (u == upstream) return;
    upstreams.push_back(upstream);
}

void SipFlow::on_end(link::LinkStream& s) {
    // The client's connection on edge-e is gone: stop routing to it now and finish our side.
    if (!ended_) {
        ended_ = true;
        r_.flow_ended(*this);
    }
    s.end();
}

void SipFlow::on_close(link::LinkStream&, const core::Failure& failure) {
    if (failure) EP_INFO(kLog, "flow {} ({}) closed: {}", id_, client_, failure.str());
    s_ = nullptr;
    if (!ended_) {
        ended_ = true;
        r_.flow_ended(*this);
    }
    r_.flow_closed(*this);
}

void SipFlow::send(std::string_view wire) {
    if (s_ && !ended_) s_->write(sip::link_encode(wire));
}

// ---------------------------------------------------------------------------------------------------------
// SipUpstream

SipUpstream::SipUpstream(SipRouter& r, uint64_t id, const mra::Zone& zone)
    : r_(r), id_(id), node_(zone.node), port_(zone.port), tls_(zone.transport == mra::ZoneTransport::Tls),
      verify_(zone.tls_verify) {}

void SipUpstream::send_raw(std::string_view wire) {
    if (state_ == State::Ready) conn_->write(wire);
}

sip::Uri SipUpstream::our_uri(uint64_t flow, bool lr) const {
    sip::Uri u;
    u.scheme = "sip";
    u.user = r_.flow_token(kFlowClient, flow);
    u.host = local_host_;
    u.port = local_port_;
    u.params.set("transport", tls_ ? "tls" : "tcp");
    if (lr) u.params.set("lr", std::nullopt);
    return u;
}

sip::Uri SipUpstream::contact_for(uint64_t flow, size_t epc, const sip::Uri& orig) const {
    sip::Uri base;
    base.scheme = "sip";
    base.host = local_host_;
    base.port = local_port_;
    base.params.set("transport", tls_ ? "tls" : "tcp");
    SipFlow* f = r_.find_flow(flow);
    return sip::mra_contact(orig, std::move(base), r_.flow_token(kFlowClient, flow), epc,
                            f ? std::string_view(f->client()) : std::string_view());
}

bool SipUpstream::write_checked(const sip::Message& m, uint64_t flow) {
    std::string wire = m.serialize();
    size_t limit = size_t(r_.worker().gen()->cfg.sip.max_message_to_node);
    if (wire.size() > limit) {
        // The node would refuse it, and may do so by closing the connection every flow shares.
        r_.count("too_large_for_node");
        if (m.is_request()) {
            sip::Message req = m;
            sip::pop_via(req); // ours: the answer goes to the client's Via
            r_.reply_to_flow(flow, req, 513);
        }
        return false;
    }
    if (SipFlow* f = r_.find_flow(flow)) f->used(id_);
    conn_->write(wire);
    return true;
}

void SipUpstream::send_response_from_client(sip::Message m, uint64_t flow) {
    if (state_ != State::Ready) {
        r_.count("upstream_gone");
        return;
    }
    SipFlow* f = r_.find_flow(flow);
    if (!f) return;
    auto v = sip::rewrite_client_contacts(
        m, f->contacts, [&](size_t idx, const sip::Uri& orig) { return contact_for(flow, idx, orig); });
    if (v != sip::ContactVerdict::ok) {
        // A response cannot be refused: it is dropped, and the node's transaction times out.
        r_.count(v == sip::ContactVerdict::malformed ? "bad_contact" : "too_many_contacts");
        return;
    }
    write_checked(m, flow);
}

void SipUpstream::send_from_client(sip::Message m, uint64_t flow) {
    if (state_ != State::Ready) {
        // Bounded: a node that never answers must not make the queue grow without limit.
        if (pending_.size() >= 1000) {
            r_.count("upstream_queue_full");
            if (m.is_request()) r_.reply_to_flow(flow, m, 503, "Unified CM connection queue full");
            return;
        }
        pending_.push_back({std::move(m), flow});
        if (state_ == State::Idle) connect();
        return;
    }
    if (m.is_request()) {
        // Contacts first: a refusal must be answered before our Via is on the message.
        const std::string& method = m.method();
        bool path = method == "REGISTER" && r_.path_headers();
        if (!path) {
            SipFlow* f = r_.find_flow(flow);
            if (!f) return; // the client left
            auto v = sip::rewrite_client_contacts(m, f->contacts, [&](size_t idx, const sip::Uri& orig) {
                return contact_for(flow, idx, orig);
            });
            if (v == sip::ContactVerdict::malformed) {
                r_.count("bad_contact");
                r_.reply_to_flow(flow, m, 400, "Malformed Contact");
                return;
            }
            if (v == sip::ContactVerdict::too_many) {
                r_.count("too_many_contacts");
                r_.reply_to_flow(flow, m, 403, "Too many distinct Contacts on this connection");
                return;
            }
        }
        auto top = m.top_via();
        std::string prev = top && top->branch() ? std::string(*top->branch()) : r_.random_token();
        sip::push_via(
            m, {tls_ ? "TLS" : "TCP", local_host_, local_port_,
                std::string(sip::kMagicCookie) + r_.flow_token(kFlowClient, flow) + kBranchSep + prev, true});
        // With Path the registrar stores the client's Contact and must reach it through us (RFC 3327): the
        // one case a Contact reaches the node as the client wrote it.
        if (path) sip::push_path(m, our_uri(flow, true));
        if (dialog_forming(method)) {
            // Outside first, so the client's route set (the reverse of Record-Route) starts at edge-e.
            if (SipFlow* f = r_.find_flow(flow)) sip::push_record_route(m, f->outside_uri());
            sip::push_record_route(m, our_uri(flow, true));
        }
    }
    write_checked(m, flow);
}

void SipUpstream::connect() {
    state_ = State::Resolving;
    std::weak_ptr<bool> alive = alive_;
    r_.worker().resolver().resolve(node_, [this, alive](Result<std::vector<net::SockAddr>> r) {
        if (alive.expired()) return;
        on_resolved(std::move(r));
    });
}

void SipUpstream::on_resolved(Result<std::vector<net::SockAddr>> r) {
    if (!r || r->empty()) {
        EP_WARN(kLog, "{}: cannot resolve: {}", node_, r ? "no address" : r.error().message);
        state_ = State::Idle;
        fail_pending("Unified CM node address unknown");
        return;
    }
    auto with_port = net::numeric_addr(r->front().ip(), port_);
    if (!with_port) {
        state_ = State::Idle;
        fail_pending("bad Unified CM address");
        return;
    }
    net::SockAddr addr = *with_port;
    peer_ip_ = addr.ip();
    r_.worker().app().share_node_address(peer_ip_, node_);
    SSL* ssl = nullptr;
    if (tls_) {
        auto g = r_.worker().gen();
        auto& ctx = verify_ ? g->upstream_verify : g->upstream_noverify;
        if (!ctx) {
            state_ = State::Idle;
            fail_pending("no TLS context for Unified CM");
            return;
        }
        ssl = ctx->new_ssl(node_);
    }
    std::string err;
    conn_ = net::Connection::connect(r_.worker().worker().loop(), addr, ssl, &err);
    if (!conn_) {
        EP_WARN(kLog, "{} ({}): connect failed: {}", node_, addr.str(), err);
        state_ = State::Idle;
        fail_pending("cannot connect to Unified CM");
        return;
    }
    state_ = State::Connecting;
    sip::FramerLimits lim;
    lim.max_message_size = size_t(r_.worker().gen()->cfg.limits.max_sip_message);
    lim.recover = true; // one message the node sends that we cannot relay must not cost the connection
    framer_ = std::make_unique<sip::Framer>(lim);
    conn_->set_callbacks({[this] { on_ready(); }, [this](const char* d, size_t n) { on_data(d, n); },
                          [this](std::string_view why) { on_closed(why); }, nullptr});
    conn_->start();
}

void SipUpstream::on_ready() {
    auto local = net::local_of(conn_->fd());
    local_host_ = local.ip();
    if (local.family() == AF_INET6) local_host_ = "[" + local_host_ + "]";
    local_port_ = local.port();
    state_ = State::Ready;
    if (!keepalive_)
        keepalive_ = std::make_unique<core::Timer>(r_.worker().worker().loop(), [this] {
            if (state_ != State::Ready) return;
            conn_->write("\r\n\r\n");
            keepalive_->arm(kKeepaliveMs);
        });
    keepalive_->arm(kKeepaliveMs);
    EP_INFO(kLog, "{}: connected over {} from {}:{}", node_, tls_ ? "TLS" : "TCP", local_host_, local_port_);
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& p : pending)
        send_from_client(std::move(p.msg), p.flow);
}

void SipUpstream::on_data(const char* d, size_t n) {
    framer_->feed(std::string_view(d, n));
    for (;;) {
        auto ev = framer_->next();
        switch (ev.type) {
        case sip::FrameEventType::need_more:
            return;
        case sip::FrameEventType::keepalive_ping:
            conn_->write("\r\n");
            break;
        case sip::FrameEventType::keepalive_pong:
        case sip::FrameEventType::stun: // not reported: this framer has FramerLimits::stun off
            break;
        case sip::FrameEventType::message: {
            std::weak_ptr<bool> alive = alive_;
            r_.from_upstream(*this, ev.message);
            if (alive.expired() || state_ != State::Ready) return;
            break;
        }
        case sip::FrameEventType::error:
            if (!ev.error->fatal) {
                on_frame_error(*ev.error);
                break;
            }
            r_.count("upstream_framing");
            EP_WARN(kLog, "{}: framing lost: {}", node_, ev.error->detail);
            conn_->abort("framing lost");
            return;
        }
    }
}

void SipUpstream::on_frame_error(const sip::FrameError& e) {
    // Skipped by the framer: the connection and every other flow on it go on.
    r_.count(std::string("upstream_") + std::string(sip::metric_label(e.code)));
    EP_WARN(kLog, "{}: message skipped: {} ({})", node_, sip::metric_label(e.code), e.detail);
    if (!e.can_reply) return; // a response: dropped, the client's transaction times out
    auto m = sip::Message::parse_head(e.head);
    if (!m || !m->is_request() || m->method() == "ACK") return;
    send_raw(sip::make_response(*m, sip::reply_status(e.code), {}, r_.random_token()).serialize());
}

void SipUpstream::on_closed(std::string_view why) {
    EP_INFO(kLog, "{}: connection closed: {}", node_, why);
    bool was_ready = state_ == State::Ready;
    state_ = State::Idle;
    if (keepalive_) keepalive_->cancel();
    // The Connection is inside its own callback: the worker frees it on the next loop turn (or with the
    // worker, should it stop first).
    r_.worker().retire(std::move(conn_));
    framer_.reset();
    fail_pending(why);
    if (was_ready) r_.upstream_lost(*this);
}

void SipUpstream::fail_pending(std::string_view why) {
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& p : pending)
        if (p.msg.is_request()) r_.reply_to_flow(p.flow, p.msg, 503, "Unified CM unreachable");
    if (!pending.empty()) EP_INFO(kLog, "{}: {} queued messages failed: {}", node_, pending.size(), why);
}

// ---------------------------------------------------------------------------------------------------------
// SipRouter

SipRouter::SipRouter(CWorker& w) : w_(w) {
    auto c = sip::FlowTokenCodec::create(w.app().flow_token_key());
    if (!c) throw std::runtime_error("flow token codec: " + c.error().message);
    tokens_.emplace(std::move(*c));
    errors_ = std::make_unique<obs::OpenLabelCounters>(w.app().metrics(), "edgepair_sip_errors_total",
                                                       "SIP messages refused or dropped by edge-c",
                                                       obs::Labels{}, "reason");
    gate_ = std::make_unique<SipAccessGate>(
        w, *this, [this](SipFlow& f, sip::Message&& m) { forward_request(f, std::move(m)); });
    auto g = w.gen();
    if (g->cfg.media) {
        MediaB2bua::Refusals refusals{&w.app().metrics().counter("edgepair_media_calls_refused_total",
                                                                 "Calls refused by the media B2BUA",
                                                                 {{"reason", "unencrypted"}}),
                                      &w.app().metrics().counter("edgepair_media_calls_refused_total",
                                                                 "Calls refused by the media B2BUA",
                                                                 {{"reason", "media_unavailable"}})};
        media_ = std::make_unique<MediaB2bua>(w.worker().loop(), *g->cfg.media, w.app().media_metrics(),
                                              refusals, [&w](link::LinkConn* l) { return w.link_alive(l); });
    }
}

void SipRouter::media_control(link::LinkConn* link, std::string_view msg) {
    if (media_) media_->on_control(link, msg);
}

void SipRouter::via_media(SipFlow& f, MediaB2bua::From from, sip::Message&& m, MediaB2bua::Continue send) {
    if (!media_) {
        send(std::move(m), 0, {});
        return;
    }
    media_->process(f.id(), f.link(), f.client(), from, std::move(m), std::move(send));
}

bool SipRouter::path_headers() const {
    return w_.gen()->cfg.sip.path_headers;
}

void SipRouter::log_transaction(std::string_view side, uint64_t id, std::string_view peer,
                                std::string_view dir, const sip::Message& m) const {
    if (!obs::Logger::get().enabled(kLog, obs::Level::Debug)) return;
    const auto* cid = m.find(sip::HeaderId::call_id);
    auto cseq = m.cseq();
    std::string what = m.is_request() ? m.method() : std::to_string(m.status());
    EP_DEBUG(kLog, "{} {} ({}) {}: {} CSeq {} {} Call-ID {}", side, id, peer, dir, what,
             cseq ? cseq->number : 0, cseq ? cseq->method : std::string("?"), cid ? cid->value : "?");
}

void SipRouter::count(std::string_view reason) {
    errors_->get(reason).inc();
}

std::string SipRouter::random_token(size_t bytes) {
    std::vector<uint8_t> b(bytes);
    random_fill(b.data(), b.size());
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (uint8_t x : b) {
        out += hex[x >> 4];
        out += hex[x & 15];
    }
    return out;
}

void SipRouter::attach(link::LinkStream* s, const link::Headers& headers) {
    auto format = link::header_value(headers, std::string(sip::kLinkFormatHeader));
    if (format != sip::kLinkFormat) {
        // An edge-e that sends messages in another format (or as a byte stream): refuse rather than misread.
        count("link_format");
        EP_WARN(kLog, "sip stream refused: message format '{}', this edge-c reads '{}'", format,
                sip::kLinkFormat);
        s->send_headers({{":status", "400"}}, true);
        return;
    }
    uint64_t id = next_flow_++;
    // Owned by the worker, freed through its one deferred-delete path (flow_closed), like the HTTP streams.
    EdgeSide edge;
    if (auto hp = net::split_host_port(link::header_value(headers, "x-edge-local"))) {
        edge.local_ip = hp->first;
        if (edge.local_ip.find(':') != std::string::npos) edge.local_ip = "[" + edge.local_ip + "]";
        edge.local_port = hp->second;
    }
    edge.name = std::string(link::header_value(headers, "x-edge-host"));
    {
        auto p = link::header_value(headers, "x-edge-sip-port");
        unsigned v = 0;
        auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (ec == std::errc() && ptr == p.data() + p.size() && v < 65536) edge.sip_port = uint16_t(v);
    }
    auto* f =
        w_.own(std::make_unique<SipFlow>(*this, s, id, std::string(link::header_value(headers, "x-domain")),
                                         std::string(link::header_value(headers, "x-client-addr")),
                                         std::string(link::header_value(headers, "x-sni")), std::move(edge)));
    flows_[id] = f;
    f->access.open(w_.gen()->access_log, "sip-flow",
                   obs::checked_request_id(link::header_value(headers, obs::kRequestIdHeader)), f->client());
    s->set_handler(f);
    s->send_headers({{":status", "200"}});
    EP_DEBUG(kLog, "flow {} from {} (domain {})", id, f->client(), f->domain());
}

SipFlow* SipRouter::find_flow(uint64_t id) {
    auto it = flows_.find(id);
    return it == flows_.end() ? nullptr : it->second;
}

void SipRouter::flow_ended(SipFlow& f) {
    flows_.erase(f.id());
    f.access.close("ended");
    if (media_) media_->flow_closed(f.id());
    if (gate_) gate_->flow_ended(f.id());
    EP_DEBUG(kLog, "flow {} ({}) ended", f.id(), f.client());
}

void SipRouter::upstream_lost(SipUpstream& u) {
    std::vector<SipFlow*> hit;
    for (auto& [id, f] : flows_)
        for (uint64_t up : f->upstreams)
            if (up == u.id()) hit.push_back(f);
    if (hit.empty()) return;
    EP_WARN(kLog, "{}: connection lost, closing the {} client flows that used it", u.node(), hit.size());
    auto& closed = w_.app().metrics().counter(
        "edgepair_sip_flows_closed_total", "Client SIP flows edge-c closed so their clients register again",
        {{"reason", "node_connection_lost"}});
    for (SipFlow* f : hit) {
        closed.inc();
        f->close("Unified CM connection lost");
    }
}

void SipRouter::flow_closed(SipFlow& f) {
    tokens_->forget({kFlowClient, f.id()});
    // Called from inside the flow's own callback: the worker frees it once the stack has unwound.
    w_.retire(&f);
}

// The flow our Via branch names: magic cookie, our flow token, kBranchSep, the previous hop's branch.
std::optional<sip::FlowId> SipRouter::branch_flow(const sip::Via& top) const {
    auto branch = top.branch();
    if (!branch || !starts_with(*branch, sip::kMagicCookie)) return std::nullopt;
    auto rest = branch->substr(sip::kMagicCookie.size());
    return tokens_->decode(rest.substr(0, rest.find(kBranchSep)));
}

std::optional<sip::FlowId> SipRouter::our_uri(const sip::Uri& u) const {
    auto token = sip::mra_flow_token(u);
    if (!token) return std::nullopt;
    return tokens_->decode(*token);
}

void SipRouter::reply_to_flow(uint64_t flow, const sip::Message& req, int status, std::string_view reason) {
    if (req.method() == "ACK") return;
    SipFlow* f = find_flow(flow);
    if (!f) return;
    auto r = sip::make_response(req, status, reason, status > 100 ? random_token() : std::string());
    if (status == 501) r.append_header("Allow", std::string(sip::mra_allow_header()));
    f->send(r.serialize());
}

void SipRouter::reply_upstream(SipUpstream& u, const sip::Message& req, int status, std::string_view reason) {
    if (req.method() == "ACK") return;
    auto r = sip::make_response(req, status, reason, status > 100 ? random_token() : std::string());
    if (status == 501) r.append_header("Allow", std::string(sip::mra_allow_header()));
    u.send_raw(r.serialize());
}

SipUpstream* SipRouter::upstream_for(const mra::Zone& z) {
    auto& u = upstreams_[z.name];
    if (!u) {
        u = std::make_unique<SipUpstream>(*this, next_upstream_++, z);
        upstream_by_id_[u->id()] = u.get();
    }
    return u.get();
}

namespace {

// The secure zone of `node` in a mixed-mode cluster, else its TCP zone.
const mra::Zone* zone_of_node(const mra::Snapshot& snap, std::string_view node) {
    const mra::Zone* tcp = nullptr;
    for (const auto& z : snap.zones) {
        if (!mra::iequals(z.node, node)) continue;
        if (z.transport == mra::ZoneTransport::Tls) return &z;
        tcp = &z;
    }
    return tcp;
}

} // namespace

const mra::Zone* SipRouter::zone_by_host(const mra::Snapshot& snap, std::string_view host) const {
    for (const auto& rule : snap.search_rules)
        if (rule.matches(host))
            if (auto* z = zone_of_node(snap, rule.node)) return z;
    for (const auto& [name, u] : upstreams_)
        if (!u->peer_ip().empty() && u->peer_ip() == host)
            if (auto* z = zone_of_node(snap, u->node())) return z;
    // A node another worker connected to (EdgeC::share_node_address).
    if (auto it = node_addresses_.find(std::string(host)); it != node_addresses_.end())
        if (auto* z = zone_of_node(snap, it->second)) return z;
    return nullptr;
}

bool SipRouter::names_node(const sip::Uri& u) const {
    if (!u.is_sip() || !u.user.empty() || u.headers) return false;
    auto snap = w_.snapshot();
    if (!snap) return false;
    const mra::Zone* z = zone_by_host(*snap, u.host);
    if (!z) return false;
    if (!u.port) return true; // the node's default SIP port
    // Any SIP port of that node (its TCP or TLS zone), never another service on the same host.
    for (const auto& other : snap->zones)
        if (mra::iequals(other.node, z->node) && other.port == *u.port) return true;
    return false;
}

bool SipRouter::names_edge(const SipFlow& f, const sip::Uri& u) const {
    if (our_uri(u)) {
        // The token is not enough: a client may copy one it saw into a URI naming another host. The port is
        // not checked: another worker's node connection (same key, same local address, its own port) wrote
        // the URIs of a dialog whose other client is on that worker.
        for (const auto& [name, up] : upstreams_)
            if (up->ready() && u.host == up->local_host()) return true;
        return false;
    }
    // edge-e: the outside Record-Route, the Route get_edge_config advertised (x-edge-host and the SIP/TLS
    // port), or an outbound-proxy Route naming the host the client reached. Host and port must both match
    // edge-e, so a Route naming anything else is never taken for ours.
    if (!u.is_sip() || !u.user.empty() || u.headers) return false;
    const EdgeSide& e = f.edge();
    bool host = (!f.sni().empty() && mra::iequals(u.host, f.sni())) ||
                (!e.name.empty() && mra::iequals(u.host, e.name)) ||
                (!e.local_ip.empty() && u.host == e.local_ip);
    if (!host) return false;
    return !u.port || (e.local_port && *u.port == e.local_port) || (e.sip_port && *u.port == e.sip_port);
}

// The zone (so the node and transport) a request from a client goes to. In order: the next Route (an
// in-dialog request follows the route set Unified CM recorded), the Request-URI host when it names a node
// (the search rules of the generated zones match on the node name), the node the flow registered with,
// then the first Unified CM node of the domain's deployment.
const mra::Zone* SipRouter::choose_zone(SipFlow& f, const sip::Message& m) {
    auto snap = w_.snapshot();
    if (!snap || snap->zones.empty()) return nullptr;
    auto zone_of = [&](std::string_view node) { return zone_of_node(*snap, node); };
    auto node_by_host = [&](std::string_view host) { return zone_by_host(*snap, host); };
    if (auto vals = m.values(sip::HeaderId::route); !vals.empty())
        if (auto na = sip::NameAddr::parse(vals.front()))
            if (auto* z = node_by_host(na->uri.host)) return z;
    if (auto ru = sip::Uri::parse(m.request_uri()); ru && ru->is_sip())
        if (auto* z = node_by_host(ru->host)) return z;
    if (!f.node.empty())
        if (auto* z = zone_of(f.node)) return z;
    std::string deployment;
    if (auto* d = snap->find_domain(f.domain())) deployment = d->deployment;
    for (auto* n : snap->nodes_of(snap->resolve_deployment(deployment), mra::NodeType::UnifiedCM))
        if (auto* z = zone_of(n->name)) return z;
    for (const auto& z : snap->zones)
        return zone_of(z.node);
    return nullptr;
}

void SipRouter::from_client(SipFlow& f, std::string_view bytes) {
    auto pm = sip::Message::parse(bytes);
    if (!pm) {
        count("client_unparseable");
        return;
    }
    sip::Message m = std::move(*pm);
    log_transaction("flow", f.id(), f.client(), "in", m);
    // What validate parses (the top Via among it) is used below rather than parsed again.
    sip::RoutingInfo info;
    auto v = sip::validate(m, {}, &info);
    if (!v.ok()) {
        count("client_invalid");
        if (m.is_request()) reply_to_flow(f.id(), m, v.status);
        return;
    }
    if (m.is_request()) {
        // RFC 3581: the client learns the address its flow comes from, in every answer (ours included).
        if (auto hp = net::split_host_port(f.client()))
            sip::fill_received_rport(m, std::move(info.top_via), hp->first, hp->second);
    }
    if (!m.is_request()) {
        // The client answers a request we relayed from Unified CM: our Via names the upstream.
        auto id = branch_flow(info.top_via);
        if (!id || id->link_stream != kFlowUpstream) {
            count("client_response_unmatched");
            return;
        }
        auto it = upstream_by_id_.find(id->connection);
        if (it == upstream_by_id_.end() || !it->second->ready()) {
            count("upstream_gone");
            return;
        }
        sip::pop_via(m);
        via_media(f, MediaB2bua::From::Client, std::move(m),
                  [this, up = id->connection, fid = f.id()](sip::Message&& m, int, std::string_view) {
                      auto it = upstream_by_id_.find(up);
                      if (it == upstream_by_id_.end() || !it->second->ready()) {
                          count("upstream_gone");
                          return;
                      }
                      it->second->send_response_from_client(std::move(m), fid);
                  });
        return;
    }
    if (auto pol = sip::mra_method_policy(m.method()); pol.status) {
        count("method_refused");
        reply_to_flow(f.id(), m, pol.status, pol.reason);
        return;
    }
    if (auto snap = w_.snapshot()) {
        // Only a domain configured with SIP off is refused: the SIP domain of a registration may differ
        // from the service discovery domains (the guide's "Unified CM registrations domains" note).
        if (auto* d = snap->find_domain(f.domain()); d && !d->services.sip_on_ucm) {
            count("domain_sip_off");
            reply_to_flow(f.id(), m, 403, "SIP not enabled for this domain");
            return;
        }
    }
    gate_->admit(f, std::move(m));
}

void SipRouter::forward_request(SipFlow& f, sip::Message&& m) {
    switch (sip::decrement_max_forwards(m)) {
    case sip::MaxForwardsResult::ok:
        break;
    case sip::MaxForwardsResult::exhausted:
        reply_to_flow(f.id(), m, 483);
        return;
    case sip::MaxForwardsResult::invalid:
        reply_to_flow(f.id(), m, 400, "Bad Max-Forwards");
        return;
    }
    auto rv = sip::apply_client_route_policy(
        m, [&](const sip::Uri& u) { return names_edge(f, u); },
        [&](const sip::Uri& u) { return names_node(u); });
    if (!rv.ok) {
        count("client_foreign_route");
        EP_INFO(kLog, "flow {} ({}): {} refused: Route {} names neither the edge nor a Unified CM node",
                f.id(), f.client(), m.method(), rv.foreign);
        reply_to_flow(f.id(), m, 403, "Route outside the Unified CM cluster");
        return;
    }
    const mra::Zone* z = choose_zone(f, m);
    if (!z) {
        count("no_node");
        reply_to_flow(f.id(), m, 503, "No Unified CM node discovered");
        return;
    }
    if (m.method() == "REGISTER") f.node = z->node;
    via_media(f, MediaB2bua::From::Client, std::move(m),
              [this, zone = *z, fid = f.id()](sip::Message&& m, int status, std::string_view reason) {
                  if (status) {
                      reply_to_flow(fid, m, status, reason);
                      return;
                  }
                  upstream_for(zone)->send_from_client(std::move(m), fid);
              });
}

void SipRouter::from_upstream(SipUpstream& u, std::string_view bytes) {
    auto pm = sip::Message::parse(bytes);
    if (!pm) {
        count("upstream_unparseable");
        return;
    }
    sip::Message m = std::move(*pm);
    log_transaction("node", u.id(), u.node(), "in", m);
    sip::RoutingInfo info;
    auto v = sip::validate(m, {}, &info);
    if (!v.ok()) {
        count("upstream_invalid");
        EP_INFO(kLog, "{}: invalid message: {}", u.node(), v.detail);
        if (m.is_request()) reply_upstream(u, m, v.status);
        return;
    }
    if (!m.is_request()) {
        auto id = branch_flow(info.top_via);
        if (!id || id->link_stream != kFlowClient) {
            count("upstream_response_unmatched");
            return;
        }
        SipFlow* f = find_flow(id->connection);
        if (!f) return; // the client left; nothing to answer
        sip::pop_via(m);
        if (info.cseq.method == "REGISTER" && !f->contacts.empty()) {
            // Show the client the bindings as it registered them, not as Unified CM stores them.
            // The table holds what Uri::to_string wrote for a parsed Contact, so its text goes back as is.
            (void)sip::rewrite_contacts(m, [&](const sip::Uri& uri) -> std::optional<std::string> {
                auto fid = our_uri(uri);
                auto epc = uri.params.get("epc");
                if (!fid || fid->connection != f->id() || !epc) return std::nullopt;
                const std::string* o = f->contacts.lookup(*epc);
                if (!o) return std::nullopt;
                return *o;
            });
        }
        via_media(*f, MediaB2bua::From::Internal, std::move(m),
                  [this, fid = f->id()](sip::Message&& m, int, std::string_view) {
                      if (auto* f = find_flow(fid)) f->send(m.serialize());
                  });
        return;
    }
    // A request from Unified CM towards a client (INVITE, NOTIFY, OPTIONS, BYE, ...).
    if (auto pol = sip::mra_method_policy(m.method()); pol.status) {
        count("method_refused");
        reply_upstream(u, m, pol.status, pol.reason);
        return;
    }
    switch (sip::decrement_max_forwards(m)) {
    case sip::MaxForwardsResult::ok:
        break;
    case sip::MaxForwardsResult::exhausted:
        reply_upstream(u, m, 483);
        return;
    case sip::MaxForwardsResult::invalid:
        reply_upstream(u, m, 400, "Bad Max-Forwards");
        return;
    }
    // The flow: from the top Route (our Record-Route or Path) or else the Request-URI (our Contact).
    std::optional<sip::FlowId> fid;
    auto popped = sip::pop_route_if(m, [&](const sip::Uri& uri) {
        fid = our_uri(uri);
        return fid.has_value();
    });
    if (!popped) {
        reply_upstream(u, m, 400, "Malformed Route");
        return;
    }
    if (!*popped) fid.reset();
    auto ru = sip::Uri::parse(m.request_uri());
    if (!fid && ru) fid = our_uri(*ru);
    if (!fid || fid->link_stream != kFlowClient) {
        if (m.method() == "OPTIONS") {
            // A keep-alive ping aimed at edge-c itself.
            reply_upstream(u, m, 200);
            return;
        }
        count("no_flow_token");
        reply_upstream(u, m, 404, "No such MRA flow");
        return;
    }
    SipFlow* f = find_flow(fid->connection);
    if (!f) {
        count("flow_gone");
        reply_upstream(u, m, 430, "Flow Failed"); // RFC 5626 11.6
        return;
    }
    // The outside Record-Route entry (edge-e) follows ours in the route set: it names the hop the request is
    // about to take, so it is ours to remove too; the client never sees a Route naming edge-e.
    for (;;) {
        auto more = sip::pop_route_if(m, [&](const sip::Uri& uri) { return names_edge(*f, uri); });
        if (!more || !*more) break;
    }
    if (ru && our_uri(*ru) && ru->params.has("epc")) {
        // Our rewritten Contact: give the client back the Request-URI it registered.
        if (const std::string* o = f->contacts.lookup(*ru->params.get("epc"))) m.set_request_uri(*o);
    }
    // The top Via is still the one validate parsed: nothing above touches the Vias.
    auto top_branch = info.top_via.branch();
    std::string prev = top_branch ? std::string(*top_branch) : random_token();
    std::string up_token = flow_token(kFlowUpstream, u.id());
    std::string via_host = w_.gen()->cfg.node_name;
    sip::push_via(m, {"TLS", via_host.empty() ? u.local_host() : via_host, std::nullopt,
                      std::string(sip::kMagicCookie) + up_token + kBranchSep + prev, false});
    if (dialog_forming(m.method())) {
        sip::Uri rr;
        rr.scheme = "sip";
        rr.user = flow_token(kFlowClient, f->id());
        rr.host = u.local_host();
        rr.port = u.local_port();
        rr.params.set("transport", u.tls() ? "tls" : "tcp");
        rr.params.set("lr", std::nullopt);
        sip::push_record_route(m, rr);
        // Then the outside entry, on top: the client's route set (the Record-Route in order, for a UAS)
        // starts at edge-e, reached over the client's TLS flow.
        sip::push_record_route(m, f->outside_uri());
    }
    via_media(*f, MediaB2bua::From::Internal, std::move(m),
              [this, fid = f->id(), up = u.id()](sip::Message&& m, int status, std::string_view reason) {
                  auto* f = find_flow(fid);
                  if (!status && f) {
                      f->send(m.serialize());
                      return;
                  }
                  auto it = upstream_by_id_.find(up);
                  if (it == upstream_by_id_.end() || !it->second->ready()) return;
                  // Our Via is on top; the answer goes to the one below it.
                  sip::pop_via(m);
                  if (status)
                      reply_upstream(*it->second, m, status, reason);
                  else
                      reply_upstream(*it->second, m, 430, "Flow Failed");
              });
}

} // namespace edgepair::edge_c
