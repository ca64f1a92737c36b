#include "common/config/diagnostics.h"

#include <algorithm>

namespace edgepair::config {

std::string Diagnostic::str() const {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!key.empty()) out += key + ": ";
    if (warning) out += "warning: ";
    out += message;
    return out;
}

void Diagnostics::error(std::string file, int line, std::string key, std::string message) {
    errors.push_back({std::move(file), line, std::move(key), std::move(message), false});
}

void Diagnostics::warn(std::string file, int line, std::string key, std::string message) {
    warnings.push_back({std::move(file), line, std::move(key), std::move(message), true});
}

void Diagnostics::sort() {
    auto by_place = [](const Diagnostic& a, const Diagnostic& b) {
        return a.file != b.file ? a.file < b.file : a.line < b.line;
    };
    std::stable_sort(errors.begin(), errors.end(), by_place);
    std::stable_sort(warnings.begin(), warnings.end(), by_place);
}

static std::string join(const std::vector<Diagnostic>& v) {
    std::string out;
    for (const auto& d : v) {
        if (!out.empty()) out += '\n';
        out += d.str();
    }
    return out;
}

std::string Diagnostics::errors_text() const {
    return join(errors);
}
std::string Diagnostics::warnings_text() const {
    return join(warnings);
}

int SourceMap::line_of(std::string_view key) const {
    while (!key.empty()) {
        if (auto it = lines.find(key); it != lines.end()) return it->second;
        auto cut = key.find_last_of(".[");
        if (cut == std::string_view::npos) break;
        key = key.substr(0, cut);
    }
    return 0;
}

} // namespace edgepair::config
