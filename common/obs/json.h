#pragma once
// JSON string escaping for the small documents we write by hand (log lines, /status, link control
// messages); parsing goes through nlohmann::json.
#include <string>
#include <string_view>

namespace edgepair::obs {

// Appends `s` escaped for a JSON string body (no surrounding quotes).
void json_escape_into(std::string& out, std::string_view s);
// `s` as a quoted JSON string.
std::string json_str(std::string_view s);

} // namespace edgepair::obs
