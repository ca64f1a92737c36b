#pragma once
// The read-only status page of an admin port: one HTML document rendered on the server from the /status
// document (so the page and the JSON never disagree), plus its stylesheet. It works without JavaScript,
// loads nothing from elsewhere and refreshes itself with <meta http-equiv="refresh">, so the admin
// endpoint can send a Content-Security-Policy that allows only a same-origin stylesheet.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace edgepair::admin {

// `s` safe in HTML text and in a quoted attribute value.
std::string html_escape(std::string_view s);

struct PageInput {
    const nlohmann::json& status;  // the /status document (with its "alarms" array)
    std::string_view ready_reason; // empty when ready
    std::string_view metrics_text; // /metrics: refusals by reason are read from its counters
    int refresh_s = 5;
};
std::string render_status_page(const PageInput& in);
std::string status_page_css();

} // namespace edgepair::admin
