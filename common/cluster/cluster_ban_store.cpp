#include "common/cluster/cluster_ban_store.h"

#include "common/cluster/key_scan.h"
#include "common/obs/log.h"

namespace edgepair::cluster {

namespace {
constexpr uint64_t kExpireEveryMs = 10'000;
} // namespace

struct ClusterBanStore::Load {
    uint64_t session = 0;
    std::unordered_map<std::string, protection::Ban> held;
    std::unordered_map<std::string, uint64_t> tombstones; // address -> lifted_at_ms
};

ClusterBanStore::ClusterBanStore(core::Loop& loop, protection::Settings s, Options o, Hooks h)
    : loop_(loop), local_(std::move(s)), o_(std::move(o)), h_(std::move(h)),
      expire_timer_(loop,
                    [this] {
                        ledger_.expire(loop_.now_ms());
                        expire_timer_.arm(kExpireEveryMs);
                    }),
      tally_timer_(loop, [this] { flush_tally(); }) {
    RedisConn::Hooks ch;
    ch.up = [this] { conn_changed({}); };
    ch.down = [this](const std::string& why) { conn_changed(why); };
    ch.command_failed = [this] {
        if (h_.command_failed) h_.command_failed();
    };
    cmd_ = std::make_unique<RedisConn>(loop_, "redis", o_.redis, ch);
    ch.message = [this](const Reply& r) { on_message(r); };
    sub_ = std::make_unique<RedisConn>(loop_, "redis subscriber", o_.redis, ch,
                                       std::vector<std::string>{o_.prefix + "bans", o_.prefix + "intrusion"});
}

ClusterBanStore::~ClusterBanStore() {
    tally_timer_.cancel();
    // Before the ledger and the local store they would call into.
    sub_.reset();
    cmd_.reset();
}

void ClusterBanStore::start() {
    cmd_->start();
    sub_->start();
    expire_timer_.arm(kExpireEveryMs);
}

std::string ClusterBanStore::redis_address() const {
    return cmd_->address();
}

std::string ClusterBanStore::last_error() const {
    if (!cmd_->up()) return cmd_->last_error();
    if (!sub_->up()) return "subscriber: " + sub_->last_error();
    return {};
}

void ClusterBanStore::set_listener(Listener l) {
    listener_ = std::move(l);
    Listener mine = listener_;
    mine.banned = [this](const protection::Ban& b) {
        if (listener_.banned) listener_.banned(b);
        loop_.post([this, b] { own_ban(b); });
    };
    local_.set_listener(std::move(mine));
}

protection::Outcome ClusterBanStore::record_failure(protection::Category c, const std::string& address,
                                                    uint64_t now_ms) {
    auto o = local_.record_failure(c, address, now_ms);
    // A ban is shared as a ban; only counts below it travel as counts.
    if (o.kind == protection::Outcome::Kind::Counted && up_.load())
        loop_.post([this, c, address] { tally(c, address); });
    return o;
}

void ClusterBanStore::tally(protection::Category c, const std::string& address) {
    if (!up_.load() || !tally_.add(protection::category_name(c), address)) return; // stays a local count
    if (!tally_timer_.armed()) tally_timer_.arm(o_.tally_flush_ms);
}

void ClusterBanStore::flush_tally() {
    for (auto& m : tally_.drain(o_.origin))
        cmd_->command({"PUBLISH", o_.prefix + "intrusion", std::move(m)});
}

void ClusterBanStore::on_tally(const std::string& payload) {
    auto m = decode_tally(payload);
    if (!m) {
        EP_WARN("cluster", "ignored a malformed message on {}intrusion ({} bytes)", o_.prefix,
                payload.size());
        return;
    }
    if (m->origin == o_.origin) return;
    const uint64_t now = loop_.now_ms();
    for (const auto& e : m->entries)
        if (auto c = protection::category_from_name(e.kind)) local_.count_remote(*c, e.key, e.count, now);
}

bool ClusterBanStore::lift(const std::string& address, uint64_t now_ms) {
    auto b = local_.ban_of(address, now_ms);
    if (!local_.lift(address, now_ms)) return false;
    const uint64_t forget = now_ms + tombstone_ttl_ms(b ? b->until_ms : now_ms, now_ms);
    loop_.post([this, address, now_ms, forget] {
        if (up_.load()) {
            ledger_.lifted(address, now_ms, forget);
            push_lift(address, now_ms, forget, true);
        } else {
            // Pushed when Redis is back (loaded()).
            ledger_.lift_pending(address, now_ms, forget);
        }
    });
    return true;
}

void ClusterBanStore::own_ban(const protection::Ban& b) {
    ledger_.own(b);
    if (up_.load()) push_ban(b);
}

void ClusterBanStore::push_ban(const protection::Ban& b) {
    const uint64_t now = loop_.now_ms();
    if (b.until_ms <= now) return;
    // A failed command needs no retry here: the connection is going down, and the next load pushes every
    // own ban Redis lacks.
    cmd_->command({"SET", o_.prefix + "ban:" + b.address, encode_ban_record(b, o_.origin), "PX",
                   std::to_string(b.until_ms - now)});
    cmd_->command({"PUBLISH", o_.prefix + "bans", encode_ban_message(b, o_.origin)});
}

void ClusterBanStore::push_lift(const std::string& address, uint64_t lifted_at_ms, uint64_t forget_ms,
                                bool delete_ban) {
    const uint64_t now = loop_.now_ms();
    if (delete_ban) cmd_->command({"DEL", o_.prefix + "ban:" + address});
    if (forget_ms > now)
        cmd_->command({"SET", o_.prefix + "lift:" + address, encode_lift_record(lifted_at_ms, o_.origin),
                       "PX", std::to_string(forget_ms - now)});
    cmd_->command({"PUBLISH", o_.prefix + "bans", encode_lift_message(address, lifted_at_ms, o_.origin)});
}

void ClusterBanStore::on_message(const Reply& r) {
    if (r.elements.size() != 3) return;
    const std::string& payload = r.elements[2].str;
    if (r.elements[1].str == o_.prefix + "intrusion") return on_tally(payload);
    auto m = decode_ban_message(payload);
    if (!m) {
        EP_WARN("cluster", "ignored a malformed message on {}bans ({} bytes)", o_.prefix, payload.size());
        return;
    }
    if (m->origin == o_.origin) return;
    const uint64_t now = loop_.now_ms();
    if (m->kind == BanMessage::Kind::Ban) {
        EP_DEBUG("cluster", "ban of {} from peer {}", m->ban.address, m->origin);
        apply_remote_ban(m->ban, now);
    } else {
        EP_INFO("cluster", "ban of {} lifted on peer {}", m->ban.address, m->origin);
        apply_remote_lift(m->ban.address, m->lifted_at_ms, now);
    }
}

void ClusterBanStore::apply_remote_ban(const protection::Ban& b, uint64_t now_ms) {
    if (!ledger_.accept(b, now_ms)) return;
    local_.adopt(b, now_ms);
}

void ClusterBanStore::apply_remote_lift(const std::string& address, uint64_t lifted_at_ms, uint64_t now_ms) {
    auto b = local_.ban_of(address, now_ms);
    ledger_.lifted(address, lifted_at_ms, now_ms + tombstone_ttl_ms(b ? b->until_ms : now_ms, now_ms));
    // A ban made here after that lift (a new attack) stands.
    if (b && b->since_ms <= lifted_at_ms) local_.lift_by_peer(address, now_ms);
}

void ClusterBanStore::conn_changed(const std::string& why) {
    const bool now_up = cmd_->up() && sub_->up();
    if (now_up) {
        if (reported_ && *reported_) return;
        reported_ = true;
        up_ = true;
        ++session_;
        EP_INFO("cluster", "Redis {} reached on both connections: loading the cluster's bans",
                redis_address());
        if (h_.state) h_.state(true, {});
        auto l = std::make_shared<Load>();
        l->session = session_;
        scan(std::move(l));
        return;
    }
    if (reported_ && !*reported_) return;
    // The first connection of two coming up is no news; only a failure is.
    if (!reported_ && why.empty()) return;
    reported_ = false;
    up_ = false;
    ++session_;
    EP_WARN("cluster",
            "bans are no longer shared (Redis {}: {}): they are made and held on this peer only until "
            "it returns",
            redis_address(), why);
    if (h_.state) h_.state(false, why);
}

void ClusterBanStore::scan(std::shared_ptr<Load> l) {
    // The ban keys, then the tombstones: only this store's keys (edge-c's sign-in state may share the
    // prefix when both edges name the same cluster and Redis).
    auto wanted = [this, l] { return l->session == session_; };
    KeyScan bans;
    bans.pattern = o_.prefix + "ban:*";
    bans.wanted = wanted;
    bans.each = [this, l](const std::string& k, const std::string& v) {
        if (auto b = decode_ban_record(std::string_view(k).substr(o_.prefix.size() + 4), v))
            l->held[b->address] = *b;
    };
    bans.done = [this, l, wanted](bool) {
        KeyScan lifts;
        lifts.pattern = o_.prefix + "lift:*";
        lifts.wanted = wanted;
        lifts.each = [this, l](const std::string& k, const std::string& v) {
            auto a = k.substr(o_.prefix.size() + 5);
            if (auto at = decode_lift_record(v); at && valid_ban_address(a)) l->tombstones[a] = *at;
        };
        lifts.done = [this, l](bool) { loaded(l); };
        scan_keys(*cmd_, std::move(lifts));
    };
    scan_keys(*cmd_, std::move(bans));
}

void ClusterBanStore::loaded(std::shared_ptr<Load> l) {
    const uint64_t now = loop_.now_ms();
    for (const auto& [a, at] : l->tombstones)
        apply_remote_lift(a, at, now);
    std::unordered_map<std::string, uint64_t> held_until;
    size_t adopted = 0;
    for (const auto& [a, b] : l->held) {
        held_until[a] = b.until_ms;
        if (ledger_.accept(b, now) && local_.adopt(b, now)) ++adopted;
    }
    auto push = ledger_.to_push(held_until, now);
    for (const auto& b : push)
        push_ban(b);
    auto lifts = ledger_.take_pending_lifts();
    for (const auto& p : lifts) {
        // A ban Redis holds that was made after this lift is a new one: it stays.
        auto it = l->held.find(p.address);
        push_lift(p.address, p.lifted_at_ms, p.forget_ms,
                  it == l->held.end() || it->second.since_ms <= p.lifted_at_ms);
    }
    EP_INFO("cluster",
            "Redis {}: bans in sync ({} held in Redis, {} adopted, {} pushed from here, {} lifts pushed)",
            redis_address(), l->held.size(), adopted, push.size(), lifts.size());
}

} // namespace edgepair::cluster
