#include "edge-c/edge_c.h"

#include <fmt/format.h>

#include "common/config/apply_logging.h"
#include "common/core/version.h"
#include "common/obs/log.h"

namespace edgepair::edge_c {

namespace {
net::SockAddr to_sockaddr(const config::Address& a) {
    auto r = a.kind == config::Address::Kind::Name ? net::resolve_blocking(a.host, a.port)
                                                   : net::numeric_addr(a.host.empty() ? "*" : a.host, a.port);
    return r ? *r : net::SockAddr{};
}
} // namespace

EdgeC::EdgeC(std::string config_path, config::EdgeCConfig cfg) : config_path_(std::move(config_path)) {
    // Registered up front so both results show (at 0) before the first reload.
    for (const char* r : {"ok", "error"})
        metrics_.counter("edgepair_config_reloads_total", "Configuration reloads", {{"result", r}});
    auto g = build(std::move(cfg));
    if (!g) throw std::runtime_error(g.error().message);
    gen_ = *g;
}

EdgeC::~EdgeC() = default;

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
    gen->cfg = std::move(cfg);
    return std::shared_ptr<const Generation>(gen);
}

int EdgeC::run() {
    auto& cfg = gen_->cfg;
    config::apply_logging(cfg.log);
    process_ = std::make_unique<core::Process>(cfg.workers);
    started_ms_ = process_->main_loop().now_ms();
    auto admin = admin::Server::open(process_->main_loop(), to_sockaddr(cfg.admin.listen));
    if (!admin) {
        EP_ERROR("edge-c", "{}", admin.error().message);
        return 1;
    }
    admin_ = std::move(*admin);
    admin::install_standard_routes(
        *admin_, metrics_, [this] { return ready_reason(); }, [this] { return status_json(); });
    process_->start_workers([](core::Worker&) {});
    process_->on_reload([this] { reload(); });
    process_->on_drain([this] { drain(); });
    EP_INFO("edge-c", "edge-c {} started: node {}, {} workers, admin {}", kVersion, cfg.node_name,
            process_->workers().size(), admin_->address().str());
    process_->run();
    EP_INFO("edge-c", "edge-c stopped");
    return 0;
}

void EdgeC::reload() {
    if (draining_) return;
    EP_INFO("edge-c", "SIGHUP: reloading {}", config_path_);
    config::Diagnostics diag;
    auto cfg = config::load_edge_c_config(config_path_, &diag);
    if (!cfg) {
        EP_ERROR("edge-c", "reload refused, keeping the running configuration:\n{}", cfg.error().message);
        metrics_.counter("edgepair_config_reloads_total", "Configuration reloads", {{"result", "error"}}).inc();
        return;
    }
    for (auto& w : diag.warnings) EP_WARN("config", "{}", w.str());
    auto g = build(std::move(*cfg));
    if (!g) {
        EP_ERROR("edge-c", "reload refused, keeping the running configuration: {}", g.error().message);
        metrics_.counter("edgepair_config_reloads_total", "Configuration reloads", {{"result", "error"}}).inc();
        return;
    }
    gen_ = *g;
    config::apply_logging(gen_->cfg.log);
    ++reloads_;
    metrics_.counter("edgepair_config_reloads_total", "Configuration reloads", {{"result", "ok"}}).inc();
}

void EdgeC::drain() {
    if (draining_) {
        process_->stop();
        return;
    }
    draining_ = true;
    EP_INFO("edge-c", "draining");
    process_->stop();
}

std::string EdgeC::ready_reason() {
    if (draining_) return "draining";
    return "no traversal link to edge-e";
}

std::string EdgeC::status_json() {
    auto& cfg = gen_->cfg;
    std::string peers;
    for (auto& p : cfg.link.peers) peers += (peers.empty() ? "" : ",") + admin::json_str(p.str());
    std::string deployments;
    for (auto& d : cfg.deployments) deployments += (deployments.empty() ? "" : ",") + admin::json_str(d);
    std::string domains;
    for (auto& d : cfg.domains)
        domains += (domains.empty() ? "" : ",") +
                   fmt::format("{{\"name\":{},\"deployment\":{}}}", admin::json_str(d.name), admin::json_str(d.deployment));
    return fmt::format("{{\"role\":\"edge-c\",\"version\":{},\"node\":{},\"uptime_s\":{},\"workers\":{},"
                       "\"reloads\":{},\"draining\":{},\"link\":{{\"peers\":[{}],\"links\":[]}},"
                       "\"deployments\":[{}],\"domains\":[{}]}}\n",
                       admin::json_str(kVersion), admin::json_str(cfg.node_name),
                       (process_->main_loop().now_ms() - started_ms_) / 1000, process_->workers().size(), reloads_,
                       draining_ ? "true" : "false", peers, deployments, domains);
}

} // namespace edgepair::edge_c
