#pragma once
// Flow tokens (RFC 5626 5.2 style): the identity of the client flow a request arrived on, carried in
// the user part of a URI this proxy writes (Contact, Path, Record-Route) so that requests coming
// back towards the client can be routed to the same connection without per-registration state.
// The token is authenticated (HMAC-SHA256, truncated) so an outsider cannot aim traffic at another
// user's connection by forging or editing one.
#include "common/core/result.h"
#include "common/crypto/digest.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace edgepair::sip {

struct FlowId {
    uint64_t link_stream = 0; // edge-e worker / link stream the flow is reached through
    uint64_t connection = 0;  // client connection id on that worker
    bool operator==(const FlowId&) const = default;
};

class FlowTokenCodec {
  public:
    static constexpr size_t kMinKeySize = 16;
    static constexpr size_t kMinMac = 10;
    static constexpr size_t kMaxMac = 16;

    // key: at least 16 bytes of secret; mac_len: 10..16 bytes of truncated HMAC-SHA256.
    static Result<FlowTokenCodec> create(std::span<const uint8_t> key, size_t mac_len = 12);

    // Lower-case base32 without padding: safe unescaped in a SIP URI user part and tolerant of
    // intermediaries that fold case.
    std::string encode(const FlowId& id) const;
    // nullopt for anything not produced by encode() under this key (tampered, truncated, other key).
    std::optional<FlowId> decode(std::string_view token) const;

  private:
    FlowTokenCodec(std::shared_ptr<const crypto::HmacSha256> hmac, size_t mac_len)
        : hmac_(std::move(hmac)), mac_len_(mac_len) {}
    crypto::Sha256Digest mac(std::span<const uint8_t> payload) const;

    // Keyed once (the key is not kept elsewhere); copies of the codec share it.
    std::shared_ptr<const crypto::HmacSha256> hmac_;
    size_t mac_len_;
};

// One worker's codec with the tokens of its live flows remembered both ways. A message names its flow's
// token several times (Via branch, Contact, Record-Route or Path) and every answer brings one back, so
// each would otherwise cost an HMAC (about a fifth of edge-c's CPU per REGISTER). A token found here was
// produced by this memo for that id, so it is authentic without a MAC check; anything else goes through
// the codec. Bounded: past max_entries everything is forgotten at once (tokens are recomputed, never
// wrong). Not thread-safe: one per worker.
class FlowTokenMemo {
  public:
    explicit FlowTokenMemo(FlowTokenCodec codec, size_t max_entries = 65536)
        : codec_(std::move(codec)), max_entries_(max_entries) {}

    std::string encode(const FlowId& id);
    std::optional<FlowId> decode(std::string_view token) const;
    // The flow is gone: its token is no longer remembered (a late message with it is still decoded).
    void forget(const FlowId& id);
    size_t size() const { return by_id_.size(); }

  private:
    struct IdHash {
        size_t operator()(const FlowId& id) const {
            return std::hash<uint64_t>{}(id.link_stream * 0x9e3779b97f4a7c15ULL ^ id.connection);
        }
    };
    struct TokenHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    FlowTokenCodec codec_;
    size_t max_entries_;
    std::unordered_map<FlowId, std::string, IdHash> by_id_;
    std::unordered_map<std::string, FlowId, TokenHash, std::equal_to<>> by_token_;
};

} // namespace edgepair::sip
