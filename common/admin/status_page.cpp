#include "common/admin/status_page.h"

#include <ctime>
#include <regex>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace edgepair::admin {

using nlohmann::json;

namespace {

std::string iso_utc(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

// One value as a person reads it, escaped.
std::string cell(const json& v) {
    if (v.is_null()) return "&mdash;";
    if (v.is_string()) return html_escape(v.get<std::string>());
    if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
    if (v.is_number()) return html_escape(v.dump());
    if (v.is_array()) {
        std::string out;
        for (auto& e : v) {
            if (!out.empty()) out += ", ";
            out += cell(e);
        }
        return out.empty() ? "&mdash;" : out;
    }
    return html_escape(v.dump());
}

using Columns = std::vector<std::pair<const char*, const char*>>; // key, heading

// A table of the objects in `rows`; a column no row has is left out. `row_class` may name a class per row.
std::string table(const json& rows, const Columns& cols, const char* empty_text,
                  const std::function<std::string(const json&)>& row_class = {}) {
    if (!rows.is_array() || rows.empty()) return fmt::format("<p class=\"none\">{}</p>\n", empty_text);
    Columns present;
    for (auto& c : cols)
        for (auto& r : rows)
            if (r.is_object() && r.contains(c.first)) {
                present.push_back(c);
                break;
            }
    std::string out = "<table>\n<thead><tr>";
    for (auto& c : present)
        out += fmt::format("<th>{}</th>", c.second);
    out += "</tr></thead>\n<tbody>\n";
    for (auto& r : rows) {
        std::string cls = row_class ? row_class(r) : std::string();
        out += cls.empty() ? "<tr>" : fmt::format("<tr class=\"{}\">", html_escape(cls));
        for (auto& c : present)
            out += fmt::format("<td>{}</td>", r.is_object() && r.contains(c.first) ? cell(r[c.first]) : "");
        out += "</tr>\n";
    }
    return out + "</tbody>\n</table>\n";
}

// A list of plain values.
std::string list(const json& items, const char* empty_text) {
    if (!items.is_array() || items.empty()) return fmt::format("<p class=\"none\">{}</p>\n", empty_text);
    std::string out = "<ul>";
    for (auto& i : items)
        out += "<li>" + cell(i) + "</li>";
    return out + "</ul>\n";
}

const json& at(const json& j, std::initializer_list<const char*> path) {
    static const json kNull; // immutable
    const json* p = &j;
    for (auto k : path) {
        if (!p->is_object() || !p->contains(k)) return kNull;
        p = &(*p)[k];
    }
    return *p;
}

std::string alarms_section(const json& alarms) {
    json rows = json::array();
    if (alarms.is_array())
        for (auto a : alarms) {
            for (auto k : {"first_seen", "last_seen", "cleared"})
                if (a.contains(k) && a[k].is_number_integer()) a[k] = iso_utc(a[k].get<int64_t>());
            rows.push_back(std::move(a));
        }
    return "<section id=\"alarms\">\n<h2>Alarms</h2>\n" +
           table(rows,
                 {{"id", "Alarm"},
                  {"severity", "Severity"},
                  {"state", "State"},
                  {"detail", "Detail"},
                  {"first_seen", "First seen"},
                  {"last_seen", "Last seen"},
                  {"cleared", "Cleared"},
                  {"count", "Raised"}},
                 "No alarms.",
                 [](const json& a) {
                     std::string state = a.value("state", "");
                     return state == "raised" ? "alarm " + a.value("severity", std::string())
                                              : "alarm cleared";
                 }) +
           "</section>\n";
}

std::string links_section(const json& st) {
    const json& link = at(st, {"link"});
    std::string out = "<section id=\"links\">\n<h2>Traversal links</h2>\n";
    if (auto& l = at(link, {"listen"}); !l.is_null()) out += "<p>Listening on " + cell(l) + "</p>\n";
    if (auto& p = at(link, {"peers"}); !p.is_null()) out += "<p>Peers: " + cell(p) + "</p>\n";
    out +=
        table(at(link, {"links"}),
              {{"peer_name", "Peer"},
               {"peer_address", "Address"},
               {"peer_node", "Node"},
               {"state", "State"},
               {"tls_version", "TLS"},
               {"streams_open", "Open streams"},
               {"streams_total", "Streams"},
               {"attempts", "Attempts"},
               {"last_error", "Last error"}},
              "No traversal link.", [](const json& l) { return "link " + l.value("state", std::string()); });
    // edge-e: what each edge-c peer announced when its links opened, and where it disagrees (issue #17).
    if (auto& peers = at(link, {"edge_c_peers"}); peers.is_array() && !peers.empty())
        out +=
            "<h3>edge-c peers</h3>\n" +
            table(peers,
                  {{"node", "Node"},
                   {"links_up", "Links up"},
                   {"cluster", "Cluster"},
                   {"domains", "Domains"},
                   {"deployments", "Deployments"},
                   {"consistent", "Consistent"},
                   {"mismatch", "Mismatch"}},
                  "", [](const json& p) { return p.value("consistent", true) ? "peer" : "peer mismatch"; });
    return out + "</section>\n";
}

std::string domains_section(const json& st) {
    std::string out = "<section id=\"domains\">\n<h2>Domains and deployments</h2>\n";
    if (auto& d = at(st, {"domains"}); d.is_array()) {
        out += table(d, {{"name", "Domain"}, {"deployment", "Deployment"}}, "No domains.");
        out += "<h3>Deployments</h3>\n" + list(at(st, {"deployments"}), "No deployments.");
    } else {
        // edge-e knows domains and nodes from the snapshot edge-c pushed.
        out += list(at(st, {"snapshot", "domains"}), "No domains (no configuration pushed by edge-c yet).");
    }
    return out + "</section>\n";
}

std::string discovery_section(const json& st) {
    const json& d = at(st, {"discovery"});
    std::string out = "<section id=\"discovery\">\n<h2>Discovered nodes</h2>\n";
    if (d.is_null()) {
        out += list(at(st, {"snapshot", "nodes"}), "No nodes (no configuration pushed by edge-c yet).");
        return out + "</section>\n";
    }
    if (auto& note = at(d, {"note"}); note.is_string() && !note.get<std::string>().empty())
        out += "<p class=\"note\">" + cell(note) + "</p>\n";
    out += "<h3>Publishers</h3>\n" + table(at(d, {"publishers"}),
                                           {{"type", "Type"},
                                            {"address", "Address"},
                                            {"port", "Port"},
                                            {"deployment", "Deployment"},
                                            {"state", "State"},
                                            {"error", "Error"},
                                            {"stale", "Stale"},
                                            {"last_success", "Last success"},
                                            {"nodes", "Nodes"}},
                                           "No publishers configured.");
    out += "<h3>Nodes</h3>\n" + table(at(d, {"nodes"}),
                                      {{"name", "Node"},
                                       {"type", "Type"},
                                       {"deployment", "Deployment"},
                                       {"security_mode", "Security mode"},
                                       {"stale", "Stale"},
                                       {"discovered_via", "Discovered via"},
                                       {"discovered_at", "Discovered at"}},
                                      "No nodes discovered.");
    out += "<h3>Zones</h3>\n" + table(at(d, {"zones"}),
                                      {{"name", "Zone"},
                                       {"node", "Node"},
                                       {"transport", "Transport"},
                                       {"port", "Port"},
                                       {"tls_verify", "TLS verify"},
                                       {"deployment", "Deployment"}},
                                      "No zones.");
    out += "<h3>Search rules</h3>\n" + table(at(d, {"search_rules"}),
                                             {{"priority", "Priority"},
                                              {"name", "Rule"},
                                              {"pattern_type", "Pattern type"},
                                              {"pattern", "Pattern"},
                                              {"target_zone", "Target zone"}},
                                             "No search rules.");
    return out + "</section>\n";
}

std::string allow_list_section(const json& st) {
    std::string out = "<section id=\"allowlist\">\n<h2>Allow list</h2>\n";
    if (auto& a = at(st, {"allow_list"}); a.is_array()) {
        out += table(a,
                     {{"origin", "Origin"},
                      {"url", "URL"},
                      {"methods", "Methods"},
                      {"match", "Match"},
                      {"deployment", "Deployment"},
                      {"description", "Description"}},
                     "The allow list is empty.");
    } else if (auto& n = at(st, {"snapshot", "allow_list_rules"}); !n.is_null()) {
        out += "<p>" + cell(n) + " rules, as pushed by edge-c (its page lists them).</p>\n";
    } else {
        out += "<p class=\"none\">No allow list yet.</p>\n";
    }
    return out + "</section>\n";
}

std::string sessions_section(const json& st) {
    std::string out = "<section id=\"sessions\">\n<h2>Sessions</h2>\n<table>\n<tbody>\n";
    auto row = [&](const char* name, const json& v) {
        if (!v.is_null()) out += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", name, cell(v));
    };
    if (auto& by = at(st, {"sessions_by_protocol"}); by.is_object())
        for (auto& [k, v] : by.items())
            row(("Client sessions: " + html_escape(k)).c_str(), v);
    row("Client sessions (all protocols)", at(st, {"sessions"}));
    row("Media enabled", at(st, {"media", "enabled"}));
    row("Media sessions", at(st, {"media", "sessions"}));
    row("Media packets", at(st, {"media", "packets"}));
    row("Media packets dropped", at(st, {"media", "dropped"}));
    out += "</tbody>\n</table>\n";
    if (auto& l = at(st, {"listeners"}); l.is_array())
        out += "<h3>Listeners</h3>\n" +
               table(l, {{"name", "Listener"}, {"address", "Address"}}, "No listeners.");
    return out + "</section>\n";
}

// Counters of refused, rejected or failed work with a non-zero value, by name and labels (the reason).
std::string refusals_section(std::string_view metrics) {
    static const std::regex kRefusal(
        R"(^(edgepair_[a-z0-9_]*(refused|rejected|blocked|rate_limited|failures|denied|errors|timeouts)[a-z0-9_]*)(\{[^}]*\})? ([0-9.e+]+)$)");
    std::string rows;
    size_t pos = 0;
    while (pos < metrics.size()) {
        auto eol = metrics.find('\n', pos);
        if (eol == std::string_view::npos) eol = metrics.size();
        std::string line(metrics.substr(pos, eol - pos));
        pos = eol + 1;
        std::smatch m;
        if (!std::regex_match(line, m, kRefusal)) continue;
        if (m[4].str() == "0") continue;
        std::string labels = m[3].str();
        if (labels.size() >= 2) labels = labels.substr(1, labels.size() - 2);
        rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", html_escape(m[1].str()),
                            labels.empty() ? "&mdash;" : html_escape(labels), html_escape(m[4].str()));
    }
    std::string out = "<section id=\"refusals\">\n<h2>Refusals since start</h2>\n";
    if (rows.empty()) return out + "<p class=\"none\">Nothing refused since start.</p>\n</section>\n";
    return out + "<table>\n<thead><tr><th>Counter</th><th>Reason</th><th>Count</th></tr></thead>\n<tbody>\n" +
           rows + "</tbody>\n</table>\n</section>\n";
}

} // namespace

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string render_status_page(const PageInput& in) {
    const json& st = in.status;
    const std::string role = st.value("role", std::string("edgepair"));
    const std::string node = st.value("node", std::string());
    std::string out =
        fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta http-equiv=\"refresh\" content=\"{}\">\n<title>{} {} status</title>\n"
                    "<link rel=\"stylesheet\" href=\"/status.css\">\n</head>\n<body>\n<header>\n<h1>{} <span "
                    "class=\"node\">{}</span></h1>\n",
                    in.refresh_s, html_escape(role), html_escape(node), html_escape(role), html_escape(node));
    out += "<dl class=\"summary\">";
    auto item = [&](const char* k, std::string v) { out += fmt::format("<dt>{}</dt><dd>{}</dd>", k, v); };
    item("Version", cell(at(st, {"version"})));
    item("Uptime", cell(at(st, {"uptime_s"})) + " s");
    item("Workers", cell(at(st, {"workers"})));
    item("Reloads", cell(at(st, {"reloads"})));
    out += fmt::format("<dt>Ready</dt><dd id=\"ready\" class=\"{}\">{}</dd>",
                       in.ready_reason.empty() ? "ok" : "bad",
                       in.ready_reason.empty() ? std::string("yes") : "no: " + html_escape(in.ready_reason));
    if (at(st, {"draining"}).is_boolean() && at(st, {"draining"}).get<bool>()) item("Draining", "yes");
    out += "</dl>\n<p class=\"refresh\">Refreshes every " + std::to_string(in.refresh_s) +
           " s. Machine-readable: <a href=\"/status\">/status</a>, <a href=\"/alarms\">/alarms</a>, <a "
           "href=\"/metrics\">/metrics</a>.</p>\n</header>\n<main>\n";
    out += alarms_section(at(st, {"alarms"}));
    out += links_section(st);
    out += domains_section(st);
    out += discovery_section(st);
    out += allow_list_section(st);
    out += sessions_section(st);
    out += refusals_section(in.metrics_text);
    return out + "</main>\n</body>\n</html>\n";
}

std::string status_page_css() {
    return R"(body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:.2em 0}h1 .node{color:#555;font-weight:normal}
h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.5em}h3{font-size:1em;margin:1em 0 .3em}
dl.summary{display:flex;flex-wrap:wrap;gap:.2em 1.5em;margin:.5em 0}dl.summary dt{font-weight:bold}
dl.summary dd{margin:0 0 0 .3em}#ready.ok{color:#176117}#ready.bad{color:#a01010;font-weight:bold}
table{border-collapse:collapse;margin:.3em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
thead th{background:#eee}tr.alarm.critical td{background:#f8d0d0}tr.alarm.major td{background:#fbe3c8}
tr.alarm.warning td{background:#fdf6c8}tr.alarm.cleared td{color:#777}
tr.link.up td:nth-child(4){color:#176117;font-weight:bold}tr.peer.mismatch td{color:#a11}p.none{color:#777}p.note{color:#8a5a00}
p.refresh{font-size:.85em;color:#666}
)";
}

} // namespace edgepair::admin
