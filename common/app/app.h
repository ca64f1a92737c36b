#pragma once
// The process skeleton both edges run: the main loop and the workers, the admin endpoint with /health,
// /ready, /status and /metrics, SIGHUP reload (a configuration that does not validate is refused and the
// running one kept), SIGTERM drain with a deadline (a second signal exits now), and an orderly stop in
// which every worker frees what runs on it on its own thread. An edge supplies only its roles.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/app/sd_notify.h"
#include "common/config/auth_db.h"
#include "common/config/types.h"
#include "common/core/process.h"
#include "common/core/result.h"
#include "common/http/rate_limit.h"
#include "common/media/media_metrics.h"
#include "common/obs/access_log.h"
#include "common/obs/alarms.h"
#include "common/obs/metrics.h"

namespace edgepair::app {

// The sections of a configuration the skeleton itself reads; both edges' configurations have them.
struct Basics {
    std::string node_name;
    unsigned workers = 0; // 0 = one per core
    config::LogConfig log;
    config::Address admin;
    bool media = false;             // a `media:` section is present
    config::AdminConfig admin_auth; // its username/password_hash, when set, guard the admin endpoint
};

template <class Config> Basics basics_of(const Config& cfg) {
    return Basics{cfg.node_name, cfg.workers, cfg.log, cfg.admin.listen, cfg.media.has_value(), cfg.admin};
}

class App;

// A certificate file whose expiry raises `cert.expiring:<subject>` alarms.
struct CertFile {
    std::string key;  // the configuration key ("tls.default_certificate.cert"), for the alarm text
    std::string path; // every certificate in it is checked (a CA bundle holds many)
};

// What an edge is, beyond the skeleton. Every call runs on the main loop unless it says otherwise.
class Roles {
  public:
    virtual ~Roles() = default;
    // The running configuration's common sections.
    virtual Basics basics() const = 0;
    // Before the workers start: per-worker objects and main-loop services. An error stops the start.
    virtual Result<void> create(App& app) = 0;
    // On worker `w`'s thread, before its loop runs.
    virtual void init_worker(core::Worker& w) = 0;
    // After the workers run: listeners, links, discovery, extra admin routes.
    virtual void start() = 0;
    // Reload, first half: read, validate and build `path` without applying any of it. An error (the whole
    // explanation, one problem a line) leaves the running configuration untouched.
    virtual Result<void> prepare(const std::string& path) = 0;
    // Reload, second half: swap in what prepare() built and hand it to the workers.
    virtual void commit() = 0;
    // Empty when ready, else why not (/ready answers 503 with it). Not called while draining.
    virtual std::string ready_reason() = 0;
    // The edge's members of the /status object, each preceded by a comma.
    virtual std::string status_fields() = 0;
    // Drain: stop taking new work. Then drain_left() is polled until it reaches 0 or the deadline passes.
    virtual void drain_begin() = 0;
    virtual uint64_t drain_left() = 0;
    // How long the drain waits at least (for goodbyes to reach the peer) before it polls drain_left().
    virtual uint64_t drain_grace_ms() const { return 0; }
    // On worker `w`'s thread while its loop still runs, once, before the process stops.
    virtual void teardown_worker(core::Worker& w) = 0;
    // Every second: raise or clear the edge's own alarms (link down, discovery) in App::alarms().
    virtual void check_alarms() {}
    // The running configuration's certificates and trusted CAs (checked at start, after a reload, daily).
    virtual std::vector<CertFile> cert_files() const { return {}; }
};

class App {
  public:
    static constexpr uint64_t kDrainDeadlineMs = 10000;
    static constexpr uint64_t kAlarmTickMs = 1000;
    static constexpr int kPageRefreshS = 5;
    static constexpr unsigned kAdminAuthRunsPerSecond = 4; // PBKDF2 runs for admin credentials

    // `name` ("edge-e") names the process in logs and /status; `media_drops` are the edge's media drop
    // reasons (every one shows in /metrics from the start).
    App(std::string name, std::string config_path, std::initializer_list<const char*> media_drops);
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    // Runs until stopped; the exit status of the process.
    int run(Roles& roles);

    const std::string& name() const { return name_; }
    obs::Registry& metrics() { return metrics_; }
    const media::MediaMetrics& media_metrics() const { return media_metrics_; }
    // Valid inside run() from Roles::create on.
    core::Process& process() { return *process_; }
    core::Loop& main_loop() { return process_->main_loop(); }
    admin::Server& admin() { return *admin_; }
    bool draining() const { return draining_; }
    // Any thread may raise or clear (alarms.h).
    obs::AlarmTable& alarms() { return alarms_; }

  private:
    void reload();
    void drain();
    void stop();
    std::string ready_reason();
    std::string status_json();
    // The service manager's side of /ready and of the main loop's liveness (sd_notify.h).
    void systemd_tick();
    void install_page_routes();
    admin::Server::Checker admin_checker(config::AuthDb db);
    void alarm_tick();
    void check_certs();

    std::string name_, config_path_;
    obs::Registry metrics_;
    media::MediaMetrics media_metrics_;
    obs::AlarmTable alarms_{&metrics_};
    obs::Counter* reloads_ok_ = nullptr;
    obs::Counter* reloads_error_ = nullptr;
    Roles* roles_ = nullptr;
    std::unique_ptr<core::Process> process_;
    std::unique_ptr<admin::Server> admin_;
    uint64_t started_ms_ = 0;
    uint64_t reloads_ = 0;
    bool draining_ = false;
    bool stopping_ = false;
    std::unique_ptr<core::Timer> drain_timer_;
    std::unique_ptr<core::Timer> alarm_timer_;
    uint64_t next_cert_check_ms_ = 0;
    SystemdNotifier systemd_;
    std::unique_ptr<core::Timer> systemd_timer_;
    bool systemd_ready_ = false; // READY=1 sent
    std::string systemd_status_;
};

// /status: every worker's link states (each worker's a run of JSON objects, maybe none) as one array body.
template <class Workers> std::string links_json(const Workers& workers) {
    std::string out;
    for (auto& w : workers) {
        auto j = w->links_json();
        if (j.empty()) continue;
        if (!out.empty()) out += ',';
        out += j;
    }
    return out;
}

// A generation's rate limiter: the running one's when its settings did not change (a reload must not hand
// everyone a fresh burst), else a new one.
std::shared_ptr<http::KeyedRateLimiter> carry_limiter(const std::shared_ptr<http::KeyedRateLimiter>& running,
                                                      const http::RateLimitOptions& want);

// A generation's access log (`log.access`): null when off, else opened now (a reload reopens the file).
Result<std::shared_ptr<const obs::AccessLog>> open_access_log(const config::AccessLogConfig& cfg,
                                                              std::string side);

// Resolves a configured address for a listener (a name is resolved once, now; "*" is any address).
net::SockAddr listen_address(const config::Address& a);

} // namespace edgepair::app
