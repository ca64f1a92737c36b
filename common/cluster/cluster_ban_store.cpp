#include "common/cluster/cluster_ban_store.h"

#include "common/obs/log.h"

namespace edgepair::cluster {

namespace {
constexpr uint64_t kExpireEveryMs = 10'000;
// SCAN pages on a (re)connect; bounded so that a huge or hostile keyspace cannot keep the loop busy forever.
constexpr unsigned kMaxScanPages = 10'000;
} // namespace

struct ClusterBanStore::Load {
    uint64_t session = 0;
    std::string cursor = "0";
    unsigned pages = 0;
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
    if (l->session != session_) return;
    cmd_->command({"SCAN", l->cursor, "MATCH", o_.prefix + "*", "COUNT", "500"}, [this, l](const Reply* r) {
        if (!r || r->is_error() || l->session != session_) return;
        if (r->type != Reply::Type::Array || r->elements.size() != 2) return;
        l->cursor = r->elements[0].str;
        std::vector<std::string> keys;
        for (const auto& k : r->elements[1].elements)
            keys.push_back(k.str);
        auto next = [this, l] {
            if (l->cursor == "0" || ++l->pages >= kMaxScanPages)
                loaded(l);
            else
                scan(l);
        };
        if (keys.empty()) return next();
        std::vector<std::string> argv{"MGET"};
        argv.insert(argv.end(), keys.begin(), keys.end());
        cmd_->command(argv, [this, l, keys, next](const Reply* v) {
            if (!v || v->is_error() || l->session != session_) return;
            const std::string bans = o_.prefix + "ban:", lifts = o_.prefix + "lift:";
            for (size_t i = 0; i < keys.size() && i < v->elements.size(); ++i) {
                const auto& val = v->elements[i];
                if (val.type != Reply::Type::String) continue; // expired since SCAN saw it
                const auto& k = keys[i];
                if (k.rfind(bans, 0) == 0) {
                    if (auto b = decode_ban_record(std::string_view(k).substr(bans.size()), val.str))
                        l->held[b->address] = *b;
                } else if (k.rfind(lifts, 0) == 0) {
                    auto a = k.substr(lifts.size());
                    if (auto at = decode_lift_record(val.str); at && valid_ban_address(a))
                        l->tombstones[a] = *at;
                }
            }
            next();
        });
    });
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
