#include "common/cluster/tally.h"

#include <charconv>

#include <fmt/format.h>

#include "common/cluster/cluster_identity.h"

namespace edgepair::cluster {

namespace {

constexpr size_t kMaxKind = 32;
constexpr size_t kMaxKey = 1024;

bool valid_kind(std::string_view k) {
    if (k.empty() || k.size() > kMaxKind) return false;
    for (char c : k)
        if (!((c >= 'a' && c <= 'z') || c == '_' || c == '-')) return false;
    return true;
}

bool valid_key(std::string_view k) {
    return !k.empty() && k.size() <= kMaxKey && k.find_first_of(std::string_view("\n\0", 2)) == k.npos;
}

} // namespace

bool TallyBatch::add(std::string_view kind, std::string_view key, uint32_t n) {
    if (n == 0 || !valid_kind(kind) || !valid_key(key)) return false;
    std::string k(kind);
    k.push_back('\n');
    k.append(key);
    auto it = counts_.find(k);
    if (it == counts_.end()) {
        if (counts_.size() >= max_keys_) return false;
        counts_.emplace(std::move(k), std::min(n, kMaxCount));
    } else {
        it->second = uint32_t(std::min<uint64_t>(uint64_t(it->second) + n, kMaxCount));
    }
    return true;
}

std::vector<std::string> TallyBatch::drain(std::string_view origin) {
    std::vector<std::string> out;
    if (counts_.empty()) return out;
    const std::string head = fmt::format("t1 {}\n", origin);
    std::string msg = head;
    for (const auto& [k, n] : counts_) {
        const size_t nl = k.find('\n');
        std::string line = fmt::format("{} {} {}\n", std::string_view(k).substr(0, nl), n,
                                       std::string_view(k).substr(nl + 1));
        if (msg.size() + line.size() > kMaxMessageBytes && msg.size() > head.size()) {
            out.push_back(std::move(msg));
            msg = head;
        }
        msg += line;
    }
    out.push_back(std::move(msg));
    counts_.clear();
    return out;
}

std::optional<TallyMessage> decode_tally(std::string_view text) {
    if (text.size() > TallyBatch::kMaxMessageBytes + kMaxKey + 64 || !text.starts_with("t1 "))
        return std::nullopt;
    size_t nl = text.find('\n');
    if (nl == text.npos) return std::nullopt;
    TallyMessage m;
    std::string_view origin = text.substr(3, nl - 3);
    if (!valid_origin(origin)) return std::nullopt;
    m.origin = std::string(origin);
    text.remove_prefix(nl + 1);
    while (!text.empty()) {
        nl = text.find('\n');
        if (nl == text.npos) return std::nullopt; // every line ends with one
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        const size_t a = line.find(' ');
        if (a == line.npos) return std::nullopt;
        const size_t b = line.find(' ', a + 1);
        if (b == line.npos) return std::nullopt;
        TallyEntry e;
        std::string_view kind = line.substr(0, a), count = line.substr(a + 1, b - a - 1),
                         key = line.substr(b + 1);
        auto [p, ec] = std::from_chars(count.data(), count.data() + count.size(), e.count);
        if (!valid_kind(kind) || !valid_key(key) || count.empty() || ec != std::errc() ||
            p != count.data() + count.size() || e.count == 0 || e.count > TallyBatch::kMaxCount)
            return std::nullopt;
        e.kind = std::string(kind);
        e.key = std::string(key);
        m.entries.push_back(std::move(e));
    }
    if (m.entries.empty()) return std::nullopt;
    return m;
}

} // namespace edgepair::cluster
