#include "common/http/query.h"

namespace edgepair::http {

namespace {

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

std::string form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out.push_back(' ');
        } else if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out.push_back(char(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::vector<std::string> query_values(std::string_view query, std::string_view name, size_t max) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= query.size() && out.size() < max) {
        size_t j = query.find('&', i);
        if (j == std::string_view::npos) j = query.size();
        auto kv = query.substr(i, j - i);
        auto eq = kv.find('=');
        if (eq != std::string_view::npos && form_decode(kv.substr(0, eq)) == name)
            out.push_back(form_decode(kv.substr(eq + 1)));
        i = j + 1;
    }
    return out;
}

} // namespace edgepair::http
