#pragma once
// RFC 4648 base32, lower case, no padding. Used where generated values end up in SIP tokens and
// URI user parts: the alphabet needs no escaping there, and decoding ignores case because some
// intermediaries change the case of what they consider host-like text.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::sip::base32 {

inline constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";

inline std::string encode(std::span<const uint8_t> data) {
    std::string out;
    out.reserve((data.size() * 8 + 4) / 5);
    uint32_t acc = 0;
    int bits = 0;
    for (uint8_t b : data) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 5) {
            out += kAlphabet[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out += kAlphabet[(acc << (5 - bits)) & 31];
    return out;
}

// Rejects characters outside the alphabet, impossible lengths and non-zero padding bits, so every
// byte string has exactly one accepted encoding.
inline std::optional<std::vector<uint8_t>> decode(std::string_view text) {
    size_t rem = text.size() % 8;
    if (rem == 1 || rem == 3 || rem == 6) return std::nullopt;
    std::vector<uint8_t> out;
    out.reserve(text.size() * 5 / 8);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        int v;
        if (c >= 'a' && c <= 'z')
            v = c - 'a';
        else if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return std::nullopt;
        acc = (acc << 5) | static_cast<uint32_t>(v);
        bits += 5;
        if (bits >= 8) {
            out.push_back(static_cast<uint8_t>(acc >> (bits - 8)));
            bits -= 8;
        }
        acc &= (1u << bits) - 1;
    }
    if (acc != 0) return std::nullopt;
    return out;
}

} // namespace edgepair::sip::base32
