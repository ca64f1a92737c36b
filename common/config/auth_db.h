#pragma once
// The link authentication database of edge-e: the zone credentials edge-c presents on the link.
//
// File format, one user a line, '#' starts a comment line, blank lines ignored:
//   username:pbkdf2-sha256:<iterations>:<salt hex>:<hash hex>
// PBKDF2-HMAC-SHA256 (RFC 8018) because it is in every OpenSSL, needs no extra dependency, and the
// iteration count is stored per line so it can be raised without invalidating old entries.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/diagnostics.h"
#include "common/core/result.h"

namespace edgepair::config {

inline constexpr uint32_t kAuthMinIterations = 1000;
inline constexpr uint32_t kAuthMaxIterations = 10'000'000; // bounds the CPU one login can cost
inline constexpr uint32_t kAuthDefaultIterations = 100'000;

struct AuthUser {
    std::string username;
    uint32_t iterations = 0;
    std::vector<unsigned char> salt;
    std::vector<unsigned char> hash;
    int line = 0;
};

class AuthDb {
  public:
    AuthDb() = default;
    explicit AuthDb(std::vector<AuthUser> users) : users_(std::move(users)) {}

    const std::vector<AuthUser>& users() const { return users_; }
    const AuthUser* find(std::string_view username) const;
    // Constant-time hash comparison; an unknown user costs the same PBKDF2 run so timing does not reveal
    // which usernames exist.
    bool verify(std::string_view username, std::string_view password) const;

  private:
    std::vector<AuthUser> users_;
};

// Letters, digits and . _ @ - ; 1..64 chars (no ':' since it separates fields).
bool valid_auth_username(std::string_view username);

// `file_name` only labels diagnostics. Every malformed line is reported (file:line: message) to diag when
// given; on any error the Result fails with all of them, one per line.
Result<AuthDb> parse_auth_db(std::string_view text, const std::string& file_name,
                             std::vector<Diagnostic>* diag = nullptr);
Result<AuthDb> load_auth_db(const std::string& path, std::vector<Diagnostic>* diag = nullptr);

// One database line for `user` with a fresh random 16-byte salt. Empty string when the username is
// invalid, the iteration count is outside kAuthMinIterations..kAuthMaxIterations, or the RNG fails.
std::string make_auth_line(const std::string& user, const std::string& password,
                           uint32_t iterations = kAuthDefaultIterations);

} // namespace edgepair::config
