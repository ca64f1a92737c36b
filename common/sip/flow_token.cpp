#include "common/sip/flow_token.h"

#include "common/sip/base32.h"

#include <openssl/crypto.h>

namespace edgepair::sip {

namespace {

constexpr uint8_t kVersion = 1;
// Domain separation: a key shared with another use cannot produce MACs valid here.
constexpr std::string_view kLabel = "edgepair-sip-flow-token-v1";
constexpr size_t kMaxTokenChars = 64;

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<uint8_t>(v | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<uint8_t>(v));
}

// Accepts only the shortest encoding, so each FlowId has exactly one valid token.
bool get_varint(std::span<const uint8_t>& in, uint64_t& v) {
    v = 0;
    for (size_t i = 0; i < 10 && i < in.size(); ++i) {
        uint8_t b = in[i];
        if (i == 9 && b > 1) return false;
        v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0) return false;
            in = in.subspan(i + 1);
            return true;
        }
    }
    return false;
}

} // namespace

Result<FlowTokenCodec> FlowTokenCodec::create(std::span<const uint8_t> key, size_t mac_len) {
    if (key.size() < kMinKeySize) return make_error("flow token key shorter than 16 bytes");
    if (mac_len < kMinMac || mac_len > kMaxMac) return make_error("flow token MAC length must be 10..16");
    auto hmac = crypto::HmacSha256::create(key);
    if (!hmac) return make_error("flow token key: " + hmac.error().message);
    return FlowTokenCodec(std::shared_ptr<const crypto::HmacSha256>(std::move(*hmac)), mac_len);
}

crypto::Sha256Digest FlowTokenCodec::mac(std::span<const uint8_t> payload) const {
    return (*hmac_)({crypto::bytes(kLabel), payload});
}

std::string FlowTokenCodec::encode(const FlowId& id) const {
    std::vector<uint8_t> buf;
    buf.reserve(1 + 20 + mac_len_);
    buf.push_back(kVersion);
    put_varint(buf, id.link_stream);
    put_varint(buf, id.connection);
    auto tag = mac(buf);
    buf.insert(buf.end(), tag.begin(), tag.begin() + ptrdiff_t(mac_len_));
    return base32::encode(buf);
}

std::optional<FlowId> FlowTokenCodec::decode(std::string_view token) const {
    if (token.size() > kMaxTokenChars) return std::nullopt;
    auto raw = base32::decode(token);
    if (!raw || raw->size() < 3 + mac_len_) return std::nullopt;
    std::span<const uint8_t> all(*raw);
    std::span<const uint8_t> payload = all.first(all.size() - mac_len_);
    auto tag = mac(payload);
    // Verify before interpreting anything, in constant time.
    if (CRYPTO_memcmp(tag.data(), all.data() + payload.size(), mac_len_) != 0) return std::nullopt;
    if (payload[0] != kVersion) return std::nullopt;
    std::span<const uint8_t> p = payload.subspan(1);
    FlowId id;
    if (!get_varint(p, id.link_stream) || !get_varint(p, id.connection) || !p.empty()) return std::nullopt;
    return id;
}

std::string FlowTokenMemo::encode(const FlowId& id) {
    if (auto it = by_id_.find(id); it != by_id_.end()) return it->second;
    if (by_id_.size() >= max_entries_) {
        by_id_.clear();
        by_token_.clear();
    }
    std::string token = codec_.encode(id);
    by_token_.emplace(token, id);
    by_id_.emplace(id, token);
    return token;
}

std::optional<FlowId> FlowTokenMemo::decode(std::string_view token) const {
    if (auto it = by_token_.find(token); it != by_token_.end()) return it->second;
    return codec_.decode(token);
}

void FlowTokenMemo::forget(const FlowId& id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    by_token_.erase(it->second);
    by_id_.erase(it);
}

} // namespace edgepair::sip
