#include "common/media/sdp.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

namespace edgepair::media {

namespace {

constexpr size_t kMaxBody = 64 * 1024;
constexpr size_t kMaxMedia = 64;
constexpr size_t kMaxLines = 1000;

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Splits on single spaces; runs of spaces (seen in the wild in m= lines) yield no empty tokens.
std::vector<std::string_view> split_spaces(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ')
            ++i;
        size_t j = i;
        while (j < s.size() && s[j] != ' ')
            ++j;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

std::optional<unsigned> parse_uint(std::string_view s, unsigned max) {
    if (!all_digits(s) || s.size() > 9) return std::nullopt;
    unsigned v = 0;
    for (char c : s)
        v = v * 10 + unsigned(c - '0');
    if (v > max) return std::nullopt;
    return v;
}

Error line_error(size_t n, std::string_view what) {
    return make_error(fmt::format("SDP line {}: {}", n, what));
}

Result<SdpMedia> parse_m_line(std::string_view value, size_t n) {
    auto tok = split_spaces(value);
    if (tok.size() < 3) return line_error(n, "m= needs <media> <port> <proto> [<fmt>...]");
    SdpMedia m;
    m.media = std::string(tok[0]);
    std::string_view port = tok[1], count;
    if (auto slash = port.find('/'); slash != std::string_view::npos) {
        count = port.substr(slash + 1);
        port = port.substr(0, slash);
        auto c = parse_uint(count, 65535);
        if (!c || *c == 0) return line_error(n, "m= port count is not a number from 1 to 65535");
        m.port_count = *c;
    }
    // At most 5 digits so that a rebuilt m= line keeps the same port text (no "004000").
    auto p = port.size() <= 5 ? parse_uint(port, 65535) : std::nullopt;
    if (!p) return line_error(n, "m= port is not a number from 0 to 65535");
    m.port = uint16_t(*p);
    m.proto = std::string(tok[2]);
    for (size_t i = 3; i < tok.size(); ++i)
        m.formats.emplace_back(tok[i]);
    return m;
}

// o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
bool valid_origin(std::string_view value) {
    auto tok = split_spaces(value);
    return tok.size() == 6 && all_digits(tok[2]);
}

bool valid_connection(std::string_view value) {
    return split_spaces(value).size() == 3;
}

// The address token of a c= value, without a multicast "/ttl[/n]" suffix.
std::optional<std::string> connection_address(std::string_view value) {
    auto tok = split_spaces(value);
    if (tok.size() < 3) return std::nullopt;
    std::string_view a = tok[2];
    if (auto slash = a.find('/'); slash != std::string_view::npos) a = a.substr(0, slash);
    return std::string(a);
}

// "a=<name>" or "a=<name>:<value>" matching name; the value ("" for a flag) when it does.
std::optional<std::string_view> attribute_value(const SdpLine& l, std::string_view name) {
    if (l.type != 'a') return std::nullopt;
    std::string_view v = l.value;
    if (v.size() < name.size() || v.substr(0, name.size()) != name) return std::nullopt;
    if (v.size() == name.size()) return std::string_view{};
    if (v[name.size()] != ':') return std::nullopt;
    return v.substr(name.size() + 1);
}

// The o= fields rebuilt around a replaced sess-version or address; the line was validated at parse time,
// but a caller may have edited session lines since, so anything odd is left alone.
SdpLine* find_origin(std::vector<SdpLine>& session) {
    for (auto& l : session)
        if (l.type == 'o' && valid_origin(l.value)) return &l;
    return nullptr;
}

std::string join(const std::vector<std::string_view>& tok) {
    std::string out;
    for (size_t i = 0; i < tok.size(); ++i) {
        if (i) out += ' ';
        out += tok[i];
    }
    return out;
}

} // namespace

bool SdpMedia::is_rtp() const {
    // Case-insensitive: a profile we failed to recognise would let media bypass the relay.
    for (const char* p : {"RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF"})
        if (iequals(proto, p)) return true;
    return false;
}

std::vector<std::string_view> SdpMedia::attributes(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& l : lines)
        if (auto v = attribute_value(l, name)) out.push_back(*v);
    return out;
}

bool SdpMedia::has_attribute(std::string_view name) const {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const SdpLine& l) { return attribute_value(l, name).has_value(); });
}

size_t SdpMedia::remove_attributes(std::initializer_list<std::string_view> names) {
    size_t before = lines.size();
    std::erase_if(lines, [&](const SdpLine& l) {
        return std::any_of(names.begin(), names.end(),
                           [&](std::string_view n) { return attribute_value(l, n).has_value(); });
    });
    return before - lines.size();
}

void SdpMedia::add_attribute(std::string_view name, std::string_view value) {
    std::string v(name);
    if (!value.empty()) {
        v += ':';
        v += value;
    }
    lines.push_back(SdpLine{'a', std::move(v)});
}

std::optional<std::string> SdpMedia::connection() const {
    for (const auto& l : lines)
        if (l.type == 'c') return connection_address(l.value);
    return std::nullopt;
}

Result<Sdp> Sdp::parse(std::string_view body) {
    if (body.size() > kMaxBody) return make_error(fmt::format("SDP body over {} bytes", kMaxBody));
    std::vector<std::string_view> raw;
    size_t pos = 0;
    while (pos < body.size()) {
        size_t nl = body.find('\n', pos);
        std::string_view line = nl == std::string_view::npos ? body.substr(pos) : body.substr(pos, nl - pos);
        pos = nl == std::string_view::npos ? body.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        raw.push_back(line); // no early stop: what follows blank lines must still be seen (64 kB bounds it)
    }
    // Some stacks end the body with a blank line (CRLF CRLF); it carries nothing.
    while (!raw.empty() && raw.back().empty())
        raw.pop_back();
    if (raw.size() > kMaxLines) return make_error(fmt::format("SDP body over {} lines", kMaxLines));
    if (raw.empty()) return make_error("empty SDP body");

    Sdp sdp;
    bool have_origin = false;
    for (size_t i = 0; i < raw.size(); ++i) {
        std::string_view line = raw[i];
        size_t n = i + 1;
        if (line.empty()) return line_error(n, "empty line");
        if (line.size() < 2 || line[1] != '=') return line_error(n, "expected <type>=<value>");
        char type = line[0];
        if (!((type >= 'a' && type <= 'z') || (type >= 'A' && type <= 'Z')))
            return line_error(n, "line type is not a letter");
        std::string_view value = line.substr(2);
        for (char c : value) {
            if (c == '\0') return line_error(n, "NUL byte");
            if (c == '\r') return line_error(n, "CR inside a line");
        }
        if (i == 0) {
            if (type != 'v') return line_error(n, "SDP must start with v=");
            if (value != "0") return line_error(n, "unsupported SDP version");
            sdp.session.push_back(SdpLine{type, std::string(value)});
            continue;
        }
        if (type == 'v') return line_error(n, "second v= line");
        if (type == 'o') {
            if (!sdp.media.empty() || have_origin) return line_error(n, "o= out of place");
            if (!valid_origin(value))
                return line_error(n,
                                  "o= needs <user> <sess-id> <sess-version> <nettype> <addrtype> <address>");
            have_origin = true;
        }
        if (type == 'c' && !valid_connection(value))
            return line_error(n, "c= needs <nettype> <addrtype> <address>");
        if (type == 'm') {
            if (sdp.media.size() == kMaxMedia)
                return line_error(n, fmt::format("more than {} media sections", kMaxMedia));
            auto m = parse_m_line(value, n);
            if (!m) return m.error();
            sdp.media.push_back(std::move(*m));
            continue;
        }
        SdpLine l{type, std::string(value)};
        if (sdp.media.empty())
            sdp.session.push_back(std::move(l));
        else
            sdp.media.back().lines.push_back(std::move(l));
    }
    if (!have_origin) return make_error("SDP has no o= line");
    return sdp;
}

std::string Sdp::serialize() const {
    std::string out;
    auto put = [&](char type, std::string_view value) {
        out += type;
        out += '=';
        out += value;
        out += "\r\n";
    };
    for (const auto& l : session)
        put(l.type, l.value);
    for (const auto& m : media) {
        std::string ml = m.media;
        ml += ' ';
        ml += std::to_string(m.port);
        if (m.port_count != 1) {
            ml += '/';
            ml += std::to_string(m.port_count);
        }
        ml += ' ';
        ml += m.proto;
        for (const auto& f : m.formats) {
            ml += ' ';
            ml += f;
        }
        put('m', ml);
        for (const auto& l : m.lines)
            put(l.type, l.value);
    }
    return out;
}

std::optional<std::string> Sdp::address_of(size_t i) const {
    if (i >= media.size()) return std::nullopt;
    std::optional<std::string> a = media[i].connection();
    if (!a) {
        for (const auto& l : session)
            if (l.type == 'c') {
                a = connection_address(l.value);
                break;
            }
    }
    // 0.0.0.0 (RFC 3264 hold, old style) and :: mean "send nothing", not an address to relay to.
    if (!a || a->empty() || *a == "0.0.0.0" || *a == "::") return std::nullopt;
    return a;
}

void Sdp::set_address(std::string_view ip) {
    bool v6 = ip.find(':') != std::string_view::npos;
    std::string cvalue = fmt::format("IN {} {}", v6 ? "IP6" : "IP4", ip);
    for (auto& m : media)
        std::erase_if(m.lines, [](const SdpLine& l) { return l.type == 'c'; });

    // Keep the first session c= where it is; otherwise put one where RFC 8866 orders it: after
    // v= o= s= i= u= e= p=, before b= t= and the rest.
    auto first_c =
        std::find_if(session.begin(), session.end(), [](const SdpLine& l) { return l.type == 'c'; });
    if (first_c != session.end()) {
        first_c->value = cvalue;
        bool seen = false;
        std::erase_if(session, [&](const SdpLine& l) {
            if (l.type != 'c') return false;
            return std::exchange(seen, true);
        });
    } else {
        auto at = std::find_if(session.begin(), session.end(),
                               [](const SdpLine& l) { return std::strchr("vosiuep", l.type) == nullptr; });
        session.insert(at, SdpLine{'c', cvalue});
    }

    if (SdpLine* o = find_origin(session)) {
        auto tok = split_spaces(o->value);
        std::string addrtype = v6 ? "IP6" : "IP4";
        tok[3] = "IN";
        tok[4] = addrtype;
        tok[5] = ip;
        o->value = join(tok);
    }
}

void Sdp::bump_version() {
    SdpLine* o = find_origin(session);
    if (!o) return;
    auto tok = split_spaces(o->value);
    // Decimal increment on the text: sess-version may be wider than 64 bits in the wild.
    std::string v(tok[2]);
    size_t i = v.size();
    while (i > 0) {
        --i;
        if (v[i] != '9') {
            ++v[i];
            break;
        }
        v[i] = '0';
        if (i == 0) v.insert(v.begin(), '1');
    }
    tok[2] = v;
    o->value = join(tok);
}

// ---- a=crypto ----

std::optional<SrtpSuite> suite_from_name(std::string_view name) {
    // RFC 4568's ABNF names are literal strings, which RFC 5234 makes case-insensitive.
    if (iequals(name, "AES_CM_128_HMAC_SHA1_80")) return SrtpSuite::AES_CM_128_HMAC_SHA1_80;
    if (iequals(name, "AES_CM_128_HMAC_SHA1_32")) return SrtpSuite::AES_CM_128_HMAC_SHA1_32;
    return std::nullopt;
}

const char* suite_name(SrtpSuite s) {
    switch (s) {
    case SrtpSuite::AES_CM_128_HMAC_SHA1_80:
        return "AES_CM_128_HMAC_SHA1_80";
    case SrtpSuite::AES_CM_128_HMAC_SHA1_32:
        return "AES_CM_128_HMAC_SHA1_32";
    }
    return "?";
}

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
        out += kB64[v >> 18 & 63];
        out += kB64[v >> 12 & 63];
        out += kB64[v >> 6 & 63];
        out += kB64[v & 63];
    }
    if (size_t rest = in.size() - i) {
        uint32_t v = uint32_t(uint8_t(in[i])) << 16 | (rest == 2 ? uint32_t(uint8_t(in[i + 1])) << 8 : 0);
        out += kB64[v >> 18 & 63];
        out += kB64[v >> 12 & 63];
        out += rest == 2 ? kB64[v >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Strict RFC 4648: full quanta, padding only at the end, and unused bits zero, so that one key has exactly
// one text form (a key that re-encodes differently would not match in a later re-offer).
std::optional<std::string> b64_decode(std::string_view in) {
    if (in.size() % 4 != 0) return std::nullopt;
    size_t pad = 0;
    if (!in.empty() && in.back() == '=') ++pad;
    if (pad == 1 && in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (size_t i = 0; i < in.size(); i += 4) {
        bool last = i + 4 == in.size();
        int v[4];
        for (int k = 0; k < 4; ++k) {
            char c = in[i + size_t(k)];
            if (c == '=' && last && size_t(k) >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0) return std::nullopt;
        }
        uint32_t w = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
        out += char(w >> 16 & 0xff);
        if (!(last && pad == 2))
            out += char(w >> 8 & 0xff);
        else if (w & 0xffff)
            return std::nullopt;
        if (!(last && pad >= 1))
            out += char(w & 0xff);
        else if (w & 0xff)
            return std::nullopt;
    }
    return out;
}

// "|2^20" (lifetime) or "|1:4" (MKI:length) parts after the key.
bool valid_key_suffix(std::string_view s) {
    if (s.empty()) return false;
    if (auto colon = s.find(':'); colon != std::string_view::npos)
        return all_digits(s.substr(0, colon)) && all_digits(s.substr(colon + 1));
    if (auto caret = s.find('^'); caret != std::string_view::npos)
        return all_digits(s.substr(0, caret)) && all_digits(s.substr(caret + 1));
    return all_digits(s);
}

} // namespace

std::optional<CryptoAttr> CryptoAttr::parse(std::string_view value) {
    auto tok = split_spaces(value);
    if (tok.size() < 3) return std::nullopt;
    CryptoAttr c;
    auto tag = parse_uint(tok[0], 999999999);
    if (!tag) return std::nullopt;
    c.tag = *tag;
    auto suite = suite_from_name(tok[1]);
    if (!suite) return std::nullopt;
    c.suite = *suite;

    // key-params: "inline:<key||salt>[|lifetime][|mki:len]" joined by ';' when there are several keys.
    std::string_view params = tok[2];
    size_t semi = params.find(';');
    std::string_view first = params.substr(0, semi);
    if (semi != std::string_view::npos) {
        // More than one master key only makes sense with MKIs, which we refuse anyway.
        c.has_lifetime_or_mki = true;
        c.has_mki = true;
    }
    constexpr std::string_view kInline = "inline:";
    if (first.size() < kInline.size() || !iequals(first.substr(0, kInline.size()), kInline))
        return std::nullopt;
    std::string_view info = first.substr(kInline.size());
    size_t bar = info.find('|');
    std::string_view key_text = info.substr(0, bar);
    if (bar != std::string_view::npos) {
        std::string_view rest = info.substr(bar + 1);
        while (true) {
            size_t next = rest.find('|');
            if (!valid_key_suffix(rest.substr(0, next))) return std::nullopt;
            if (rest.substr(0, next).find(':') != std::string_view::npos) c.has_mki = true;
            if (next == std::string_view::npos) break;
            rest = rest.substr(next + 1);
        }
        c.has_lifetime_or_mki = true;
    }
    auto key = b64_decode(key_text);
    if (!key || key->size() != kSrtpMasterKeyLen) return std::nullopt;
    c.master_key = std::move(*key);
    for (size_t i = 3; i < tok.size(); ++i)
        c.session_params.emplace_back(tok[i]);
    return c;
}

std::string CryptoAttr::format() const {
    return fmt::format("{} {} inline:{}", tag, suite_name(suite), b64_encode(master_key));
}

CryptoAttr CryptoAttr::random(unsigned tag, SrtpSuite suite) {
    CryptoAttr c;
    c.tag = tag;
    c.suite = suite;
    std::array<unsigned char, kSrtpMasterKeyLen> k{};
    // A predictable media key is worse than no call: never fall back to anything weaker.
    if (RAND_bytes(k.data(), int(k.size())) != 1) std::abort();
    c.master_key.assign(reinterpret_cast<const char*>(k.data()), k.size());
    OPENSSL_cleanse(k.data(), k.size());
    return c;
}

} // namespace edgepair::media
