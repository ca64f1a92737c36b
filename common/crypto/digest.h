#pragma once
// SHA-256 and HMAC-SHA256 for the data paths (SIP flow tokens on every message, credential cache keys and
// password stamps on every proxied request).
//
// Why not OpenSSL's one-shot HMAC() / EVP_Digest(EVP_sha256()): under OpenSSL 3 each call fetches the
// algorithm from the provider again and builds a fresh context, about 20,000 instructions for one HMAC of a
// few dozen bytes (callgrind, docs/BENCHMARKS.md). Here the algorithm is fetched once and an HMAC keeps a
// keyed context that each call duplicates, so a call costs the hashing and a copy.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/core/result.h"

typedef struct evp_mac_ctx_st EVP_MAC_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace edgepair::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

// SHA-256 with the algorithm fetched once and one digest context reused by every call (EVP_Digest would
// allocate and free a context and its provider state each time). Not thread-safe: one per owner, such as
// a worker's credential cache.
class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    Sha256Digest operator()(std::span<const uint8_t> data);
    Sha256Digest operator()(std::string_view data);

  private:
    EVP_MD* md_;
    EVP_MD_CTX* ctx_;
};

// HMAC-SHA256 under one key. Immutable after construction (each call works on a copy of the keyed
// context): any thread may use it.
class HmacSha256 {
  public:
    static Result<std::unique_ptr<HmacSha256>> create(std::span<const uint8_t> key);
    ~HmacSha256();
    HmacSha256(const HmacSha256&) = delete;
    HmacSha256& operator=(const HmacSha256&) = delete;
    // The MAC of the concatenation of `parts` (no separator is added: the caller frames its fields).
    Sha256Digest operator()(std::initializer_list<std::span<const uint8_t>> parts) const;
    Sha256Digest operator()(std::span<const uint8_t> data) const { return (*this)({data}); }

  private:
    explicit HmacSha256(EVP_MAC_CTX* keyed) : keyed_(keyed) {}
    EVP_MAC_CTX* keyed_;
};

// Lower-case hex, as the cluster's wire forms carry digests and MACs.
std::string to_hex(std::span<const uint8_t> b);

inline std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

} // namespace edgepair::crypto
