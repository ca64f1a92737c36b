#include "common/link/link_dialer.h"

#include <fmt/format.h>

#include "common/obs/log.h"

namespace edgepair::link {

LinkDialer::LinkDialer(core::Loop& loop, Config cfg, obs::Registry& metrics, LinkCallbacks app)
    : loop_(loop), cfg_(std::move(cfg)), reg_(metrics), app_(std::move(app)),
      backoff_(cfg_.backoff_min_ms, cfg_.backoff_max_ms), retry_(loop, [this] { dial(); }) {
    cfg_.link.role = Role::Acceptor;
    if (cfg_.link.peer_name.empty()) cfg_.link.peer_name = cfg_.peer_name;
    m_dials_ = &reg_.counter("edgepair_link_dials_total", "Link connection attempts to edge-e peers");
}

LinkDialer::~LinkDialer() = default;

void LinkDialer::start() {
    stopped_ = false;
    dial();
}

void LinkDialer::stop() {
    stopped_ = true;
    retry_.cancel();
    if (link_) link_->shutdown();
}

void LinkDialer::dial() {
    dead_.reset();
    if (stopped_ || link_ || resolving_) return;
    if (!cfg_.resolver || cfg_.host.empty()) return connect_to(cfg_.address);
    resolving_ = true;
    std::weak_ptr<bool> alive = alive_;
    cfg_.resolver->resolve(cfg_.host, [this, alive](Result<std::vector<net::SockAddr>> r) {
        if (alive.expired()) return;
        resolving_ = false;
        if (stopped_ || link_) return;
        if (!r || r->empty()) {
            m_dials_->inc();
            return retry_later(fmt::format("cannot resolve {}: {}", cfg_.host,
                                           r ? std::string("no address") : r.error().message));
        }
        const auto& a = (*r)[turn_++ % r->size()];
        auto addr = net::numeric_addr(a.ip(), cfg_.port);
        if (!addr)
            return retry_later(fmt::format("{} resolved to {}: {}", cfg_.host, a.ip(), addr.error().message));
        connect_to(*addr);
    });
}

void LinkDialer::connect_to(const net::SockAddr& addr) {
    cfg_.address = addr;
    m_dials_->inc();
    std::string err;
    SSL* ssl = cfg_.tls ? cfg_.tls->new_ssl(cfg_.peer_name) : nullptr;
    auto conn = net::Connection::connect(loop_, cfg_.address, ssl, &err);
    if (!conn) return retry_later(err);
    link_ = std::make_unique<LinkConn>(loop_, std::move(conn), cfg_.link, reg_);
    LinkCallbacks cb = app_;
    cb.on_up = [this] {
        backoff_.reset();
        last_error_.clear();
        if (app_.on_up) app_.on_up();
    };
    cb.on_close = [this](std::string_view why) {
        std::string reason(why);
        if (link_ && !link_->last_error().empty()) reason = link_->last_error();
        // We are inside the LinkConn's own callback: keep it alive until the next loop turn.
        dead_ = std::move(link_);
        if (app_.on_close) app_.on_close(why);
        if (stopped_) return;
        retry_later(reason);
    };
    link_->set_callbacks(std::move(cb));
    link_->start();
}

void LinkDialer::retry_later(const std::string& why) {
    last_error_ = why;
    uint64_t ms = backoff_.next();
    EP_WARN("link", "link to {} ({}): {}; redialling in {} ms (attempt {})", cfg_.peer_name,
            cfg_.address.len ? cfg_.address.str() : std::string("not resolved"), why, ms,
            backoff_.attempts());
    retry_.arm(ms);
}

} // namespace edgepair::link
