#include "common/protection/classify.h"

namespace edgepair::protection {

std::optional<Category> refusal_category(int status, std::string_view reason) {
    switch (status) {
    case 400:
    case 414:
    case 431:
    case 501:
    case 505:
        return Category::HttpIntrusion;
    case 404:
    case 405:
        return Category::HttpAccess;
    case 403:
        return reason == "blocked" ? Category::HttpAccess : Category::HttpAuth;
    case 401:
        return Category::HttpAuth;
    default:
        return std::nullopt;
    }
}

std::optional<Category> answer_category(int status) {
    if (status == 401 || status == 403 || status == 407) return Category::HttpAuth;
    if (status == 404) return Category::HttpAccess;
    return std::nullopt;
}

bool sip_auth_failure(int status, std::string_view method, bool had_credentials) {
    if (method != "REGISTER" && method != "INVITE") return false;
    if (status == 403) return true;
    return (status == 401 || status == 407) && had_credentials;
}

} // namespace edgepair::protection
