#include "edge-c/cluster_rules.h"

#include <charconv>

#include <fmt/format.h>

#include "common/obs/log.h"

namespace edgepair::edge_c {

namespace {
constexpr const char* kLog = "cluster";

bool valid_origin(std::string_view o) {
    if (o.empty() || o.size() > 300) return false;
    for (char c : o)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
    return true;
}
} // namespace

namespace rules_wire {

std::string encode(const Imported& r) {
    return fmt::format("1 {} {}\n{}", r.version_ms, r.origin, r.csv);
}

std::optional<Imported> decode(std::string_view text) {
    if (!text.starts_with("1 ")) return std::nullopt;
    const size_t nl = text.find('\n');
    if (nl == text.npos) return std::nullopt;
    std::string_view head = text.substr(2, nl - 2);
    const size_t sp = head.find(' ');
    if (sp == head.npos) return std::nullopt;
    Imported r;
    std::string_view v = head.substr(0, sp), origin = head.substr(sp + 1);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), r.version_ms);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || !valid_origin(origin))
        return std::nullopt;
    std::string_view csv = text.substr(nl + 1);
    if (csv.size() > kMaxCsvBytes || csv.find('\0') != csv.npos) return std::nullopt;
    r.origin = std::string(origin);
    r.csv = std::string(csv);
    return r;
}

bool newer(const Imported& a, uint64_t b_version_ms, std::string_view b_origin) {
    if (a.version_ms != b_version_ms) return a.version_ms > b_version_ms;
    return a.origin > b_origin;
}

} // namespace rules_wire

ClusterRules::ClusterRules(core::Loop& loop, Options o, Hooks h)
    : loop_(loop), o_(std::move(o)), h_(std::move(h)) {
    cluster::RedisConn::Hooks ch;
    ch.up = [this] { conn_changed(); };
    ch.down = [this](const std::string&) { conn_changed(); };
    ch.command_failed = [this] {
        if (h_.command_failed) h_.command_failed();
    };
    cmd_ = std::make_unique<cluster::RedisConn>(loop_, "redis (allow list)", o_.redis, ch);
    ch.message = [this](const cluster::Reply& r) { on_message(r); };
    sub_ = std::make_unique<cluster::RedisConn>(loop_, "redis subscriber (allow list)", o_.redis, ch,
                                                o_.prefix + "allowlist");
}

ClusterRules::~ClusterRules() {
    sub_.reset();
    cmd_.reset();
}

void ClusterRules::start() {
    cmd_->start();
    sub_->start();
}

bool ClusterRules::up() const {
    return cmd_->up() && sub_->up();
}

void ClusterRules::conn_changed() {
    if (!up()) {
        synced_ = false;
        return;
    }
    if (synced_) return;
    synced_ = true;
    // Subscribed first, then read: an import announced in between is heard, and one read twice is harmless.
    cmd_->command({"GET", o_.prefix + "allowlist:imported"}, [this](const cluster::Reply* r) {
        if (!r || r->is_error()) return;
        const auto mine = h_.local ? h_.local() : rules_wire::Imported{};
        std::optional<rules_wire::Imported> held;
        if (r->type == cluster::Reply::Type::String) {
            held = rules_wire::decode(r->str);
            if (!held)
                EP_WARN(kLog, "ignored malformed imported allow-list rules in Redis {}", cmd_->address());
        }
        if (held && rules_wire::newer(*held, mine.version_ms, mine.origin)) {
            if (held->origin != o_.origin) consider(*held);
            return;
        }
        // Ours are newer (imported while Redis was away), or Redis has none: Redis gets ours. A peer that
        // never imported anything (version 0) has nothing to push.
        if (mine.version_ms > 0 && (!held || rules_wire::newer(mine, held->version_ms, held->origin)))
            push(mine);
    });
}

void ClusterRules::share() {
    if (!h_.local) return;
    auto mine = h_.local();
    if (!up()) {
        EP_INFO(kLog, "imported allow-list rules kept here until Redis {} returns", cmd_->address());
        return;
    }
    push(mine);
}

void ClusterRules::push(const rules_wire::Imported& r) {
    auto text = rules_wire::encode(r);
    cmd_->command({"SET", o_.prefix + "allowlist:imported", text});
    cmd_->command({"PUBLISH", o_.prefix + "allowlist", std::move(text)});
}

void ClusterRules::on_message(const cluster::Reply& r) {
    if (r.elements.size() != 3) return;
    auto m = rules_wire::decode(r.elements[2].str);
    if (!m) {
        EP_WARN(kLog, "ignored a malformed message on {}allowlist ({} bytes)", o_.prefix,
                r.elements[2].str.size());
        return;
    }
    if (m->origin == o_.origin) return;
    consider(*m);
}

void ClusterRules::consider(const rules_wire::Imported& r) {
    const auto mine = h_.local ? h_.local() : rules_wire::Imported{};
    if (!rules_wire::newer(r, mine.version_ms, mine.origin)) return;
    if (h_.adopt) h_.adopt(r);
}

} // namespace edgepair::edge_c
