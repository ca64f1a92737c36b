#pragma once
// application/x-www-form-urlencoded query strings as MRA clients send them
// (get_edge_config?service_name=_cisco-uds&service_name=_cuplogin). Only reading: the proxy forwards a
// query as received (url_path validated it), so nothing here decides what reaches an upstream.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::http {

// '+' is a space and %XX a byte; a '%' without two hex digits stays as it is.
std::string form_decode(std::string_view s);

// The decoded values of parameter `name` (compared after decoding), in order, at most `max` of them.
// "a=1&a&a=" gives {"1", ""}: a name without '=' has no value and is skipped.
std::vector<std::string> query_values(std::string_view query, std::string_view name, size_t max = 16);

} // namespace edgepair::http
