#include "common/app/app.h"

#include <fmt/format.h>

#include "common/config/apply_logging.h"
#include "common/core/version.h"
#include "common/obs/log.h"

namespace edgepair::app {

net::SockAddr listen_address(const config::Address& a) {
    auto r = a.kind == config::Address::Kind::Name ? net::resolve_blocking(a.host, a.port)
                                                   : net::numeric_addr(a.host.empty() ? "*" : a.host, a.port);
    return r ? *r : net::SockAddr{};
}

std::shared_ptr<http::KeyedRateLimiter> carry_limiter(const std::shared_ptr<http::KeyedRateLimiter>& running,
                                                      const http::RateLimitOptions& want) {
    if (running && running->options().rate == want.rate && running->options().burst == want.burst)
        return running;
    return std::make_shared<http::KeyedRateLimiter>(want);
}

App::App(std::string name, std::string config_path, std::initializer_list<const char*> media_drops)
    : name_(std::move(name)), config_path_(std::move(config_path)) {
    // Registered up front so both results show (at 0) before the first reload.
    reloads_ok_ =
        &metrics_.counter("edgepair_config_reloads_total", "Configuration reloads", {{"result", "ok"}});
    reloads_error_ =
        &metrics_.counter("edgepair_config_reloads_total", "Configuration reloads", {{"result", "error"}});
    media_metrics_ = media::MediaMetrics::create(metrics_, media_drops);
}

App::~App() = default;

int App::run(Roles& roles) {
    roles_ = &roles;
    const Basics b = roles.basics();
    config::apply_logging(b.log);
    process_ = std::make_unique<core::Process>(b.workers);
    started_ms_ = process_->main_loop().now_ms();
    auto admin = admin::Server::open(process_->main_loop(), listen_address(b.admin));
    if (!admin) {
        EP_ERROR(name_, "{}", admin.error().message);
        return 1;
    }
    admin_ = std::move(*admin);
    admin::install_standard_routes(
        *admin_, metrics_, [this] { return ready_reason(); }, [this] { return status_json(); });
    if (auto c = roles.create(*this); !c) {
        EP_ERROR(name_, "{}", c.error().message);
        return 1;
    }
    process_->start_workers([&roles](core::Worker& w) { roles.init_worker(w); });
    process_->on_reload([this] { reload(); });
    process_->on_drain([this] { drain(); });
    roles.start();
    EP_INFO(name_, "{} {} started: node {}, {} workers, admin {}", name_, kVersion, b.node_name,
            process_->workers().size(), admin_->address().str());
    process_->run();
    EP_INFO(name_, "{} stopped", name_);
    return 0;
}

void App::reload() {
    if (draining_) return;
    EP_INFO(name_, "SIGHUP: reloading {}", config_path_);
    if (auto p = roles_->prepare(config_path_); !p) {
        // A bad edit must not take the appliance down: keep serving with the last good configuration.
        EP_ERROR(name_, "reload refused, keeping the running configuration:\n{}", p.error().message);
        reloads_error_->inc();
        return;
    }
    roles_->commit();
    config::apply_logging(roles_->basics().log);
    ++reloads_;
    reloads_ok_->inc();
}

void App::drain() {
    if (draining_) {
        EP_WARN(name_, "second stop signal: exiting now");
        stop();
        return;
    }
    draining_ = true;
    roles_->drain_begin();
    const uint64_t deadline = process_->main_loop().now_ms() + kDrainDeadlineMs;
    drain_timer_ = std::make_unique<core::Timer>(process_->main_loop(), [this, deadline] {
        const uint64_t left = roles_->drain_left();
        if (left == 0 || process_->main_loop().now_ms() >= deadline) {
            EP_INFO(name_, "drain done ({} left)", left);
            stop();
            return;
        }
        drain_timer_->arm(100);
    });
    drain_timer_->arm(roles_->drain_grace_ms());
}

void App::stop() {
    if (stopping_) return;
    stopping_ = true;
    if (drain_timer_) drain_timer_->cancel();
    // Each worker frees what runs on it while its loop still turns; then the loops stop.
    process_->broadcast([this](core::Worker& w) { roles_->teardown_worker(w); },
                        [this] { process_->stop(); });
}

std::string App::ready_reason() {
    if (draining_) return "draining";
    return roles_->ready_reason();
}

std::string App::status_json() {
    const Basics b = roles_->basics();
    return fmt::format(
        "{{\"role\":{},\"version\":{},\"node\":{},\"uptime_s\":{},\"workers\":{},\"reloads\":{},\"draining\":"
        "{}{},"
        "\"media\":{{\"enabled\":{},\"sessions\":{},\"packets\":{},\"bytes\":{},\"dropped\":{}}}}}\n",
        admin::json_str(name_), admin::json_str(kVersion), admin::json_str(b.node_name),
        (process_->main_loop().now_ms() - started_ms_) / 1000, process_->workers().size(), reloads_,
        draining_ ? "true" : "false", roles_->status_fields(), b.media ? "true" : "false",
        media_metrics_.sessions->value(), media_metrics_.packets->value(), media_metrics_.bytes->value(),
        media_metrics_.dropped());
}

} // namespace edgepair::app
