#include "edge-c/cluster_signin.h"

#include <charconv>

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "common/cluster/cluster_identity.h"
#include "common/cluster/key_scan.h"
#include "common/obs/log.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "cluster";
constexpr size_t kMaxUser = 1024;

std::vector<std::string_view> split(std::string_view s, size_t max_fields) {
    // The last field takes the rest of the line (a user name may hold spaces).
    std::vector<std::string_view> out;
    size_t i = 0;
    while (out.size() + 1 < max_fields) {
        size_t j = s.find(' ', i);
        if (j == std::string_view::npos) break;
        out.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    out.push_back(s.substr(i));
    return out;
}

bool number(std::string_view s, uint64_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; // only what crypto::to_hex writes: lower case
}

bool valid_key_id(std::string_view k) {
    if (k.size() != 16) return false;
    for (char c : k)
        if (hex_digit(c) < 0) return false;
    return true;
}

// ':' ends the deployment in the key; '%' escapes; blanks and control bytes would garble a log line.
std::string encode_deployment(std::string_view d) {
    std::string out;
    for (char c : d) {
        auto u = static_cast<unsigned char>(c);
        if (c == ':' || c == '%' || u <= ' ' || u == 0x7f)
            out += fmt::format("%{:02x}", u);
        else
            out += c;
    }
    return out;
}

std::optional<std::string> decode_deployment(std::string_view e) {
    std::string out;
    for (size_t i = 0; i < e.size(); ++i) {
        if (e[i] != '%') {
            out += e[i];
            continue;
        }
        if (i + 2 >= e.size()) return std::nullopt;
        int h = hex_digit(e[i + 1]), l = hex_digit(e[i + 2]);
        if (h < 0 || l < 0) return std::nullopt;
        out += char(h * 16 + l);
        i += 2;
    }
    if (out.empty() || out.size() > 64 || out.find('\0') != std::string::npos) return std::nullopt;
    return out;
}

} // namespace

namespace signin_wire {

std::string stamp_key_suffix(std::string_view deployment, std::string_view user) {
    return fmt::format("stamp:{}:{}", encode_deployment(deployment), user);
}

std::string stamp_mac(const crypto::HmacSha256& key, std::string_view key_suffix,
                      std::string_view unsigned_record) {
    static constexpr uint8_t sep[] = {0};
    auto md = key({crypto::bytes(key_suffix), sep, crypto::bytes(unsigned_record)});
    return crypto::to_hex(md);
}

std::string encode_stamp_record(const Stamp& s, const crypto::HmacSha256* key) {
    // A node name never holds a blank (valid_origin's rule). Without a node or a key, version 1: it retires
    // old tokens on the peers but vouches for no password.
    if (!key || s.node.empty() || !cluster::valid_origin(s.node))
        return fmt::format("1 {} {} {} {}", s.key_id, crypto::to_hex(s.stamp), s.seen_ms, s.origin);
    auto rec =
        fmt::format("2 {} {} {} {} {}", s.key_id, crypto::to_hex(s.stamp), s.seen_ms, s.origin, s.node);
    return rec + " " + stamp_mac(*key, stamp_key_suffix(s.deployment, s.user), rec);
}

std::string encode_stamp_message(const Stamp& s, const crypto::HmacSha256* key) {
    return encode_stamp_record(s, key) + " " + stamp_key_suffix(s.deployment, s.user);
}

namespace {
// Fields in a record of each version, the version included.
size_t record_fields(std::string_view version) {
    return version == "1" ? 5 : version == "2" ? 7 : 0;
}

// Version 2 is signed: its MAC (the last field) must verify under `key` over the key suffix and the record
// before it. Without a key nothing signed is taken.
bool verify(const std::vector<std::string_view>& f, std::string_view suffix, const crypto::HmacSha256* key) {
    if (f[0] != "2") return true;
    if (!key) return false;
    const std::string_view mac = f[6];
    const size_t len = size_t(f[5].data() + f[5].size() - f[0].data());
    const std::string want = stamp_mac(*key, suffix, std::string_view(f[0].data(), len));
    return mac.size() == want.size() && CRYPTO_memcmp(mac.data(), want.data(), want.size()) == 0;
}

// The fields after the version, in the record's order (f holds at least record_fields(f[0])).
bool read_fields(const std::vector<std::string_view>& f, Stamp& s) {
    if (!valid_key_id(f[1]) || f[2].size() != s.stamp.size() * 2 || !number(f[3], s.seen_ms) ||
        !cluster::valid_origin(f[4]))
        return false;
    if (f[0] == "2") {
        if (!cluster::valid_origin(f[5])) return false;
        s.node = std::string(f[5]);
    }
    for (size_t i = 0; i < s.stamp.size(); ++i) {
        int h = hex_digit(f[2][2 * i]), l = hex_digit(f[2][2 * i + 1]);
        if (h < 0 || l < 0) return false;
        s.stamp[i] = static_cast<unsigned char>(h * 16 + l);
    }
    s.key_id = std::string(f[1]);
    s.origin = std::string(f[4]);
    return true;
}

bool read_key(std::string_view suffix, Stamp& s) {
    constexpr std::string_view kStamp = "stamp:";
    if (!suffix.starts_with(kStamp)) return false;
    suffix.remove_prefix(kStamp.size());
    size_t colon = suffix.find(':');
    if (colon == std::string_view::npos) return false;
    auto d = decode_deployment(suffix.substr(0, colon));
    auto user = suffix.substr(colon + 1);
    if (!d || user.empty() || user.size() > kMaxUser || user.find('\0') != std::string_view::npos)
        return false;
    s.deployment = std::move(*d);
    s.user = std::string(user);
    return true;
}
} // namespace

std::optional<Stamp> decode_stamp_record(std::string_view key_suffix, std::string_view value,
                                         const crypto::HmacSha256* key) {
    Stamp s;
    const size_t n = record_fields(value.substr(0, value.find(' ')));
    if (n == 0) return std::nullopt;
    auto f = split(value, n + 1); // one more: trailing junk makes the count wrong
    if (f.size() != n || !read_fields(f, s) || !read_key(key_suffix, s) || !verify(f, key_suffix, key))
        return std::nullopt;
    return s;
}

std::optional<Stamp> decode_stamp_message(std::string_view text, const crypto::HmacSha256* key) {
    Stamp s;
    const size_t n = record_fields(text.substr(0, text.find(' ')));
    if (n == 0) return std::nullopt;
    auto f = split(text, n + 1); // the key last: it may hold blanks
    if (f.size() != n + 1 || !read_fields(f, s) || !read_key(f[n], s) || !verify(f, f[n], key))
        return std::nullopt;
    return s;
}

std::string stamp_key_id(const EdgeTokenSealer& sealer) {
    // A stamp of nothing any user can sign in with: says which key without saying anything about it.
    auto s = sealer.stamp_of("\x01"
                             "edgepair stamp key id",
                             "", "");
    return crypto::to_hex(std::span<const uint8_t>(s.data(), 8));
}

} // namespace signin_wire

struct ClusterSignin::Check {
    SamlIdentity id;
    std::string domain;
    int64_t now_s = 0;
    Admitted done;
    bool finished = false;
    unsigned waiting = 0; // replies still to come
    bool shared_replay = false;
    std::optional<std::string> shared_domain; // what GETDEL returned
    std::unique_ptr<core::Timer> timer;
};

struct ClusterSignin::Resync {
    uint64_t session = 0;
    size_t heard = 0;
    std::unordered_map<std::string, uint64_t> held; // key suffix -> seen_ms, under our key
};

ClusterSignin::ClusterSignin(core::Loop& loop, std::shared_ptr<SamlReplayCache> local, Options o, Hooks h)
    : loop_(loop), local_(std::move(local)), o_(std::move(o)), h_(std::move(h)) {
    cluster::RedisConn::Hooks ch;
    ch.up = [this] { conn_changed({}); };
    ch.down = [this](const std::string& why) { conn_changed(why); };
    ch.command_failed = [this] {
        if (h_.command_failed) h_.command_failed();
    };
    cmd_ = std::make_unique<cluster::RedisConn>(loop_, "redis (sign-in)", o_.redis, ch);
    ch.message = [this](const cluster::Reply& r) { on_message(r); };
    sub_ = std::make_unique<cluster::RedisConn>(
        loop_, "redis subscriber (sign-in)", o_.redis, ch,
        std::vector<std::string>{o_.prefix + "stamps", o_.prefix + "tally"});
    tally_timer_ = std::make_unique<core::Timer>(loop_, [this] { flush_tally(); });
}

ClusterSignin::~ClusterSignin() {
    tally_timer_.reset();
    // Pending commands' callbacks are dropped with the connections (RedisConn's destructor), so no check
    // finishes into a half-destroyed object.
    sub_.reset();
    cmd_.reset();
}

void ClusterSignin::set_keys(std::string key_id, const std::string& mac_key) {
    key_id_ = std::move(key_id);
    mac_.reset();
    if (auto k = crypto::HmacSha256::create(crypto::bytes(mac_key)); k && !mac_key.empty())
        mac_ = std::move(*k);
}

void ClusterSignin::start() {
    cmd_->start();
    sub_->start();
}

std::string ClusterSignin::redis_address() const {
    return cmd_->address();
}

std::string ClusterSignin::last_error() const {
    if (!cmd_->up()) return cmd_->last_error();
    if (!sub_->up()) return "subscriber: " + sub_->last_error();
    return {};
}

void ClusterSignin::remember_request(const std::string& id, const std::string& domain, int64_t expires_s,
                                     int64_t now_s) {
    local_->remember_request(id, domain, expires_s);
    if (expires_s <= now_s) return;
    auto keep = [this, id, domain, expires_s] {
        if (h_.fallback) h_.fallback("request");
        if (pending_requests_.size() < o_.max_pending) pending_requests_[id] = {domain, expires_s};
    };
    if (!cmd_->up()) return keep();
    cmd_->command(
        {"SET", o_.prefix + "saml:request:" + id, domain, "PX", std::to_string((expires_s - now_s) * 1000)},
        [keep](const cluster::Reply* r) {
            if (!r || r->is_error()) keep();
        });
}

void ClusterSignin::admit(const SamlIdentity& id, const std::string& domain, int64_t now_s, Admitted done) {
    auto c = std::make_shared<Check>();
    c->id = id;
    c->domain = domain;
    c->now_s = now_s;
    c->done = std::move(done);
    if (!cmd_->up()) return finish(c, false);
    std::weak_ptr<Check> weak = c;
    c->timer = std::make_unique<core::Timer>(loop_, [this, weak] {
        if (auto k = weak.lock()) {
            EP_WARN(kLog, "Redis {}: no answer within {} ms on assertion {}: decided by this peer's memory",
                    redis_address(), o_.check_timeout_ms, k->id.assertion_id);
            finish(k, false);
        }
    });
    c->timer->arm(o_.check_timeout_ms);
    // At least a second: an assertion about to expire is refused as Expired by consume() anyway.
    const int64_t keep_s = std::max<int64_t>(1, id.expires_s - now_s);
    c->waiting = id.in_response_to.empty() ? 1 : 2;
    bool sent = cmd_->command({"SET", o_.prefix + "saml:assertion:" + id.assertion_id, "1", "NX", "PX",
                               std::to_string(keep_s * 1000)},
                              [this, c](const cluster::Reply* r) {
                                  if (c->finished) return;
                                  if (!r || r->is_error()) return finish(c, false);
                                  // NX refused: nil. Set: +OK.
                                  c->shared_replay = r->type == cluster::Reply::Type::Nil;
                                  if (--c->waiting == 0) finish(c, true);
                              });
    if (sent && !id.in_response_to.empty())
        sent = cmd_->command({"GETDEL", o_.prefix + "saml:request:" + id.in_response_to},
                             [this, c](const cluster::Reply* r) {
                                 if (c->finished) return;
                                 if (!r || r->is_error()) return finish(c, false);
                                 if (r->type == cluster::Reply::Type::String) c->shared_domain = r->str;
                                 if (--c->waiting == 0) finish(c, true);
                             });
    if (!sent) finish(c, false);
}

void ClusterSignin::finish(const std::shared_ptr<Check>& c, bool answered) {
    if (c->finished) return;
    c->finished = true;
    if (c->timer) c->timer->cancel();
    const auto& id = c->id;
    std::string detail;
    std::optional<SamlRefusal> why;
    // The local memory is asked whatever Redis said: what this peer accepted while Redis was away is only
    // there (and pushed when it returns).
    const bool first_here = local_->first_use(id.assertion_id, id.expires_s, c->now_s);
    if (!first_here || (answered && c->shared_replay)) {
        why = SamlRefusal::Replay;
        detail = first_here ? fmt::format("assertion {} was accepted before by another edge-c peer (Redis)",
                                          id.assertion_id)
                            : fmt::format("assertion {} was accepted before", id.assertion_id);
    } else {
        const auto& irt = id.in_response_to;
        const bool here = !irt.empty() && local_->take_request(irt, c->domain, c->now_s);
        if (!irt.empty()) pending_requests_.erase(irt);
        // Open if this peer sent it (whatever Redis says: a Redis restarted empty must not refuse a sign-in)
        // or another peer did and Redis still had it. Either way it is used up in both places now. A second,
        // different assertion for a request one peer already took could pass on the peer that sent it; an
        // IdP issues one Response per request, and a re-post of the same one is a Replay above.
        const bool open = here || (answered && c->shared_domain == c->domain);
        if (!open) {
            why = SamlRefusal::Unsolicited;
            detail = irt.empty() ? "no InResponseTo (IdP-initiated sign-in is not accepted)"
                                 : fmt::format("InResponseTo {} names no open AuthnRequest{}", irt,
                                               answered ? " of any edge-c peer"
                                                        : " (Redis unreachable: this "
                                                          "peer's own requests only)");
        }
    }
    if (!answered) {
        if (h_.fallback) h_.fallback("assertion");
        if (!why && pending_assertions_.size() < o_.max_pending)
            pending_assertions_[id.assertion_id] = id.expires_s;
    }
    auto done = std::move(c->done);
    c->timer.reset();
    if (done) done(why, std::move(detail));
}

void ClusterSignin::share_stamp(const std::string& deployment, const std::string& user,
                                const CredentialStamp& stamp, uint64_t seen_ms, uint64_t ttl_ms,
                                const std::string& node) {
    if (user.empty() || user.size() > kMaxUser || key_id_.empty()) return;
    signin_wire::Stamp s{deployment, user, key_id_, stamp, seen_ms, o_.origin, node};
    if (!cmd_->up()) {
        if (h_.fallback) h_.fallback("stamp");
        return keep_stamp(s, ttl_ms);
    }
    push_stamp(s, ttl_ms);
}

void ClusterSignin::push_stamp(const signin_wire::Stamp& s, uint64_t ttl_ms) {
    if (ttl_ms == 0) return;
    cmd_->command({"SET", o_.prefix + signin_wire::stamp_key_suffix(s.deployment, s.user),
                   signin_wire::encode_stamp_record(s, mac_.get()), "PX", std::to_string(ttl_ms)},
                  [this, s, ttl_ms](const cluster::Reply* r) {
                      if (r && !r->is_error()) return;
                      if (h_.fallback) h_.fallback("stamp");
                      keep_stamp(s, ttl_ms);
                  });
    cmd_->command({"PUBLISH", o_.prefix + "stamps", signin_wire::encode_stamp_message(s, mac_.get())});
}

void ClusterSignin::keep_stamp(const signin_wire::Stamp& s, uint64_t ttl_ms) {
    auto key = signin_wire::stamp_key_suffix(s.deployment, s.user);
    auto it = pending_stamps_.find(key);
    if (it == pending_stamps_.end()) {
        if (pending_stamps_.size() >= o_.max_pending) return;
        it = pending_stamps_.emplace(key, PendingStamp{}).first;
    } else if (it->second.s.seen_ms > s.seen_ms) {
        return;
    }
    it->second = PendingStamp{s, s.seen_ms + ttl_ms};
}

void ClusterSignin::tally(std::string_view kind, std::string_view key) {
    if (!up_ || !tally_.add(kind, key)) {
        if (h_.fallback) h_.fallback("tally");
        return;
    }
    if (!tally_timer_->armed()) tally_timer_->arm(o_.tally_flush_ms);
}

void ClusterSignin::flush_tally() {
    auto msgs = tally_.drain(o_.origin);
    for (auto& m : msgs)
        if (!cmd_->command({"PUBLISH", o_.prefix + "tally", std::move(m)}))
            if (h_.fallback) h_.fallback("tally");
}

void ClusterSignin::on_tally(const std::string& payload) {
    auto m = cluster::decode_tally(payload);
    if (!m) {
        EP_WARN(kLog, "ignored a malformed message on {}tally ({} bytes)", o_.prefix, payload.size());
        return;
    }
    if (m->origin == o_.origin || !h_.tally) return;
    for (const auto& e : m->entries)
        h_.tally(e);
}

void ClusterSignin::on_message(const cluster::Reply& r) {
    if (r.elements.size() != 3) return;
    const std::string& payload = r.elements[2].str;
    if (r.elements[1].str == o_.prefix + "tally") return on_tally(payload);
    auto s = signin_wire::decode_stamp_message(payload, mac_.get());
    if (!s) {
        EP_WARN(kLog, "ignored a malformed message on {}stamps ({} bytes)", o_.prefix, payload.size());
        return;
    }
    if (s->origin == o_.origin) return;
    if (s->key_id != key_id_) {
        EP_WARN(kLog,
                "ignored a password stamp from peer {} made with another edge token key (set the same "
                "credentials.token_key_file on every edge-c peer)",
                s->origin);
        return;
    }
    if (h_.stamp) h_.stamp(*s);
}

void ClusterSignin::conn_changed(const std::string& why) {
    const bool now_up = cmd_->up() && sub_->up();
    if (now_up) {
        if (reported_ && *reported_) return;
        reported_ = true;
        up_ = true;
        ++session_;
        EP_INFO(kLog, "Redis {} reached on both connections: sign-in state shared with the edge-c peers",
                redis_address());
        if (h_.state) h_.state(true, {});
        auto rs = std::make_shared<Resync>();
        rs->session = session_;
        scan(std::move(rs));
        return;
    }
    if (reported_ && !*reported_) return;
    if (!reported_ && why.empty()) return; // the first connection of two coming up is no news
    reported_ = false;
    up_ = false;
    ++session_;
    EP_WARN(
        kLog,
        "sign-in state is no longer shared (Redis {}: {}): replays, AuthnRequests and password changes are "
        "judged by this peer's memory until it returns",
        redis_address(), why);
    if (h_.state) h_.state(false, why);
}

void ClusterSignin::scan(std::shared_ptr<Resync> rs) {
    cluster::KeyScan ks;
    ks.pattern = o_.prefix + "stamp:*";
    ks.wanted = [this, rs] { return rs->session == session_; };
    ks.each = [this, rs](const std::string& key, const std::string& value) {
        auto suffix = std::string_view(key).substr(o_.prefix.size());
        auto s = signin_wire::decode_stamp_record(suffix, value, mac_.get());
        if (!s || s->key_id != key_id_) return;
        rs->held[std::string(suffix)] = s->seen_ms;
        if (s->origin == o_.origin) return;
        ++rs->heard;
        if (h_.stamp) h_.stamp(*s);
    };
    ks.done = [this, rs](bool) { resynced(rs); };
    cluster::scan_keys(*cmd_, std::move(ks));
}

void ClusterSignin::resynced(const std::shared_ptr<Resync>& rs) {
    const uint64_t now_ms = wall_clock_ms();
    const int64_t now_s = int64_t(now_ms / 1000);
    size_t stamps = 0, requests = 0, assertions = 0;
    for (auto& [key, p] : pending_stamps_) {
        auto it = rs->held.find(key);
        if (p.until_ms <= now_ms || (it != rs->held.end() && it->second >= p.s.seen_ms)) continue;
        p.s.key_id = key_id_;
        push_stamp(p.s, p.until_ms - now_ms);
        ++stamps;
    }
    pending_stamps_.clear();
    for (auto& [id, r] : pending_requests_) {
        if (r.second <= now_s) continue;
        cmd_->command({"SET", o_.prefix + "saml:request:" + id, r.first, "PX",
                       std::to_string((r.second - now_s) * 1000)});
        ++requests;
    }
    pending_requests_.clear();
    for (auto& [id, exp] : pending_assertions_) {
        if (exp <= now_s) continue;
        cmd_->command({"SET", o_.prefix + "saml:assertion:" + id, "1", "NX", "PX",
                       std::to_string((exp - now_s) * 1000)});
        ++assertions;
    }
    pending_assertions_.clear();
    EP_INFO(
        kLog,
        "Redis {}: sign-in state in sync ({} password stamps of peers read, {} stamps, {} AuthnRequests and "
        "{} assertions pushed from here)",
        redis_address(), rs->heard, stamps, requests, assertions);
}

} // namespace edgepair::edge_c
