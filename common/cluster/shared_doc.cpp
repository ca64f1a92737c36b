#include "common/cluster/shared_doc.h"

#include <charconv>

#include <fmt/format.h>

#include <openssl/crypto.h>

#include "common/cluster/cluster_identity.h"
#include "common/obs/log.h"

namespace edgepair::cluster {

namespace {
constexpr const char* kLog = "cluster";

} // namespace

namespace doc_wire {

std::string encode(const Doc& d) {
    return fmt::format("1 {} {} {}\n{}", d.version_ms, d.origin, d.mac, d.text);
}

std::optional<Doc> decode(std::string_view text) {
    if (!text.starts_with("1 ")) return std::nullopt;
    const size_t nl = text.find('\n');
    if (nl == text.npos) return std::nullopt;
    std::string_view head = text.substr(2, nl - 2);
    const size_t sp = head.find(' ');
    const size_t sp2 = head.rfind(' ');
    if (sp == head.npos || sp2 == sp) return std::nullopt;
    Doc r;
    std::string_view v = head.substr(0, sp), origin = head.substr(sp + 1, sp2 - sp - 1),
                     mac = head.substr(sp2 + 1);
    if (mac.size() != 64 || mac.find_first_not_of("0123456789abcdef") != mac.npos) return std::nullopt;
    r.mac = std::string(mac);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), r.version_ms);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || !valid_origin(origin))
        return std::nullopt;
    std::string_view body = text.substr(nl + 1);
    if (body.size() > kMaxTextBytes || body.find('\0') != body.npos) return std::nullopt;
    r.origin = std::string(origin);
    r.text = std::string(body);
    return r;
}

std::string mac(const crypto::HmacSha256& key, std::string_view name, const Doc& d) {
    static constexpr uint8_t sep[] = {0};
    const std::string v = std::to_string(d.version_ms);
    auto md = key({crypto::bytes(name), sep, crypto::bytes(v), sep, crypto::bytes(d.origin), sep,
                   crypto::bytes(d.text)});
    return crypto::to_hex(md);
}

bool newer(const Doc& a, uint64_t b_version_ms, std::string_view b_origin) {
    if (a.version_ms != b_version_ms) return a.version_ms > b_version_ms;
    return a.origin > b_origin;
}

} // namespace doc_wire

SharedDoc::SharedDoc(core::Loop& loop, Options o, Hooks h) : loop_(loop), o_(std::move(o)), h_(std::move(h)) {
    if (!o_.mac_key.empty())
        if (auto k = crypto::HmacSha256::create(crypto::bytes(o_.mac_key))) mac_ = std::move(*k);
    OPENSSL_cleanse(o_.mac_key.data(), o_.mac_key.size());
    if (!mac_) EP_ERROR(kLog, "{}: no key to sign them with: not shared", o_.what);
    RedisConn::Hooks ch;
    ch.up = [this] { conn_changed(); };
    ch.down = [this](const std::string&) { conn_changed(); };
    ch.command_failed = [this] {
        if (h_.command_failed) h_.command_failed();
    };
    cmd_ = std::make_unique<RedisConn>(loop_, "redis (" + o_.channel + ")", o_.redis, ch);
    ch.message = [this](const Reply& r) { on_message(r); };
    sub_ = std::make_unique<RedisConn>(loop_, "redis subscriber (" + o_.channel + ")", o_.redis, ch,
                                       o_.prefix + o_.channel);
}

SharedDoc::~SharedDoc() {
    sub_.reset();
    cmd_.reset();
}

void SharedDoc::start() {
    cmd_->start();
    sub_->start();
}

bool SharedDoc::up() const {
    return cmd_->up() && sub_->up();
}

void SharedDoc::conn_changed() {
    if (!up()) {
        synced_ = false;
        return;
    }
    if (synced_) return;
    synced_ = true;
    // Subscribed first, then read: an import announced in between is heard, and one read twice is harmless.
    cmd_->command({"GET", o_.prefix + o_.key}, [this](const Reply* r) {
        if (!r || r->is_error()) return;
        const auto mine = h_.local ? h_.local() : doc_wire::Doc{};
        std::optional<doc_wire::Doc> held;
        if (r->type == Reply::Type::String) held = open(r->str, "in Redis");
        if (held && doc_wire::newer(*held, mine.version_ms, mine.origin)) {
            if (held->origin != o_.origin) consider(*held);
            return;
        }
        // Ours are newer (imported while Redis was away), or Redis has none: Redis gets ours. A peer that
        // never imported anything (version 0) has nothing to push.
        if (mine.version_ms > 0 && (!held || doc_wire::newer(mine, held->version_ms, held->origin)))
            push(mine);
    });
}

void SharedDoc::share() {
    if (!h_.local) return;
    auto mine = h_.local();
    if (!up()) {
        EP_INFO(kLog, "{} kept here until Redis {} returns", o_.what, cmd_->address());
        return;
    }
    push(mine);
}

void SharedDoc::push(const doc_wire::Doc& r) {
    if (!mac_) return;
    doc_wire::Doc d = r;
    d.mac = doc_wire::mac(*mac_, o_.key, d);
    auto text = doc_wire::encode(d);
    cmd_->command({"SET", o_.prefix + o_.key, text});
    cmd_->command({"PUBLISH", o_.prefix + o_.channel, std::move(text)});
}

void SharedDoc::on_message(const Reply& r) {
    if (r.elements.size() != 3) return;
    auto m = open(r.elements[2].str, "on the channel");
    if (!m || m->origin == o_.origin) return;
    consider(*m);
}

std::optional<doc_wire::Doc> SharedDoc::open(std::string_view text, const char* where) const {
    auto d = doc_wire::decode(text);
    if (!d) {
        EP_WARN(kLog, "ignored malformed {} {} ({} bytes)", o_.what, where, text.size());
        return std::nullopt;
    }
    // Signed with the key every edge-c peer derives from the same credentials.token_key_file: what Redis
    // holds or relays is only taken from a peer, never from whoever else can write to Redis.
    if (!mac_ || CRYPTO_memcmp(doc_wire::mac(*mac_, o_.key, *d).data(), d->mac.data(), 64) != 0) {
        EP_WARN(kLog,
                "ignored {} {} from {}: not signed with this peer's key (set the same "
                "credentials.token_key_file on every edge-c peer)",
                o_.what, where, d->origin);
        return std::nullopt;
    }
    return d;
}

void SharedDoc::consider(const doc_wire::Doc& r) {
    const auto mine = h_.local ? h_.local() : doc_wire::Doc{};
    if (doc_wire::newer(r, mine.version_ms, mine.origin)) {
        if (h_.adopt) h_.adopt(r);
        return;
    }
    // An older version was just written over Redis's (a peer whose clock is behind, or one that shared late):
    // put the newer one back, so that a peer reading Redis next does not go backwards. An equal one (the same
    // version re-announced) changes nothing, so the peers' corrections end there.
    if (mine.version_ms > 0 && up() && doc_wire::newer(mine, r.version_ms, r.origin)) push(mine);
}

} // namespace edgepair::cluster
