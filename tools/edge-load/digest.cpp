#include "tools/edge-load/digest.h"

#include <cctype>
#include <openssl/evp.h>

#include <fmt/format.h>

namespace edgepair::load {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

void skip_ws(std::string_view s, size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        ++i;
}

// auth-param list: token "=" ( token / quoted-string ), separated by commas.
std::map<std::string, std::string> parse_params(std::string_view s) {
    std::map<std::string, std::string> out;
    size_t i = 0;
    // A hostile challenge cannot make this loop longer than the value: every pass consumes a byte.
    while (i < s.size()) {
        skip_ws(s, i);
        size_t k = i;
        while (i < s.size() && s[i] != '=' && s[i] != ',' && s[i] != ' ')
            ++i;
        std::string key(s.substr(k, i - k));
        for (auto& c : key)
            c = char(std::tolower(static_cast<unsigned char>(c)));
        skip_ws(s, i);
        std::string val;
        if (i < s.size() && s[i] == '=') {
            ++i;
            skip_ws(s, i);
            if (i < s.size() && s[i] == '"') {
                ++i;
                while (i < s.size() && s[i] != '"') {
                    if (s[i] == '\\' && i + 1 < s.size()) ++i;
                    val += s[i++];
                }
                if (i < s.size()) ++i; // closing quote
            } else {
                size_t v = i;
                while (i < s.size() && s[i] != ',' && s[i] != ' ' && s[i] != '\t')
                    ++i;
                val = std::string(s.substr(v, i - v));
            }
        }
        if (!key.empty()) out[key] = val;
        skip_ws(s, i);
        if (i < s.size() && s[i] == ',')
            ++i;
        else if (i < s.size() && k == i)
            ++i;
    }
    return out;
}

} // namespace

std::string md5_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
    std::string hex;
    hex.reserve(2 * n);
    for (unsigned i = 0; i < n; ++i)
        hex += fmt::format("{:02x}", md[i]);
    return hex;
}

std::optional<DigestChallenge> parse_digest_challenge(std::string_view value) {
    size_t i = 0;
    skip_ws(value, i);
    size_t sp = value.find_first_of(" \t", i);
    if (sp == std::string_view::npos || !iequals(value.substr(i, sp - i), "Digest")) return std::nullopt;
    auto p = parse_params(value.substr(sp + 1));
    DigestChallenge ch;
    ch.realm = p["realm"];
    ch.nonce = p["nonce"];
    ch.opaque = p["opaque"];
    ch.algorithm = p["algorithm"];
    ch.stale = iequals(p["stale"], "true");
    if (ch.nonce.empty()) return std::nullopt;
    if (!ch.algorithm.empty() && !iequals(ch.algorithm, "MD5")) return std::nullopt;
    std::string_view qop = p["qop"];
    size_t pos = 0;
    while (pos <= qop.size()) {
        size_t comma = qop.find(',', pos);
        std::string_view tok =
            qop.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        while (!tok.empty() && tok.front() == ' ')
            tok.remove_prefix(1);
        while (!tok.empty() && tok.back() == ' ')
            tok.remove_suffix(1);
        if (iequals(tok, "auth")) ch.qop_auth = true;
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    return ch;
}

std::string digest_authorization(const DigestChallenge& ch, std::string_view user, std::string_view password,
                                 std::string_view method, std::string_view uri, uint32_t nc,
                                 std::string_view cnonce) {
    std::string ha1 = md5_hex(fmt::format("{}:{}:{}", user, ch.realm, password));
    std::string ha2 = md5_hex(fmt::format("{}:{}", method, uri));
    std::string ncs = fmt::format("{:08x}", nc);
    std::string response = ch.qop_auth
                               ? md5_hex(fmt::format("{}:{}:{}:{}:auth:{}", ha1, ch.nonce, ncs, cnonce, ha2))
                               : md5_hex(fmt::format("{}:{}:{}", ha1, ch.nonce, ha2));
    std::string v =
        fmt::format("Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", "
                    "algorithm=MD5",
                    user, ch.realm, ch.nonce, uri, response);
    if (ch.qop_auth) v += fmt::format(", qop=auth, nc={}, cnonce=\"{}\"", ncs, cnonce);
    if (!ch.opaque.empty()) v += fmt::format(", opaque=\"{}\"", ch.opaque);
    return v;
}

} // namespace edgepair::load
