#include "edge-c/credentials.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include "common/http/b64_domain.h"
#include "common/obs/log.h"
#include "edge-c/home_cluster.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "auth";

bool has_ctl(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

bool iequal_prefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        char a = s[i], b = prefix[i];
        if (a >= 'A' && a <= 'Z') a = char(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = char(b - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

} // namespace

std::optional<BasicCredentials> parse_basic_auth(std::string_view v) {
    if (!iequal_prefix(v, "basic ")) return std::nullopt;
    v.remove_prefix(6);
    while (!v.empty() && v.front() == ' ')
        v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ')
        v.remove_suffix(1);
    // Usernames and passwords are short; a huge token is an attack on the decoder or the cache.
    if (v.empty() || v.size() > 2048) return std::nullopt;
    auto decoded = http::base64_decode_strict(v);
    if (!decoded) return std::nullopt;
    auto colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    BasicCredentials c{decoded->substr(0, colon), decoded->substr(colon + 1)};
    if (has_ctl(c.user) || has_ctl(c.password) || c.user.size() > 256) return std::nullopt;
    return c;
}

int auth_error_status(const Error& e) {
    std::string_view m = e.message;
    if (m.starts_with("unavailable:")) return 503;
    if (m.starts_with("timeout:")) return 504;
    return 502;
}

std::string encode_path_segment(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out.push_back(char(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    // "." and ".." are dot segments, not user ids: a server would resolve them and answer another resource.
    if (out == "." || out == "..") return out == "." ? "%2E" : "%2E%2E";
    return out;
}

struct UdsCredentialChecker::Pending {
    std::string key;
    std::string deployment;
    std::string user, password;
    std::string uds_user; // the id clusterUser named: what UDS is asked about
    std::vector<Callback> callbacks;
    std::vector<std::string> nodes; // the home cluster's nodes, the one clusterUser named first
    size_t next = 0;
    std::string last_error;
};

UdsCredentialChecker::UdsCredentialChecker(core::Loop& loop, http::Client& client, UdsCheckerOptions opts)
    : loop_(loop), client_(client), opts_(std::move(opts)) {
    unsigned char buf[32];
    if (RAND_bytes(buf, sizeof buf) != 1) {
        // Without randomness the salt is only per-process-constant; the cache still works.
        EP_WARN(kLog, "RAND_bytes failed; credential cache salt is not random");
        for (size_t i = 0; i < sizeof buf; ++i)
            buf[i] = static_cast<unsigned char>(reinterpret_cast<uintptr_t>(this) >> (i % 8));
    }
    salt_.assign(reinterpret_cast<const char*>(buf), sizeof buf);
    HomeClusterOptions ho;
    ho.snapshot = opts_.snapshot;
    ho.max_entries = opts_.max_cache_entries;
    ho.ttl_ms = opts_.home_cache_ms;
    home_ = std::make_unique<HomeClusterFinder>(loop_, client_, std::move(ho));
    if (opts_.cleanup_ms > 0) {
        cleanup_timer_ = std::make_unique<core::Timer>(loop_, [this] {
            cleanup();
            cleanup_timer_->arm(opts_.cleanup_ms);
        });
        cleanup_timer_->arm(opts_.cleanup_ms);
    }
}

UdsCredentialChecker::~UdsCredentialChecker() {
    *alive_ = false;
}

std::string UdsCredentialChecker::cache_key(std::string_view deployment, std::string_view user,
                                            std::string_view password) {
    // Only a salted digest of the password is kept; the deployment is part of the key because the same
    // user id in two deployments is checked against two different Unified CM clusters.
    std::string material = salt_;
    material.append(user).push_back('\0');
    material.append(password);
    std::string key(deployment);
    key.push_back('\0');
    key.append(user).push_back('\0');
    auto md = sha256_(material);
    key.append(reinterpret_cast<const char*>(md.data()), md.size());
    OPENSSL_cleanse(material.data(), material.size());
    return key;
}

void UdsCredentialChecker::cleanup() {
    const uint64_t now = loop_.now_ms();
    size_t dropped = 0;
    for (auto it = cache_.begin(); it != cache_.end();) {
        if (it->second.expires_ms <= now) {
            it = cache_.erase(it);
            ++dropped;
        } else {
            ++it;
        }
    }
    if (dropped)
        EP_DEBUG(kLog, "credential cache: {} expired entries dropped, {} left", dropped, cache_.size());
}

void UdsCredentialChecker::check(std::string_view user, std::string_view password, std::string_view domain,
                                 Callback cb) {
    auto snap = opts_.snapshot ? opts_.snapshot() : nullptr;
    if (!snap) return cb(make_error("unavailable: no MRA configuration"));
    const mra::Domain* d = snap->find_domain(domain);
    if (!d) return cb(make_error("unavailable: unknown domain " + std::string(domain)));
    const std::string deployment = snap->resolve_deployment(d->deployment);

    std::string key = cache_key(deployment, user, password);
    const uint64_t now = loop_.now_ms();
    if (auto it = cache_.find(key); it != cache_.end()) {
        if (it->second.expires_ms > now) {
            AuthOutcome o;
            o.verdict = AuthOutcome::Verdict::Allowed;
            o.user = it->second.user_id;
            o.node = it->second.node;
            o.cached = true;
            return cb(std::move(o));
        }
        cache_.erase(it);
    }
    if (auto it = pending_.find(key); it != pending_.end()) {
        it->second->callbacks.push_back(std::move(cb));
        return;
    }
    if (opts_.vouched) {
        if (auto v = opts_.vouched(deployment, user, password)) {
            // Kept here for no longer than the check it rests on holds.
            const uint64_t ttl = std::min(v->valid_ms, opts_.refresh_ms ? opts_.refresh_ms() : v->valid_ms);
            if (cache_.size() >= opts_.max_cache_entries) cleanup();
            if (cache_.size() < opts_.max_cache_entries)
                cache_[key] = Entry{v->node, std::string(user), now + ttl};
            AuthOutcome o;
            o.verdict = AuthOutcome::Verdict::Allowed;
            o.user = std::string(user);
            o.node = std::move(v->node);
            o.cached = true;
            o.vouched = true;
            return cb(std::move(o));
        }
    }

    auto p = std::make_shared<Pending>();
    p->key = std::move(key);
    p->deployment = deployment;
    p->user = std::string(user);
    p->password = std::string(password);
    p->callbacks.push_back(std::move(cb));
    pending_.emplace(p->key, p);
    // As Expressway-C does (TechNote 211304): the home cluster first, then the password on that cluster
    // only. A cluster that merely does not know the user never answers for the password.
    std::weak_ptr<bool> alive = alive_;
    home_->find(deployment, p->user, [this, alive, p](Result<std::optional<HomeCluster>> h) {
        if (alive.expired()) return;
        if (!h) return finish(p, Error(h.error()));
        if (!*h) {
            AuthOutcome o;
            o.user = p->user;
            o.verdict = AuthOutcome::Verdict::Denied;
            o.reason = "no Unified CM cluster of the deployment knows the user (clusterUser)";
            return finish(p, std::move(o));
        }
        p->nodes = std::move((*h)->nodes);
        p->uds_user = (*h)->user_id.empty() ? p->user : (*h)->user_id;
        attempt(p);
    });
}

void UdsCredentialChecker::attempt(std::shared_ptr<Pending> p) {
    auto snap = opts_.snapshot ? opts_.snapshot() : nullptr;
    const mra::UcNode* node = nullptr;
    while (p->next < p->nodes.size() && !node) {
        node = snap ? snap->find_node(p->nodes[p->next]) : nullptr;
        ++p->next;
    }
    if (!node) {
        // The home cluster is down (or its answer was stale): 503, and ask clusterUser again next time.
        home_->forget(p->deployment, p->user);
        return finish(p, make_error(p->last_error.empty()
                                        ? "unavailable: no node of the home cluster left to ask"
                                        : "unavailable: home cluster unreachable: " + p->last_error));
    }
    http::ClientRequest req;
    req.method = "GET";
    req.origin = http::Origin{"https", node->name, mra::https_port_of(*node)};
    // The call TechNote 211304's log shows as the password check.
    req.target = "/cucm-uds/user/" + encode_path_segment(p->uds_user) + "/devices";
    req.verify = node->tls_verify;
    // UDS authenticates the user id it stores; a client that signed in with its address is checked under
    // the id clusterUser's email= answer named.
    req.headers.add("Authorization", "Basic " + http::base64_encode(p->uds_user + ":" + p->password));
    req.headers.add("Accept", "application/xml");
    EP_DEBUG(kLog, "UDS check of user {} (UDS id {}) on {}", p->user, p->uds_user, node->name);
    std::weak_ptr<bool> alive = alive_;
    std::string node_name = node->name;
    client_.fetch(std::move(req), [this, alive, p, node_name](Result<http::ClientResponse> r) {
        if (alive.expired()) return;
        if (!r) {
            auto kind = http::error_kind(r.error());
            EP_WARN(kLog, "UDS check of user {} on {} failed: {}", p->user, node_name, r.error().message);
            if (kind == http::ClientErrorKind::Timeout) {
                // Another node would likely make the client wait as long again; answer now.
                home_->forget(p->deployment, p->user);
                return finish(p, make_error("timeout: Unified CM " + node_name + " did not answer"));
            }
            p->last_error = "Unified CM " + node_name + ": " + r.error().message;
            return attempt(p);
        }
        AuthOutcome o;
        o.user = p->uds_user;
        o.node = node_name;
        switch (r->status) {
        case 200:
            o.verdict = AuthOutcome::Verdict::Allowed;
            return finish(p, std::move(o));
        case 401:
        case 403:
        case 404:
            // 404: the home cluster does not have the user (clusterUser was stale); to the client it is the
            // same as a wrong password, and the home is looked up again next time.
            if (r->status == 404) home_->forget(p->deployment, p->user);
            o.verdict = AuthOutcome::Verdict::Denied;
            o.reason = fmt::format("Unified CM {} answered {}", node_name, r->status);
            return finish(p, std::move(o));
        default:
            p->last_error = fmt::format("Unified CM {} answered {}", node_name, r->status);
            EP_WARN(kLog, "UDS check of user {}: {}", p->user, p->last_error);
            if (r->status >= 500) return attempt(p);
            return finish(p, make_error("upstream: " + p->last_error));
        }
    });
}

void UdsCredentialChecker::finish(const std::shared_ptr<Pending>& p, Result<AuthOutcome> r) {
    pending_.erase(p->key);
    if (r && r->verdict == AuthOutcome::Verdict::Allowed) {
        if (cache_.size() >= opts_.max_cache_entries) cleanup();
        if (cache_.size() < opts_.max_cache_entries) {
            uint64_t ttl = opts_.refresh_ms ? opts_.refresh_ms() : 480ull * 60 * 1000;
            cache_[p->key] = Entry{r->node, r->user, loop_.now_ms() + ttl};
        }
    }
    // Callbacks may start new checks (and touch pending_), so they run from a local copy.
    auto cbs = std::move(p->callbacks);
    for (auto& cb : cbs) {
        if (r) {
            cb(AuthOutcome(*r));
        } else {
            cb(Error(r.error()));
        }
    }
}

} // namespace edgepair::edge_c
