#include "common/app/app.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "common/admin/status_page.h"
#include "common/app/cert_expiry.h"
#include "common/config/apply_logging.h"
#include "common/config/auth_db.h"
#include "common/core/version.h"
#include "common/obs/log.h"

namespace edgepair::app {

net::SockAddr listen_address(const config::Address& a) {
    auto r = a.kind == config::Address::Kind::Name ? net::resolve_blocking(a.host, a.port)
                                                   : net::numeric_addr(a.host.empty() ? "*" : a.host, a.port);
    return r ? *r : net::SockAddr{};
}

Result<std::shared_ptr<const obs::AccessLog>> open_access_log(const config::AccessLogConfig& cfg,
                                                              std::string side) {
    if (!cfg.enabled) return std::shared_ptr<const obs::AccessLog>();
    obs::AccessLogOptions o;
    o.format = cfg.format == config::LogFormat::Json ? obs::AccessFormat::Json : obs::AccessFormat::Text;
    o.file = cfg.file;
    return obs::AccessLog::open(o, std::move(side));
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
    if (!b.admin_auth.password_hash.empty()) {
        // Validated at load: the line parses. The database keeps PBKDF2 and the constant-time comparison in
        // one place.
        auto db = config::parse_auth_db(b.admin_auth.username + ":" + b.admin_auth.password_hash, "admin");
        if (!db) {
            EP_ERROR(name_, "admin.password_hash: {}", db.error().message);
            return 1;
        }
        admin_->require_basic_auth(name_ + " admin", admin_checker(std::move(*db)));
    }
    install_page_routes();
    if (auto c = roles.create(*this); !c) {
        EP_ERROR(name_, "{}", c.error().message);
        return 1;
    }
    process_->start_workers([&roles](core::Worker& w) { roles.init_worker(w); });
    process_->on_reload([this] {
        // Before READY=1 the service manager still counts the service as starting, not reloading.
        const bool tell = systemd_ready_ && !draining_;
        if (tell) systemd_.reloading();
        reload();
        if (tell) systemd_.ready();
    });
    process_->on_drain([this] {
        systemd_.stopping();
        drain();
    });
    roles.start();
    check_certs();
    alarm_timer_ = std::make_unique<core::Timer>(process_->main_loop(), [this] { alarm_tick(); });
    alarm_timer_->arm(kAlarmTickMs);
    EP_INFO(name_, "{} {} started: node {}, {} workers, admin {}", name_, kVersion, b.node_name,
            process_->workers().size(), admin_->address().str());
    if (systemd_.enabled()) {
        systemd_timer_ = std::make_unique<core::Timer>(process_->main_loop(), [this] { systemd_tick(); });
        systemd_tick();
    }
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
        alarms_.raise("config.reload_refused", obs::Severity::Major,
                      "reload of " + config_path_ +
                          " refused, the previous configuration still runs: " + p.error().message);
        return;
    }
    alarms_.clear("config.reload_refused");
    roles_->commit();
    check_certs();
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
    if (alarm_timer_) alarm_timer_->cancel();
    // Each worker frees what runs on it while its loop still turns; then the loops stop.
    process_->broadcast([this](core::Worker& w) { roles_->teardown_worker(w); },
                        [this] { process_->stop(); });
}

void App::systemd_tick() {
    // READY=1 means what /ready means, so `systemctl start` returns (and units ordered after this one start)
    // only once the box can do its job; until then, and whenever it stops being able to, the reason is the
    // unit's status line.
    std::string why = ready_reason();
    if (!systemd_ready_ && why.empty()) {
        systemd_.ready();
        systemd_ready_ = true;
    } else if (why != systemd_status_ && !draining_) {
        systemd_.status(why.empty() ? "ready" : (systemd_ready_ ? "not ready: " : "waiting: ") + why);
    }
    systemd_status_ = std::move(why);
    // The pings come from the main loop, so a main loop that stops turning gets the process restarted.
    systemd_.watchdog();
    uint64_t next = systemd_ready_ ? 1000 : 100;
    if (systemd_.watchdog_ms()) next = std::min(next, std::max<uint64_t>(systemd_.watchdog_ms() / 2, 1));
    systemd_timer_->arm(next);
}

std::string App::ready_reason() {
    if (draining_) return "draining";
    return roles_->ready_reason();
}

std::string App::status_json() {
    const Basics b = roles_->basics();
    return fmt::format(
        "{{\"role\":{},\"version\":{},\"node\":{},\"uptime_s\":{},\"workers\":{},\"reloads\":{},\"draining\":"
        "{}{},\"alarms\":{},"
        "\"media\":{{\"enabled\":{},\"sessions\":{},\"packets\":{},\"bytes\":{},\"dropped\":{}}}}}\n",
        admin::json_str(name_), admin::json_str(kVersion), admin::json_str(b.node_name),
        (process_->main_loop().now_ms() - started_ms_) / 1000, process_->workers().size(), reloads_,
        draining_ ? "true" : "false", roles_->status_fields(), alarms_.json(), b.media ? "true" : "false",
        media_metrics_.sessions->value(), media_metrics_.packets->value(), media_metrics_.bytes->value(),
        media_metrics_.dropped());
}

// ---- alarms and the status page (issue #20) ----

admin::Server::Checker App::admin_checker(config::AuthDb db) {
    // A PBKDF2 run costs tens of milliseconds of the main loop, which also answers /ready, reloads and
    // applies edge-c's pushes. So the credentials last accepted are remembered (as a SHA-256 digest, never in
    // clear) and a page refreshing every few seconds costs one hash; and at most kAdminAuthRunsPerSecond
    // runs happen in any second, so a flood of wrong passwords is refused without being hashed.
    struct State {
        config::AuthDb db;
        std::array<unsigned char, SHA256_DIGEST_LENGTH> accepted{};
        bool have_accepted = false;
        uint64_t window_ms = 0;
        unsigned runs = 0;
    };
    auto st = std::make_shared<State>();
    st->db = std::move(db);
    return [this, st](std::string_view user, std::string_view password) {
        std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
        std::string both = std::string(user) + '\0' + std::string(password);
        SHA256(reinterpret_cast<const unsigned char*>(both.data()), both.size(), digest.data());
        OPENSSL_cleanse(both.data(), both.size());
        if (st->have_accepted && CRYPTO_memcmp(digest.data(), st->accepted.data(), digest.size()) == 0)
            return true;
        const uint64_t now = process_->main_loop().now_ms();
        if (now - st->window_ms >= 1000) {
            st->window_ms = now;
            st->runs = 0;
        }
        if (st->runs >= kAdminAuthRunsPerSecond) return false;
        ++st->runs;
        if (!st->db.verify(user, password)) return false;
        st->accepted = digest;
        st->have_accepted = true;
        return true;
    };
}

void App::alarm_tick() {
    if (!draining_) roles_->check_alarms();
    if (process_->main_loop().now_ms() >= next_cert_check_ms_) check_certs();
    alarm_timer_->arm(kAlarmTickMs);
}

void App::check_certs() {
    constexpr int64_t kDay = 24 * 3600;
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::vector<std::string> keep;
    for (auto& f : roles_->cert_files()) {
        if (f.path.empty()) continue;
        auto certs = read_cert_expiry(f.path);
        const std::string unreadable = "cert.unreadable:" + f.path;
        if (!certs) {
            // Validated at load; this means the file changed on disk since, which the next reload trips over.
            alarms_.raise(unreadable, obs::Severity::Major, f.key + ": " + certs.error().message);
            keep.push_back(unreadable);
            continue;
        }
        for (auto& c : *certs) {
            const int64_t left = c.not_after_unix - now;
            if (left >= 30 * kDay) continue;
            const std::string id = "cert.expiring:" + c.subject;
            const auto sev = left < 0          ? obs::Severity::Critical
                             : left < 7 * kDay ? obs::Severity::Major
                                               : obs::Severity::Warning;
            const std::string when = left < 0 ? fmt::format("expired {} days ago", (-left) / kDay)
                                              : fmt::format("expires in {} days", left / kDay);
            alarms_.raise(id, sev, fmt::format("{} ({}): {} {}", f.key, f.path, c.subject, when));
            keep.push_back(id);
        }
    }
    alarms_.clear_family("cert.expiring:", keep);
    alarms_.clear_family("cert.unreadable:", keep);
    next_cert_check_ms_ = process_->main_loop().now_ms() + uint64_t(kDay) * 1000;
}

void App::install_page_routes() {
    auto get_only = [](admin::Server::Handler h) {
        return [h = std::move(h)](const admin::Request& r) -> admin::Response {
            if (r.method != "GET" && r.method != "HEAD") return admin::text(405, "method not allowed\n");
            return h(r);
        };
    };
    admin_->route("/alarms", get_only([this](const admin::Request&) {
                      return admin::json(200, fmt::format("{{\"role\":{},\"active\":{},\"alarms\":{}}}\n",
                                                          admin::json_str(name_), alarms_.active_count(),
                                                          alarms_.json()));
                  }));
    auto page = get_only([this](const admin::Request&) {
        auto doc = nlohmann::json::parse(status_json(), nullptr, false);
        if (doc.is_discarded()) return admin::text(500, "status document does not parse\n");
        const std::string why = ready_reason();
        const std::string metrics = metrics_.render();
        return admin::Response{200, "text/html; charset=utf-8",
                               admin::render_status_page({doc, why, metrics, kPageRefreshS})};
    });
    admin_->route("/", page);
    admin_->route("/status.html", page);
    admin_->route("/status.css", get_only([](const admin::Request&) {
                      return admin::Response{200, "text/css; charset=utf-8", admin::status_page_css()};
                  }));
}

} // namespace edgepair::app
