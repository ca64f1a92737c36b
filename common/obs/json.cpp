#include "common/obs/json.h"

#include <fmt/format.h>

namespace edgepair::obs {

void json_escape_into(std::string& out, std::string_view s) {
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20)
                out += fmt::format("\\u{:04x}", c);
            else
                out += char(c);
        }
    }
}

std::string json_str(std::string_view s) {
    std::string out = "\"";
    json_escape_into(out, s);
    out += '"';
    return out;
}

} // namespace edgepair::obs
