#include "edge-e/media_relay.h"

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "common/link/link_conn.h"
#include "common/media/traversal.h"
#include "common/mra/json_fields.h"
#include "common/obs/log.h"

namespace edgepair::edge_e {

namespace {
constexpr const char* kLog = "media";
constexpr uint64_t kSweepMs = 1000;
constexpr size_t kMaxStreams = 8; // audio, video, presentation, ... more is not a real call

bool same_addr(const net::SockAddr& a, const net::SockAddr& b) {
    return a.len == b.len && std::memcmp(&a.ss, &b.ss, a.len) == 0;
}
} // namespace

MediaRelay::MediaRelay(core::Loop& loop, const config::EdgeEMediaConfig& cfg, unsigned worker,
                       unsigned workers, const media::MediaMetrics& metrics)
    : loop_(loop), cfg_(cfg), m_(metrics) {
    // Each worker owns a slice of the public range so no port is ever contended between threads.
    size_t pairs = cfg.ports.size() / 2;
    size_t per = std::max<size_t>(1, pairs / std::max(1u, workers));
    uint32_t lo = cfg.ports.lo + (cfg.ports.lo & 1); // RTP on even ports
    uint32_t first = lo + 2 * per * worker;
    uint32_t last = std::min<uint32_t>(cfg.ports.hi, first + 2 * per - 1);
    if (auto ip = net::numeric_addr(cfg.listen, 0); ip && first < last)
        alloc_ = std::make_unique<media::PortPairAllocator>(*ip, uint16_t(first), uint16_t(last));
    else
        EP_ERROR(kLog, "worker {}: no media ports left in media.ports {}-{}", worker, cfg.ports.lo,
                 cfg.ports.hi);

    mux_port_ = uint16_t(cfg.traversal_ports.lo + worker);
    auto addr = net::numeric_addr(cfg.traversal_listen, mux_port_);
    if (addr) {
        auto s = media::UdpSocket::bind(*addr);
        if (s) {
            mux_ = std::move(*s);
            mux_watch_ = std::make_unique<core::IoWatcher>(
                loop_, mux_.fd(), core::IoWatcher::Interest::ReadLevel, [this](short) { on_mux(); });
        } else {
            EP_ERROR(kLog, "media.traversal_ports: cannot bind {}: {}", addr->str(), s.error().message);
        }
    }
    sweep_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        sweep();
        sweep_timer_->arm(kSweepMs);
    });
    sweep_timer_->arm(kSweepMs);
}

MediaRelay::~MediaRelay() {
    m_.sessions->add(-int64_t(sessions_.size()));
}

uint32_t MediaRelay::new_channel() {
    // Random so that a host in the DMZ spoofing edge-c's address still has to guess a live channel.
    for (;;) {
        uint32_t c = 0;
        RAND_bytes(reinterpret_cast<unsigned char*>(&c), sizeof c);
        if (c != 0 && !channels_.count(c)) return c;
    }
}

std::string MediaRelay::on_control(link::LinkConn* link, std::string_view json) {
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return {};
    // Typed reads (common/mra/json_fields.h): nlohmann's value() throws on a field of the wrong JSON type,
    // and nothing above this link callback catches. A bad message is refused, to edge-c when it has an id.
    auto req = mra::json_uint(j, "id", 0);
    auto refuse = [&](const Error& e) -> std::string {
        if (!req || !j.contains("id")) {
            EP_WARN(kLog, "bad media control message from edge-c: {}", e.message);
            return {};
        }
        EP_WARN(kLog, "media control message {} refused: {}", *req, e.message);
        return nlohmann::json{{"type", "media_failed"}, {"id", *req}, {"error", e.message}}.dump();
    };
    if (!req) return refuse(req.error());
    auto type = mra::json_string(j, "type");
    if (!type) return refuse(type.error());
    if (*type == "media_open") {
        auto client = mra::json_string(j, "client");
        if (!client) return refuse(client.error());
        auto n = mra::json_uint(j, "streams", 0, kMaxStreams);
        if (!n) return refuse(n.error());
        return open(link, *req, *client, size_t(*n));
    }
    if (*type == "media_close") {
        auto session = mra::json_uint(j, "session", 0);
        if (!session) return refuse(session.error());
        close(*session);
        return {};
    }
    EP_DEBUG(kLog, "unknown media control message {}", *type);
    return {};
}

std::string MediaRelay::open(link::LinkConn* link, uint64_t req, const std::string& client, size_t nstreams) {
    auto fail = [&](std::string why) {
        EP_WARN(kLog, "media_open for {} refused: {}", client, why);
        return nlohmann::json{{"type", "media_failed"}, {"id", req}, {"error", why}}.dump();
    };
    if (!mux_.valid()) return fail("traversal port not bound (media.traversal_ports)");
    if (!alloc_) return fail("no media ports (media.ports)");
    if (nstreams == 0 || nstreams > kMaxStreams) return fail("bad stream count " + std::to_string(nstreams));
    auto& lm = links_[link];
    if (lm.peer.len == 0) lm.peer = link->connection().peer();

    auto s = std::make_unique<Session>();
    s->id = next_id_++;
    s->link = link;
    s->client_ip = client;
    s->last_ms = loop_.now_ms();
    nlohmann::json streams = nlohmann::json::array();
    for (size_t i = 0; i < nstreams; ++i) {
        auto pair = alloc_->allocate();
        if (!pair) {
            for (auto& st : s->streams)
                for (int k = 0; k < 2; ++k)
                    channels_.erase(st->channel[k]);
            return fail(pair.error().message);
        }
        auto st = std::make_unique<Stream>();
        st->session = s.get();
        st->port = pair->port;
        st->sock[0] = std::move(pair->rtp);
        st->sock[1] = std::move(pair->rtcp);
        for (int k = 0; k < 2; ++k) {
            st->channel[k] = new_channel();
            channels_[st->channel[k]] = {st.get(), k};
            Stream* raw = st.get();
            st->watch[k] = std::make_unique<core::IoWatcher>(loop_, st->sock[k].fd(),
                                                             core::IoWatcher::Interest::ReadLevel,
                                                             [this, raw, k](short) { on_client(*raw, k); });
        }
        streams.push_back({{"port", st->port}, {"rtp", st->channel[0]}, {"rtcp", st->channel[1]}});
        s->streams.push_back(std::move(st));
    }
    uint64_t id = s->id;
    sessions_.emplace(id, std::move(s));
    m_.sessions->add(1);
    EP_DEBUG(kLog, "media session {} for {}: {} streams", id, client, nstreams);
    return nlohmann::json{{"type", "media_opened"}, {"id", req},
                          {"session", id},          {"address", cfg_.public_address},
                          {"mux_port", mux_port_},  {"streams", streams}}
        .dump();
}

void MediaRelay::close(uint64_t id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    for (auto& st : it->second->streams)
        for (int k = 0; k < 2; ++k)
            channels_.erase(st->channel[k]);
    sessions_.erase(it);
    m_.sessions->add(-1);
}

void MediaRelay::link_closed(link::LinkConn* link) {
    std::vector<uint64_t> gone;
    for (auto& [id, s] : sessions_)
        if (s->link == link) gone.push_back(id);
    for (auto id : gone)
        close(id);
    links_.erase(link);
}

void MediaRelay::on_client(Stream& st, int which) {
    Session& s = *st.session;
    media::RecvBatch& b = client_batch_;
    uint64_t packets = 0, bytes = 0;
    for (int round = 0; round < media::kMaxBatchesPerEvent; ++round) {
        ssize_t got = st.sock[which].recv_batch(b);
        if (got <= 0) break;
        for (size_t i = 0; i < b.count(); ++i) {
            const net::SockAddr& from = b.from(i);
            size_t n = b.len(i);
            if (n > b.cap()) {
                m_.drop("too_big");
                continue;
            }
            if (st.client[which].len == 0) {
                // Latch: the first packet from the client's own IP tells us where its NAT maps the stream.
                if (!s.client_ip.empty() && from.ip() != s.client_ip) {
                    m_.drop("wrong_source");
                    continue;
                }
                st.client[which] = from;
            } else if (!same_addr(from, st.client[which])) {
                m_.drop("wrong_source");
                continue;
            }
            auto lm = links_.find(s.link);
            if (lm == links_.end() || lm->second.traversal.len == 0) {
                m_.drop("not_ready"); // edge-c has not announced its traversal socket yet
                continue;
            }
            s.last_ms = loop_.now_ms();
            uint8_t* frame = b.slot(i);
            media::write_traversal_header(frame, {st.channel[which], which == 1});
            if (mux_.send_to(frame, media::kTraversalHeader + n, lm->second.traversal)) {
                ++packets;
                bytes += n;
            }
        }
        if (b.count() < media::RecvBatch::kSlots) break;
    }
    count(packets, bytes);
    m_.kernel_drops(st.sock[which].take_kernel_drops());
}

void MediaRelay::on_mux() {
    media::RecvBatch& b = mux_batch_;
    uint64_t packets = 0, bytes = 0;
    for (int round = 0; round < media::kMaxBatchesPerEvent; ++round) {
        ssize_t got = mux_.recv_batch(b);
        if (got <= 0) break;
        for (size_t i = 0; i < b.count(); ++i) {
            const uint8_t* buf = b.data(i);
            size_t n = b.len(i);
            if (n > b.cap()) {
                m_.drop("too_big");
                continue;
            }
            auto h = media::read_traversal_header(buf, n);
            if (!h) {
                m_.drop("bad_traversal_header");
                continue;
            }
            auto it = channels_.find(h->channel);
            if (it == channels_.end()) {
                m_.drop("unknown_channel");
                continue;
            }
            auto [st, which] = it->second;
            if ((which == 1) != h->rtcp) {
                m_.drop("bad_traversal_header");
                continue;
            }
            Session& s = *st->session;
            auto lm = links_.find(s.link);
            if (lm == links_.end() || !net::same_host(b.from(i), lm->second.peer)) {
                m_.drop("wrong_source");
                continue;
            }
            lm->second.traversal = b.from(i);
            size_t len = n - media::kTraversalHeader;
            if (len == 0) continue; // edge-c's keep-alive: opens the DMZ firewall and tells us its port
            s.last_ms = loop_.now_ms();
            if (st->client[which].len == 0) {
                m_.drop("not_latched");
                continue;
            }
            if (st->sock[which].send_to(buf + media::kTraversalHeader, len, st->client[which])) {
                ++packets;
                bytes += len;
            }
        }
        if (b.count() < media::RecvBatch::kSlots) break;
    }
    count(packets, bytes);
    m_.kernel_drops(mux_.take_kernel_drops());
}

void MediaRelay::count(uint64_t packets, uint64_t bytes) {
    // Once per read event, not per packet: the counters are shared by the workers.
    if (packets) m_.packets->inc(packets);
    if (bytes) m_.bytes->inc(bytes);
}

void MediaRelay::sweep() {
    uint64_t now = loop_.now_ms();
    uint64_t idle =
        uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.idle_timeout).count());
    std::vector<uint64_t> gone;
    for (auto& [id, s] : sessions_)
        if (now - s->last_ms > idle) gone.push_back(id);
    for (auto id : gone) {
        EP_INFO(kLog, "media session {} idle for {} s: released", id, idle / 1000);
        close(id);
    }
}

} // namespace edgepair::edge_e
