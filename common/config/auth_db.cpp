#include "common/config/auth_db.h"

#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/config/yaml_reader.h"

namespace edgepair::config {

namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;

std::string to_hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool from_hex(std::string_view s, std::vector<unsigned char>& out) {
    if (s.empty() || s.size() % 2) return false;
    out.clear();
    for (std::size_t i = 0; i < s.size(); i += 2) {
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<unsigned char>(hi << 4 | lo));
    }
    return true;
}

bool pbkdf2(std::string_view password, const std::vector<unsigned char>& salt, uint32_t iterations,
            unsigned char* out, std::size_t out_len) {
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                             static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                             static_cast<int>(out_len), out) == 1;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        auto pos = s.find(sep, start);
        out.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
        if (pos == std::string_view::npos) break;
        start = pos + 1;
    }
    return out;
}

} // namespace

bool valid_auth_username(std::string_view u) {
    if (u.empty() || u.size() > 64) return false;
    for (char c : u) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '@' || c == '-';
        if (!ok) return false;
    }
    return true;
}

const AuthUser* AuthDb::find(std::string_view username) const {
    for (const auto& u : users_)
        if (u.username == username) return &u;
    return nullptr;
}

bool AuthDb::verify(std::string_view username, std::string_view password) const {
    const AuthUser* u = find(username);
    static const AuthUser dummy{"", kAuthDefaultIterations, std::vector<unsigned char>(kSaltBytes, 0x5a),
                                std::vector<unsigned char>(kHashBytes, 0), 0};
    const AuthUser& who = u ? *u : dummy;
    std::vector<unsigned char> got(who.hash.size());
    if (!pbkdf2(password, who.salt, who.iterations, got.data(), got.size())) return false;
    bool same = CRYPTO_memcmp(got.data(), who.hash.data(), got.size()) == 0;
    OPENSSL_cleanse(got.data(), got.size());
    return u != nullptr && same;
}

Result<AuthDb> parse_auth_db(std::string_view text, const std::string& file_name,
                             std::vector<Diagnostic>* diag) {
    std::vector<AuthUser> users;
    std::vector<Diagnostic> errors;
    auto fail = [&](int line, std::string msg) {
        errors.push_back({file_name, line, "", std::move(msg), false});
    };
    int lineno = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++lineno;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.remove_suffix(1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        if (line.empty() || line.front() == '#') continue;

        auto f = split(line, ':');
        if (f.size() != 5) {
            fail(lineno, "expected username:pbkdf2-sha256:iterations:salt:hash (" + std::to_string(f.size()) +
                             " fields found)");
            continue;
        }
        AuthUser u;
        u.line = lineno;
        u.username = std::string(f[0]);
        if (!valid_auth_username(f[0])) {
            fail(lineno, "invalid username \"" + u.username + "\"");
            continue;
        }
        if (f[1] != kScheme) {
            fail(lineno, "unsupported scheme \"" + std::string(f[1]) + "\" (expected pbkdf2-sha256)");
            continue;
        }
        auto [p, ec] = std::from_chars(f[2].data(), f[2].data() + f[2].size(), u.iterations);
        if (ec != std::errc() || p != f[2].data() + f[2].size() || u.iterations < kAuthMinIterations ||
            u.iterations > kAuthMaxIterations) {
            fail(lineno, "iterations must be an integer " + std::to_string(kAuthMinIterations) + ".." +
                             std::to_string(kAuthMaxIterations));
            continue;
        }
        if (!from_hex(f[3], u.salt) || u.salt.size() < 8) {
            fail(lineno, "salt must be at least 8 bytes of hex");
            continue;
        }
        if (!from_hex(f[4], u.hash) || u.hash.size() < 16 || u.hash.size() > 64) {
            fail(lineno, "hash must be 16..64 bytes of hex");
            continue;
        }
        bool dup = false;
        for (const auto& other : users)
            if (other.username == u.username) {
                fail(lineno, "duplicate user \"" + u.username + "\" (first on line " +
                                 std::to_string(other.line) + ")");
                dup = true;
            }
        if (!dup) users.push_back(std::move(u));
    }
    if (diag) diag->insert(diag->end(), errors.begin(), errors.end());
    if (!errors.empty()) {
        std::string msg;
        for (const auto& e : errors)
            msg += (msg.empty() ? "" : "\n") + e.str();
        return make_error(std::move(msg));
    }
    return AuthDb(std::move(users));
}

Result<AuthDb> load_auth_db(const std::string& path, std::vector<Diagnostic>* diag) {
    if (auto err = check_readable_file(path, path); !err.empty()) {
        if (diag) diag->push_back({path, 0, "", err, false});
        return make_error(path + ": " + err);
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_auth_db(ss.str(), path, diag);
}

std::string make_auth_line(const std::string& user, const std::string& password, uint32_t iterations) {
    if (!valid_auth_username(user) || iterations < kAuthMinIterations || iterations > kAuthMaxIterations)
        return {};
    std::vector<unsigned char> salt(kSaltBytes);
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) return {};
    unsigned char hash[kHashBytes];
    if (!pbkdf2(password, salt, iterations, hash, sizeof hash)) return {};
    std::string line = user + ":" + std::string(kScheme) + ":" + std::to_string(iterations) + ":" +
                       to_hex(salt.data(), salt.size()) + ":" + to_hex(hash, sizeof hash);
    OPENSSL_cleanse(hash, sizeof hash);
    return line;
}

} // namespace edgepair::config
