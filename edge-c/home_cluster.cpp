#include "edge-c/home_cluster.h"

#include <fmt/format.h>
#include <pugixml.hpp>

#include "common/obs/log.h"
#include "edge-c/credentials.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "auth";

std::string_view local_name(const char* n) {
    std::string_view s(n);
    auto c = s.find(':');
    return c == std::string_view::npos ? s : s.substr(c + 1);
}

pugi::xml_node child_el(pugi::xml_node n, std::string_view name) {
    for (auto c : n.children())
        if (c.type() == pugi::node_element && local_name(c.name()) == name) return c;
    return {};
}

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

// "https://host:8443/cucm-uds/user/x" -> "host" (brackets kept for an IPv6 literal).
std::string host_of_uri(std::string_view uri) {
    auto p = uri.find("://");
    if (p == std::string_view::npos) return {};
    uri.remove_prefix(p + 3);
    uri = uri.substr(0, uri.find_first_of("/?#"));
    if (!uri.empty() && uri.front() == '[') return std::string(uri.substr(0, uri.find(']') + 1));
    return std::string(uri.substr(0, uri.find(':')));
}

// ".../cucm-uds/user/<id>[/]" -> "<id>", percent-decoded; empty for anything else, or an id UDS cannot hold
// ('/', control characters) or that is not a plain segment.
std::string user_id_of_uri(std::string_view uri) {
    uri = uri.substr(0, uri.find_first_of("?#"));
    constexpr std::string_view kUser = "/cucm-uds/user/";
    auto p = uri.find(kUser);
    if (p == std::string_view::npos) return {};
    std::string_view seg = uri.substr(p + kUser.size());
    if (!seg.empty() && seg.back() == '/') seg.remove_suffix(1);
    if (seg.empty() || seg.find('/') != std::string_view::npos) return {};
    auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
    };
    std::string out;
    for (size_t i = 0; i < seg.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(seg[i]);
        if (c == '%') {
            if (i + 2 >= seg.size()) return {}; // a truncated escape
            const int hi = hex(seg[i + 1]), lo = hex(seg[i + 2]);
            if (hi < 0 || lo < 0) return {};
            c = static_cast<unsigned char>(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || c == '/') return {};
        out.push_back(char(c));
    }
    if (out == "." || out == ".." || out.size() > 256) return {};
    return out;
}

} // namespace

std::optional<ClusterUserAnswer> parse_cluster_user(std::string_view body) {
    pugi::xml_document doc;
    if (!doc.load_buffer(body.data(), body.size())) return std::nullopt;
    auto root = child_el(doc, "clusterUser");
    if (!root) return std::nullopt;
    ClusterUserAnswer a;
    auto result = child_el(root, "result");
    a.found = std::string_view(result.attribute("found").value()) == "true";
    if (!a.found) return a;
    a.user_id = user_id_of_uri(result.attribute("uri").value());
    a.home_host = trim(child_el(root, "homeCluster").child_value());
    if (a.home_host.empty()) a.home_host = host_of_uri(result.attribute("uri").value());
    a.home_host = mra::to_lower(a.home_host);
    return a;
}

std::vector<std::vector<std::string>> ucm_clusters(const mra::Snapshot& snap, std::string_view deployment) {
    std::vector<std::string> keys;
    std::vector<std::vector<std::string>> up, down;
    for (const mra::UcNode* n : snap.nodes_of(deployment, mra::NodeType::UnifiedCM)) {
        size_t i = 0;
        while (i < keys.size() && keys[i] != n->publisher)
            ++i;
        if (i == keys.size()) {
            keys.push_back(n->publisher);
            up.emplace_back();
            down.emplace_back();
        }
        (n->status == mra::NodeStatus::Unreachable ? down : up)[i].push_back(n->name);
    }
    for (size_t i = 0; i < up.size(); ++i)
        up[i].insert(up[i].end(), down[i].begin(), down[i].end());
    return up;
}

struct HomeClusterFinder::Lookup {
    std::string key, deployment, user;
    std::vector<Callback> callbacks;
    std::vector<std::vector<std::string>> clusters;
    size_t cluster = 0, node = 0;
    bool unanswered = false; // some cluster could not be asked
    std::string last_error;
};

HomeClusterFinder::HomeClusterFinder(core::Loop& loop, http::Client& client, HomeClusterOptions opts)
    : loop_(loop), client_(client), opts_(std::move(opts)) {}

HomeClusterFinder::~HomeClusterFinder() {
    *alive_ = false;
}

std::string HomeClusterFinder::key_of(std::string_view deployment, std::string_view user) {
    // UDS user ids are case-insensitive; the same id in two deployments is two users.
    std::string k(deployment);
    k.push_back('\0');
    k += mra::to_lower(user);
    return k;
}

void HomeClusterFinder::forget(std::string_view deployment, std::string_view user) {
    cache_.erase(key_of(deployment, user));
}

Result<HomeCluster> HomeClusterFinder::home_from(const mra::Snapshot& snap, const std::string& deployment,
                                                 const std::string& host, const std::string& user_id) const {
    for (const auto& c : ucm_clusters(snap, deployment))
        for (const auto& n : c)
            if (n == host) {
                HomeCluster h;
                h.node = host;
                h.user_id = user_id;
                h.nodes.push_back(host);
                for (const auto& o : c)
                    if (o != host) h.nodes.push_back(o);
                return h;
            }
    return make_error(fmt::format("upstream: clusterUser names home cluster {}, which is not a discovered "
                                  "Unified CM node of deployment '{}'",
                                  host, deployment));
}

void HomeClusterFinder::find(std::string_view deployment, std::string_view user, Callback cb) {
    auto snap = opts_.snapshot ? opts_.snapshot() : nullptr;
    if (!snap) return cb(make_error("unavailable: no MRA configuration"));
    std::string key = key_of(deployment, user);
    if (auto it = cache_.find(key); it != cache_.end()) {
        if (it->second.expires_ms > loop_.now_ms()) {
            auto h = home_from(*snap, std::string(deployment), it->second.node, it->second.user_id);
            if (h) {
                h->cached = true;
                return cb(std::optional<HomeCluster>(std::move(*h)));
            }
        }
        cache_.erase(it); // expired, or the node left the deployment: ask again
    }
    if (auto it = pending_.find(key); it != pending_.end()) {
        it->second->callbacks.push_back(std::move(cb));
        return;
    }
    auto l = std::make_shared<Lookup>();
    l->key = std::move(key);
    l->deployment = std::string(deployment);
    l->user = std::string(user);
    l->clusters = ucm_clusters(*snap, deployment);
    l->callbacks.push_back(std::move(cb));
    if (l->clusters.empty())
        return done(l, make_error("unavailable: deployment '" + l->deployment + "' has no Unified CM node"));
    pending_.emplace(l->key, l);
    ask(l);
}

void HomeClusterFinder::ask(const std::shared_ptr<Lookup>& l) {
    auto snap = opts_.snapshot ? opts_.snapshot() : nullptr;
    const mra::UcNode* node = nullptr;
    while (!node && l->cluster < l->clusters.size()) {
        const auto& c = l->clusters[l->cluster];
        if (l->node >= c.size()) {
            // Nobody in this cluster answered: it may be the user's home, so a later "not found" elsewhere
            // cannot be read as "unknown user".
            l->unanswered = true;
            ++l->cluster;
            l->node = 0;
            continue;
        }
        node = snap ? snap->find_node(c[l->node]) : nullptr;
        ++l->node;
    }
    if (!node) {
        if (l->unanswered)
            return done(l,
                        make_error(l->last_error.empty() ? "unavailable: no Unified CM cluster could be asked"
                                                         : "unavailable: " + l->last_error));
        return done(l, std::optional<HomeCluster>());
    }
    http::ClientRequest req;
    req.method = "GET";
    req.origin = http::Origin{"https", node->name, mra::https_port_of(*node)};
    // clusterUser's two look-up forms (UDS API reference): username= for a user id, email= for a client
    // that signed in with its address.
    const bool email = l->user.find('@') != std::string::npos;
    req.target = fmt::format("/cucm-uds/clusterUser?{}={}", email ? "email" : "username",
                             encode_path_segment(l->user));
    req.verify = node->tls_verify;
    req.headers.add("Accept", "application/xml");
    EP_DEBUG(kLog, "home cluster of user {}: asking {}", l->user, node->name);
    std::weak_ptr<bool> alive = alive_;
    std::string node_name = node->name;
    client_.fetch(std::move(req), [this, alive, l, node_name](Result<http::ClientResponse> r) {
        if (alive.expired()) return;
        auto next_node = [&](std::string why) {
            EP_WARN(kLog, "home cluster of user {}: {}", l->user, why);
            l->last_error = std::move(why);
            ask(l);
        };
        if (!r) return next_node(fmt::format("Unified CM {}: {}", node_name, r.error().message));
        if (r->status != 200)
            return next_node(fmt::format("Unified CM {} answered clusterUser with {}", node_name, r->status));
        auto a = parse_cluster_user(r->body);
        if (!a) return next_node(fmt::format("Unified CM {} answered clusterUser without XML", node_name));
        if (!a->found) {
            // This cluster does not know the user: the next cluster's first node.
            ++l->cluster;
            l->node = 0;
            return ask(l);
        }
        auto snap = opts_.snapshot ? opts_.snapshot() : nullptr;
        if (!snap) return done(l, make_error("unavailable: no MRA configuration"));
        // The id UDS knows the user by: with email= it differs from what the client typed. An answer without
        // a usable id keeps the signed-in name (a username= look-up names the same id anyway).
        auto h = home_from(*snap, l->deployment, a->home_host, a->user_id.empty() ? l->user : a->user_id);
        if (!h) return done(l, h.error());
        EP_DEBUG(kLog, "home cluster of user {}: {} (asked {})", l->user, h->node, node_name);
        done(l, std::optional<HomeCluster>(std::move(*h)));
    });
}

void HomeClusterFinder::done(const std::shared_ptr<Lookup>& l, Result<std::optional<HomeCluster>> r) {
    pending_.erase(l->key);
    if (r && *r) {
        if (cache_.size() >= opts_.max_entries) {
            const uint64_t now = loop_.now_ms();
            std::erase_if(cache_, [now](const auto& e) { return e.second.expires_ms <= now; });
        }
        const uint64_t ttl = opts_.ttl_ms ? opts_.ttl_ms() : 10ull * 60 * 1000;
        if (cache_.size() < opts_.max_entries && ttl > 0)
            cache_[l->key] = Entry{(*r)->node, (*r)->user_id, loop_.now_ms() + ttl};
    }
    auto cbs = std::move(l->callbacks);
    for (auto& cb : cbs)
        cb(r ? Result<std::optional<HomeCluster>>(*r) : Result<std::optional<HomeCluster>>(Error(r.error())));
}

} // namespace edgepair::edge_c
