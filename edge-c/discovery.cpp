#include "edge-c/discovery.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "common/http/b64_domain.h"
#include "common/mra/snapshot_json.h"
#include "common/net/tls_context.h"
#include "common/obs/log.h"
#include "edge-c/snapshot_input.h"

namespace edgepair::edge_c {

using nlohmann::json;

namespace {

constexpr const char* kLog = "discovery";
constexpr const char* kSoapEnv = "http://schemas.xmlsoap.org/soap/envelope/";
// The first AXL schema tried. Unified CM accepts its own release's schema and those of the two majors before
// it (the fixture models this, after the "Supported axl versions are 12.x, 14.0 and 15.0" fault seen in
// public AXL client fixtures), so 11.5 is understood by 11.5 through 14; anything else answers HTTP 599
// with the list, and we retry once with the highest version listed.
constexpr const char* kFirstAxlVersion = "11.5";
constexpr const char* kStateFormat = "edgepair-discovery-state/1";
// The Unified CM pseudo node that holds enterprise-wide data; listProcessNode returns it first (fixture
// docstring, TAC "database replication" document 215013). It is not a server.
constexpr std::string_view kEnterpriseWideData = "EnterpriseWideData";
constexpr size_t kMaxCallManagers = 64;

int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string iso_time(int64_t t) {
    if (t <= 0) return {};
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

json time_json(int64_t t) {
    return t > 0 ? json(iso_time(t)) : json(nullptr);
}

std::string_view local_name(const char* n) {
    std::string_view s(n);
    auto c = s.find(':');
    return c == std::string_view::npos ? s : s.substr(c + 1);
}

// Namespace prefixes differ between Unified CM releases (ns:, axl:, none): match on local names only.
pugi::xml_node child_el(pugi::xml_node n, std::string_view name) {
    for (auto c : n.children())
        if (c.type() == pugi::node_element && local_name(c.name()) == name) return c;
    return {};
}

pugi::xml_node first_el(pugi::xml_node n) {
    for (auto c : n.children())
        if (c.type() == pugi::node_element) return c;
    return {};
}

// Names come from the publisher's own answer, but they are still input: escape before echoing them back.
std::string xml_escape(std::string_view s) {
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
        default:
            out += c;
        }
    }
    return out;
}

std::string child_text(pugi::xml_node n, std::string_view name) {
    auto c = child_el(n, name);
    if (!c) return {};
    std::string t = c.child_value();
    auto b = t.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return {};
    auto e = t.find_last_not_of(" \t\r\n");
    return t.substr(b, e - b + 1);
}

const char* product_name(config::UcKind k) {
    switch (k) {
    case config::UcKind::UnifiedCm:
        return "Unified CM";
    case config::UcKind::ImAndPresence:
        return "IM and Presence";
    case config::UcKind::UnityConnection:
        return "Unity Connection";
    }
    return "UC";
}

mra::NodeType node_type_of(config::UcKind k) {
    switch (k) {
    case config::UcKind::UnifiedCm:
        return mra::NodeType::UnifiedCM;
    case config::UcKind::ImAndPresence:
        return mra::NodeType::ImP;
    case config::UcKind::UnityConnection:
        return mra::NodeType::UnityConnection;
    }
    return mra::NodeType::UnifiedCM;
}

std::string host_port(const config::UcServerConfig& c) {
    bool v6 = c.address.find(':') != std::string::npos;
    return fmt::format("{}{}{}:{}", v6 ? "[" : "", c.address, v6 ? "]" : "", c.port);
}

// The snapshot names the default deployment with an empty string (as snapshot_input() does for domains).
std::string node_deployment(const std::string& d) {
    return d == mra::kDefaultDeploymentName ? std::string() : d;
}

// The operator-facing text for a transport failure. The four phrasings are those of issue #4; the TLS one
// keeps OpenSSL's reason ("hostname mismatch", "unable to get local issuer certificate", ...) and adds what
// to check, since the guide's "Trust the Certificates Presented to the Expressway-C" is the usual fix.
std::string transport_error(const config::UcServerConfig& c, const Error& e) {
    auto kind = http::error_kind(e);
    std::string msg = e.message;
    std::string kn(http::kind_name(kind));
    if (msg.rfind(kn + ": ", 0) == 0) msg.erase(0, kn.size() + 2);
    switch (kind) {
    case http::ClientErrorKind::TlsVerify: {
        std::string reason = msg;
        static const std::string kMark = "certificate verify failed: ";
        if (auto p = reason.find(kMark); p != std::string::npos) reason = reason.substr(p + kMark.size());
        if (auto p = reason.find(" (http"); p != std::string::npos) reason.resize(p);
        std::string hint;
        if (reason.find("mismatch") != std::string::npos)
            hint = fmt::format("the certificate does not name {} in its subjectAltName", c.address);
        else if (reason.find("issuer") != std::string::npos ||
                 reason.find("self-signed") != std::string::npos ||
                 reason.find("self signed") != std::string::npos ||
                 reason.find("first certificate") != std::string::npos)
            hint = "its issuing CA is not in tls.trusted_cas";
        else if (reason.find("expired") != std::string::npos ||
                 reason.find("not yet valid") != std::string::npos)
            hint = "check the certificate's validity dates";
        return hint.empty() ? fmt::format("TLS verification of {} failed: {}", c.address, reason)
                            : fmt::format("TLS verification of {} failed: {} ({})", c.address, reason, hint);
    }
    case http::ClientErrorKind::Tls:
        return fmt::format("TLS handshake with {} failed: {}", host_port(c), msg);
    case http::ClientErrorKind::Protocol:
        return fmt::format("bad HTTP answer from {}: {}", host_port(c), msg);
    case http::ClientErrorKind::Dns:
        return fmt::format("cannot reach {}: the name does not resolve ({})", host_port(c), msg);
    default:
        return fmt::format("cannot reach {}: {}", host_port(c), msg);
    }
}

} // namespace

const char* to_string(PublisherState::State s) {
    switch (s) {
    case PublisherState::State::Pending:
        return "pending";
    case PublisherState::State::Running:
        return "running";
    case PublisherState::State::Ok:
        return "ok";
    case PublisherState::State::Error:
        return "error";
    }
    return "pending";
}

const char* section_name(config::UcKind k) {
    return config::to_string(k);
}

// ---- response parsers ----

std::string page_summary(std::string_view body) {
    std::string out;
    bool in_tag = false, in_comment = false, space = false;
    for (size_t i = 0; i < body.size() && out.size() < 240; ++i) {
        char c = body[i];
        if (in_comment) {
            if (body.substr(i, 3) == "-->") {
                in_comment = false;
                i += 2;
            }
            continue;
        }
        if (body.substr(i, 4) == "<!--") {
            in_comment = true;
            continue;
        }
        if (c == '<') {
            in_tag = true;
            space = !out.empty();
            continue;
        }
        if (c == '>') {
            in_tag = false;
            continue;
        }
        if (in_tag) continue;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::string highest_listed_axl_version(std::string_view body) {
    auto at = body.find("Supported axl versions are");
    if (at == std::string_view::npos) return {};
    std::string_view rest = body.substr(at);
    auto end = rest.find('<');
    if (end != std::string_view::npos) rest = rest.substr(0, end);
    std::pair<int, int> best{-1, -1};
    std::string best_s;
    for (size_t i = 0; i < rest.size();) {
        if (!std::isdigit(static_cast<unsigned char>(rest[i]))) {
            ++i;
            continue;
        }
        size_t j = i;
        int major = 0, minor = 0;
        while (j < rest.size() && std::isdigit(static_cast<unsigned char>(rest[j])) && j - i < 4)
            major = major * 10 + (rest[j++] - '0');
        if (j + 1 < rest.size() && rest[j] == '.' && std::isdigit(static_cast<unsigned char>(rest[j + 1]))) {
            size_t k = j + 1;
            while (k < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k])) && k - j < 4)
                minor = minor * 10 + (rest[k++] - '0');
            if (std::make_pair(major, minor) > best) {
                best = {major, minor};
                best_s = std::string(rest.substr(i, k - i));
            }
            j = k;
        }
        i = j;
    }
    return best_s;
}

AxlReply parse_axl_reply(int status, std::string_view body_text) {
    AxlReply rep;
    rep.doc = std::make_shared<pugi::xml_document>();
    auto parsed = rep.doc->load_buffer(body_text.data(), body_text.size());
    if (!parsed) rep.parse_error = parsed.description();
    auto body = parsed ? child_el(child_el(*rep.doc, "Envelope"), "Body") : pugi::xml_node{};
    if (!body) {
        rep.kind = AxlReply::NoEnvelope;
        return rep;
    }
    if (status == 500) {
        auto fault = child_el(body, "Fault");
        if (!fault) {
            rep.kind = AxlReply::NoFault;
            return rep;
        }
        rep.kind = AxlReply::Fault;
        rep.message = child_text(fault, "faultstring");
        rep.axlcode = child_text(child_el(child_el(fault, "detail"), "axlError"), "axlcode");
        return rep;
    }
    rep.ret = child_el(first_el(body), "return");
    rep.kind = rep.ret ? AxlReply::Ok : AxlReply::NoReturn;
    return rep;
}

std::string parse_ccm_version(pugi::xml_node ret) {
    return child_text(child_el(ret, "componentVersion"), "version");
}

ProcessNodeList parse_process_nodes(pugi::xml_node ret, std::string_view role) {
    ProcessNodeList out;
    for (auto pn : ret.children()) {
        if (pn.type() != pugi::node_element || local_name(pn.name()) != "processNode") continue;
        auto name = child_text(pn, "name");
        if (name.empty() || name == kEnterpriseWideData) continue;
        auto r = child_text(pn, "processNodeRole");
        if (!r.empty() && r != role) continue;
        out.names.push_back(mra::to_lower(name));
        if (child_text(pn, "nodeUsage") == "Publisher") out.publisher = out.names.back();
    }
    return out;
}

std::optional<bool> parse_security_mode(pugi::xml_node ret) {
    auto row = child_el(ret, "row");
    if (!row) return std::nullopt;
    return child_text(row, "paramvalue") == "1";
}

std::string parse_cluster_id(pugi::xml_node ret) {
    return child_text(child_el(ret, "row"), "paramvalue");
}

std::map<std::string, std::pair<int, int>> parse_call_manager_ports(pugi::xml_node ret) {
    std::map<std::string, std::pair<int, int>> ports;
    for (auto cm : ret.children()) {
        if (cm.type() != pugi::node_element || local_name(cm.name()) != "callManager") continue;
        auto node = mra::to_lower(child_text(cm, "processNodeName"));
        auto p = child_el(cm, "ports");
        int sip = std::atoi(child_text(p, "sipPort").c_str());
        int tls = std::atoi(child_text(p, "securedSipPort").c_str());
        ports[node] = {sip, tls};
    }
    return ports;
}

std::map<std::string, std::string> parse_presence_redundancy_groups(pugi::xml_node ret) {
    std::map<std::string, std::string> peers;
    for (auto g : ret.children()) {
        if (g.type() != pugi::node_element || local_name(g.name()) != "presenceRedundancyGroup") continue;
        auto a = mra::to_lower(child_text(g, "server1"));
        auto b = mra::to_lower(child_text(g, "server2"));
        if (a.empty() || b.empty() || a == b) continue; // a group of one node has no backup
        peers[a] = b;
        peers[b] = a;
    }
    return peers;
}

std::vector<CallManagerRef> parse_call_manager_list(pugi::xml_node ret) {
    std::vector<CallManagerRef> out;
    for (auto cm : ret.children()) {
        if (cm.type() != pugi::node_element || local_name(cm.name()) != "callManager") continue;
        CallManagerRef r;
        r.name = child_text(cm, "name");
        r.uuid = cm.attribute("uuid").value();
        r.node = mra::to_lower(child_text(cm, "processNodeName"));
        if (r.name.empty() && r.uuid.empty()) continue; // nothing getCallManager could be asked for
        out.push_back(std::move(r));
    }
    return out;
}

std::string parse_cupi_version(std::string_view body) {
    pugi::xml_document doc;
    if (!doc.load_buffer(body.data(), body.size())) return {};
    return child_text(child_el(doc, "VersionInformation"), "version");
}

std::optional<CupiCluster> parse_cupi_cluster(std::string_view body) {
    pugi::xml_document doc;
    auto parsed = doc.load_buffer(body.data(), body.size());
    auto servers = child_el(doc, "VmsServers");
    if (!parsed || !servers) return std::nullopt;
    CupiCluster out;
    for (auto s : servers.children()) {
        if (s.type() != pugi::node_element || local_name(s.name()) != "VmsServer") continue;
        auto name = child_text(s, "HostName");
        if (name.empty()) name = child_text(s, "ServerName");
        if (name.empty()) continue;
        out.names.push_back(mra::to_lower(name));
        if (child_text(s, "ClusterMemberId") == "0" || out.publisher.empty())
            out.publisher = out.names.back();
    }
    return out;
}

// ---- one publisher's discovery: a chain of requests on the loop ----

struct Discovery::Run : std::enable_shared_from_this<Discovery::Run> {
    Run(http::Client& h, net::Resolver& r, config::UcServerConfig c)
        : http(h), resolver(r), cfg(std::move(c)) {}

    http::Client& http;
    net::Resolver& resolver;
    config::UcServerConfig cfg;
    std::function<void()> done;
    bool cancelled = false;
    bool finished = false;

    bool ok = false;
    std::string error;
    std::vector<std::string> notes;
    std::vector<mra::UcNode> nodes;
    std::string product_version, axl_version = kFirstAxlVersion, cluster;
    bool mixed = false;
    bool negotiated = false;
    std::string publisher_name;
    size_t resolving = 0;
    std::vector<CallManagerRef> call_managers;
    std::map<std::string, std::pair<int, int>> sip_port_by_node;

    void begin(std::function<void()> cb) {
        done = std::move(cb);
        auto main = [this] {
            if (cfg.kind == config::UcKind::UnityConnection)
                cupi_version();
            else
                axl_version_step();
        };
        // "If you enabled TLS verify mode, then the Expressway tests whether a secure connection can be
        // established ... before it continues the discovery process" (seed 002, Discover ... Servers).
        if (cfg.tls_verify)
            tls_test(main);
        else
            main();
    }

    void fail(std::string msg) {
        if (finished) return;
        finished = true;
        error = std::move(msg);
        if (done) done();
    }

    void succeed() {
        if (finished) return;
        finished = true;
        ok = true;
        for (auto& n : nodes) {
            n.cluster_name = cluster;
            n.publisher = publisher_name;
            n.deployment = node_deployment(cfg.deployment);
            // The port the publisher answered on stands for the cluster's HTTPS port: the fixture runs every
            // node of a cluster on one port, and real clusters use 8443 (443 for Unity Connection)
            // throughout.
            n.https_port = cfg.port;
            n.mixed_mode = cfg.kind == config::UcKind::UnifiedCm && mixed;
            n.tls_verify = cfg.tls_verify;
            // AXL as the fixture models it says nothing about which nodes run the TFTP service; every
            // Unified CM node is taken to, so its 6970 config files are allowed (see the report's gaps).
            n.tftp = cfg.kind == config::UcKind::UnifiedCm;
        }
        if (done) done();
    }

    std::string not_this_type(std::string_view detail) const {
        return fmt::format("{} is not a {} server ({})", cfg.address, product_name(cfg.kind), detail);
    }

    http::ClientRequest request(std::string method, std::string target) const {
        http::ClientRequest req;
        req.method = std::move(method);
        req.origin = http::Origin{"https", cfg.address, cfg.port};
        req.target = std::move(target);
        req.verify = cfg.tls_verify;
        return req;
    }

    void add_auth(http::ClientRequest& req) const {
        req.headers.add("Authorization", "Basic " + http::base64_encode(cfg.username + ":" + cfg.password));
    }

    void tls_test(std::function<void()> next) {
        // Any HTTP answer proves the handshake and the name check; the path does not matter.
        auto self = shared_from_this();
        http.fetch(request("GET", "/"), [self, next](Result<http::ClientResponse> r) {
            if (self->cancelled) return;
            if (!r) return self->fail(self->transport_error_of(r.error()));
            next();
        });
    }

    std::string transport_error_of(const Error& e) const { return transport_error(cfg, e); }

    // ---- AXL (Unified CM and IM&P) ----

    void axl(std::string op, std::string inner, std::function<void(AxlReply&)> k) {
        auto req = request("POST", "/axl/");
        add_auth(req);
        req.headers.add("Content-Type", "text/xml; charset=utf-8");
        req.headers.add("Accept", "text/xml");
        // The schema is chosen by the body's namespace; SOAPAction names the same version and operation
        // (DevNet AXL guide; the fixture warns when they disagree).
        req.headers.add("SOAPAction", fmt::format("\"CUCM:DB ver={} {}\"", axl_version, op));
        req.body =
            fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                        "<soapenv:Envelope xmlns:soapenv=\"{}\" xmlns:ns=\"http://www.cisco.com/AXL/API/{}\">"
                        "<soapenv:Header/><soapenv:Body><ns:{}>{}</ns:{}></soapenv:Body></soapenv:Envelope>",
                        kSoapEnv, axl_version, op, inner, op);
        auto self = shared_from_this();
        http.fetch(std::move(req), [self, op = std::move(op), inner = std::move(inner),
                                    k = std::move(k)](Result<http::ClientResponse> r) mutable {
            if (self->cancelled) return;
            self->on_axl(std::move(op), std::move(inner), std::move(k), std::move(r));
        });
    }

    void on_axl(std::string op, std::string inner, std::function<void(AxlReply&)> k,
                Result<http::ClientResponse> r) {
        if (!r) return fail(transport_error_of(r.error()));
        auto& resp = *r;
        switch (resp.status) {
        case 401:
            return fail(
                fmt::format("AXL authentication failed for user {} on {}: check the username and password",
                            cfg.username, cfg.address));
        case 403:
            return fail(
                fmt::format("user {} lacks the Standard AXL API Access role on {} (AXL answered HTTP 403)",
                            cfg.username, cfg.address));
        case 404:
            return fail(not_this_type("no AXL web service at /axl/: HTTP 404"));
        case 599: {
            auto v = highest_listed_axl_version(resp.body);
            if (!negotiated && !v.empty() && v != axl_version) {
                EP_INFO(kLog, "{}: AXL schema {} refused, retrying with {}", cfg.address, axl_version, v);
                negotiated = true;
                axl_version = v;
                return axl(std::move(op), std::move(inner), std::move(k));
            }
            return fail(fmt::format("{} refused AXL schema {}: {}", cfg.address, axl_version,
                                    page_summary(resp.body)));
        }
        case 200:
        case 500:
            break;
        default:
            return fail(fmt::format("unexpected HTTP {} from {} to AXL {}: {}", resp.status, host_port(cfg),
                                    op, page_summary(resp.body)));
        }
        auto rep = parse_axl_reply(resp.status, resp.body);
        switch (rep.kind) {
        case AxlReply::NoEnvelope:
            return fail(fmt::format("{} answered AXL {} with HTTP {} but no SOAP envelope{}", host_port(cfg),
                                    op, resp.status, rep.parse_error.empty() ? "" : ": " + rep.parse_error));
        case AxlReply::NoFault:
            return fail(
                fmt::format("{} answered AXL {} with HTTP 500 and no SOAP fault", host_port(cfg), op));
        case AxlReply::NoReturn:
            return fail(fmt::format("{} answered AXL {} without a <return> element", host_port(cfg), op));
        case AxlReply::Ok:
        case AxlReply::Fault:
            break;
        }
        k(rep);
    }

    std::string fault_text(const std::string& op, const AxlReply& rep) const {
        return fmt::format("AXL {} failed on {}: {}{}", op, cfg.address, rep.message,
                           rep.axlcode.empty() ? "" : " (axlcode " + rep.axlcode + ")");
    }

    void axl_version_step() {
        axl("getCCMVersion", "", [this](AxlReply& rep) {
            if (rep.kind == AxlReply::Fault) return fail(fault_text("getCCMVersion", rep));
            product_version = parse_ccm_version(rep.ret);
            type_check();
        });
    }

    // The IM&P check of the fixture's docstring: only IM and Presence has the xmpps2snodes table (TAC "XMPP
    // federation on Expressway": Expressway-C reads it over AXL); on Unified CM the query is fault -206.
    void type_check() {
        axl("executeSQLQuery", "<sql>select * from xmpps2snodes</sql>", [this](AxlReply& rep) {
            bool imp = rep.kind == AxlReply::Ok;
            bool not_imp = rep.kind == AxlReply::Fault && rep.axlcode == "-206";
            if (cfg.kind == config::UcKind::ImAndPresence) {
                if (not_imp)
                    return fail(
                        not_this_type("it has no IM and Presence database tables: is it a Unified CM node?"));
                if (!imp) return fail(fault_text("executeSQLQuery", rep));
            } else {
                if (imp) return fail(not_this_type("it answers as an IM and Presence node"));
                if (!not_imp)
                    notes.push_back("IM and Presence check inconclusive: " +
                                    fault_text("executeSQLQuery", rep));
            }
            list_nodes();
        });
    }

    void list_nodes() {
        // Role names as listProcessNode returns them (processNodeRole); the search mirrors open-source AXL
        // scripts: {name: '%', processNodeRole: ...}.
        const char* role =
            cfg.kind == config::UcKind::UnifiedCm ? "CUCM Voice/Video" : "CUCM IM and Presence";
        auto inner = fmt::format("<searchCriteria><name>%</name><processNodeRole>{}</processNodeRole>"
                                 "</searchCriteria><returnedTags><name/><nodeUsage/><processNodeRole/>"
                                 "</returnedTags>",
                                 role);
        axl("listProcessNode", inner, [this, role](AxlReply& rep) {
            if (rep.kind == AxlReply::Fault) return fail(fault_text("listProcessNode", rep));
            auto listed = parse_process_nodes(rep.ret, role);
            for (auto& name : listed.names) {
                mra::UcNode n;
                n.name = name;
                n.type = node_type_of(cfg.kind);
                nodes.push_back(std::move(n));
            }
            if (!listed.publisher.empty()) publisher_name = listed.publisher;
            if (nodes.empty())
                return fail(fmt::format("{} lists no {} nodes (listProcessNode)", cfg.address, role));
            if (publisher_name.empty()) {
                publisher_name = mra::to_lower(cfg.address);
                notes.push_back("no node is marked Publisher; using the configured address");
            }
            if (cfg.kind == config::UcKind::UnifiedCm)
                security_mode();
            else
                cluster_id();
        });
    }

    // "Cluster Security Mode (System > Enterprise Parameters > Security Parameters) of 1 (Mixed)" decides the
    // TLS zone (seed 002, Automatically Generated Zones); the query is the TAC/CLI one the fixture answers.
    void security_mode() {
        axl("executeSQLQuery",
            "<sql>select paramname,paramvalue from processconfig where paramname='ClusterSecurityMode'</sql>",
            [this](AxlReply& rep) {
                if (rep.kind == AxlReply::Fault)
                    return fail("cannot read the Cluster Security Mode: " +
                                fault_text("executeSQLQuery", rep));
                auto mode = parse_security_mode(rep.ret);
                if (!mode)
                    notes.push_back("no ClusterSecurityMode enterprise parameter: taken as 0 (non-secure)");
                else
                    mixed = *mode;
                cluster_id();
            });
    }

    void cluster_id() {
        axl("executeSQLQuery",
            "<sql>select paramname,paramvalue from processconfig where paramname='ClusterID'</sql>",
            [this](AxlReply& rep) {
                if (rep.kind == AxlReply::Ok)
                    cluster = parse_cluster_id(rep.ret);
                else
                    notes.push_back("cluster ID unknown: " + fault_text("executeSQLQuery", rep));
                if (cfg.kind == config::UcKind::UnifiedCm)
                    sip_ports();
                else
                    redundancy_groups();
            });
    }

    // SIP ports per node come from the CallManager object (ports/sipPort, ports/securedSipPort), matched to
    // its node by processNodeName; "Changing connection sockets (e.g. SIP port configuration)" is one of the
    // guide's reasons to refresh. AXLSoap.xsd puts ports only in RCallManager (getCallManager's return); the
    // list result LCallManager has none, so a real publisher would leave every node on 5060/5061 (or reject
    // the returnedTags). Hence: list the objects, then get each one.
    void sip_ports() {
        axl("listCallManager",
            "<searchCriteria><name>%</name></searchCriteria><returnedTags><name/><processNodeName/>"
            "</returnedTags>",
            [this](AxlReply& rep) {
                if (rep.kind == AxlReply::Fault) return fail(fault_text("listCallManager", rep));
                call_managers = parse_call_manager_list(rep.ret);
                // A Unified CM cluster has at most 21 servers; a longer list is a broken answer, and each
                // entry costs one request.
                if (call_managers.size() > kMaxCallManagers) {
                    notes.push_back(fmt::format("listCallManager returned {} objects; reading the first {}",
                                                call_managers.size(), kMaxCallManagers));
                    call_managers.resize(kMaxCallManagers);
                }
                get_call_manager(0);
            });
    }

    void get_call_manager(size_t i) {
        if (i >= call_managers.size()) return apply_sip_ports();
        auto& cm = call_managers[i];
        // getCallManager selects by uuid or name (a choice in the schema); the uuid survives renames.
        auto key = cm.uuid.empty() ? fmt::format("<name>{}</name>", xml_escape(cm.name))
                                   : fmt::format("<uuid>{}</uuid>", xml_escape(cm.uuid));
        axl("getCallManager", key + "<returnedTags><name/><ports/><processNodeName/></returnedTags>",
            [this, i](AxlReply& rep) {
                if (rep.kind == AxlReply::Fault) {
                    // One object going away between list and get must not fail the whole cluster.
                    notes.push_back(fault_text("getCallManager " + call_managers[i].name, rep));
                } else {
                    for (auto& [node, p] : parse_call_manager_ports(rep.ret))
                        sip_port_by_node[node] = p;
                }
                get_call_manager(i + 1);
            });
    }

    void apply_sip_ports() {
        for (auto& n : nodes) {
            auto it = sip_port_by_node.find(n.name);
            if (it == sip_port_by_node.end()) {
                notes.push_back(
                    fmt::format("{}: no CallManager service found; SIP ports 5060/5061 assumed", n.name));
                continue;
            }
            if (it->second.first > 0 && it->second.first < 65536) n.sip_tcp_port = uint16_t(it->second.first);
            if (it->second.second > 0 && it->second.second < 65536)
                n.sip_tls_port = uint16_t(it->second.second);
        }
        resolve_nodes();
    }

    // IM&P nodes are paired in presence redundancy groups (System > Presence Redundancy Groups); when a
    // user's home node fails its peer serves the user, so the XMPP service needs the pairs. AXLSoap.xsd has
    // listPresenceRedundancyGroup (LPresenceRedundancyGroup: server1, server2); which publisher of a
    // centralized deployment answers it is not public: edgepair asks the IM&P publisher, and a fault only
    // costs the fail-over order (noted, not fatal).
    void redundancy_groups() {
        axl("listPresenceRedundancyGroup",
            "<searchCriteria><name>%</name></searchCriteria><returnedTags><name/><server1/><server2/>"
            "<haEnabled/></returnedTags>",
            [this](AxlReply& rep) {
                if (rep.kind != AxlReply::Ok) {
                    notes.push_back("presence redundancy groups unknown (XMPP fail-over tries the other IM&P "
                                    "nodes in order): " +
                                    fault_text("listPresenceRedundancyGroup", rep));
                } else {
                    auto peers = parse_presence_redundancy_groups(rep.ret);
                    for (auto& n : nodes)
                        if (auto it = peers.find(n.name); it != peers.end()) n.imp_peer = it->second;
                }
                resolve_nodes();
            });
    }

    // ---- CUPI (Unity Connection) ----

    void cupi_get(std::string target, std::function<void(http::ClientResponse&)> k) {
        auto req = request("GET", std::move(target));
        add_auth(req);
        req.headers.add("Accept", "application/xml");
        auto self = shared_from_this();
        http.fetch(std::move(req), [self, k = std::move(k)](Result<http::ClientResponse> r) {
            if (self->cancelled) return;
            if (!r) return self->fail(self->transport_error_of(r.error()));
            auto& resp = *r;
            auto& c = self->cfg;
            if (resp.status == 401)
                return self->fail(
                    fmt::format("Unity Connection authentication failed for user {} on {}: check the "
                                "username and password (CUPI needs an administrator account)",
                                c.username, c.address));
            if (resp.status == 403)
                return self->fail(fmt::format(
                    "user {} may not use the Unity Connection REST API (CUPI) on {}", c.username, c.address));
            if (resp.status == 404) return self->fail(self->not_this_type("no CUPI at /vmrest/: HTTP 404"));
            if (resp.status != 200)
                return self->fail(fmt::format("unexpected HTTP {} from {} for CUPI: {}", resp.status,
                                              host_port(c), page_summary(resp.body)));
            k(resp);
        });
    }

    void cupi_version() {
        // CUPI "About Versioning": GET /vmrest/version answers <VersionInformation><version>.
        cupi_get("/vmrest/version", [this](http::ClientResponse& resp) {
            product_version = parse_cupi_version(resp.body);
            cupi_cluster();
        });
    }

    void cupi_cluster() {
        // CUPI "Cluster": GET /vmrest/cluster answers <VmsServers><VmsServer><HostName>..; member 0 is the
        // publisher.
        cupi_get("/vmrest/cluster", [this](http::ClientResponse& resp) {
            auto listed = parse_cupi_cluster(resp.body);
            if (!listed)
                return fail(
                    fmt::format("{} answered /vmrest/cluster without a <VmsServers> list", host_port(cfg)));
            for (auto& name : listed->names) {
                mra::UcNode n;
                n.name = name;
                n.type = mra::NodeType::UnityConnection;
                nodes.push_back(std::move(n));
            }
            if (!listed->publisher.empty()) publisher_name = listed->publisher;
            if (nodes.empty()) return fail(fmt::format("{} lists no Unity Connection servers", cfg.address));
            resolve_nodes();
        });
    }

    // The discovered names are what SIP, UDS and the allow list use from now on: check that they resolve
    // (with edge-c's resolver, dns.servers) and say so per node.
    void resolve_nodes() {
        resolving = nodes.size();
        if (resolving == 0) return succeed();
        auto self = shared_from_this();
        for (size_t i = 0; i < nodes.size(); ++i) {
            resolver.resolve(nodes[i].name, [self, i](Result<std::vector<net::SockAddr>> r) {
                if (self->cancelled || self->finished) return;
                auto& n = self->nodes[i];
                if (r && !r->empty()) {
                    n.status = mra::NodeStatus::Active;
                } else {
                    n.status = mra::NodeStatus::Unreachable;
                    self->notes.push_back(
                        fmt::format("{} does not resolve ({}): SIP, UDS and proxying to it fail "
                                    "until it does",
                                    n.name, r ? "no address" : r.error().message));
                }
                if (--self->resolving == 0) self->succeed();
            });
        }
    }
};

// ---- Discovery ----

Discovery::Discovery(core::Loop& loop, http::Client& http, net::Resolver& resolver, std::string state_file)
    : loop_(loop), http_(http), resolver_(resolver), state_file_(std::move(state_file)) {}

Discovery::~Discovery() {
    *alive_ = false;
    alive_.reset();
    for (auto& [id, run] : runs_)
        run->cancelled = true;
}

std::vector<size_t> Discovery::configure(const config::DiscoveryConfig& cfg) {
    std::vector<PublisherState> next;
    std::vector<size_t> to_run;
    std::vector<bool> taken(pubs_.size(), false);
    auto adopt = [&](const std::vector<config::UcServerConfig>& list) {
        for (auto& s : list) {
            size_t found = pubs_.size();
            for (size_t i = 0; i < pubs_.size(); ++i)
                if (!taken[i] && pubs_[i].cfg.kind == s.kind && pubs_[i].cfg.address == s.address &&
                    pubs_[i].cfg.port == s.port) {
                    found = i;
                    break;
                }
            PublisherState p;
            if (found < pubs_.size()) {
                taken[found] = true;
                p = std::move(pubs_[found]);
                auto& o = p.cfg;
                // New credentials, TLS mode or deployment change what discovery would find: run it again.
                bool changed = o.username != s.username || o.password != s.password ||
                               o.tls_verify != s.tls_verify || o.deployment != s.deployment;
                if (changed || p.state == PublisherState::State::Pending) to_run.push_back(next.size());
            } else {
                p.id = next_id_++;
                to_run.push_back(next.size());
            }
            p.cfg = s;
            for (auto& n : p.nodes)
                n.deployment = node_deployment(s.deployment);
            next.push_back(std::move(p));
        }
    };
    adopt(cfg.unified_cm);
    adopt(cfg.im_and_presence);
    adopt(cfg.unity_connection);
    pubs_ = std::move(next);
    state_file_ = cfg.state_file;
    return to_run;
}

Result<void> Discovery::load_state() {
    if (state_file_.empty()) return {};
    std::ifstream f(state_file_);
    if (!f) {
        state_load_note_ = "no state file yet";
        return {};
    }
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        auto j = json::parse(ss.str());
        if (j.value("format", "") != kStateFormat)
            return make_error(state_file_ + ": not an edgepair discovery state file");
        state_written_unix_ = j.value("written_at_unix", int64_t(0));
        size_t loaded = 0;
        for (auto& e : j.at("publishers")) {
            auto type = e.value("type", "");
            auto address = e.value("address", "");
            auto port = e.value("port", 0);
            for (auto& p : pubs_) {
                if (section_name(p.cfg.kind) != type || p.cfg.address != address || p.cfg.port != port)
                    continue;
                if (p.state != PublisherState::State::Pending || !p.nodes.empty()) break;
                auto nodes = mra::nodes_from_json(e.at("nodes").dump());
                if (!nodes) return make_error(state_file_ + ": " + nodes.error().message);
                p.nodes = std::move(*nodes);
                for (auto& n : p.nodes)
                    n.deployment = node_deployment(p.cfg.deployment);
                p.last_success_unix = e.value("last_success_unix", int64_t(0));
                p.last_attempt_unix = e.value("last_attempt_unix", int64_t(0));
                p.product_version = e.value("product_version", "");
                p.axl_version = e.value("axl_version", "");
                p.cluster = e.value("cluster", "");
                p.mixed_mode = e.value("mixed_mode", false);
                p.from_state_file = !p.nodes.empty();
                p.stale = !p.nodes.empty();
                loaded += p.nodes.size();
                break;
            }
        }
        state_load_note_ =
            fmt::format("loaded {} nodes written at {}", loaded, iso_time(state_written_unix_));
        return {};
    } catch (const json::exception& e) {
        state_load_note_ = std::string("unreadable: ") + e.what();
        return make_error(state_file_ + ": " + e.what());
    }
}

std::string Discovery::state_json() const {
    json j;
    j["format"] = kStateFormat;
    auto now = now_unix();
    j["written_at"] = iso_time(now);
    j["written_at_unix"] = now;
    j["publishers"] = json::array();
    for (auto& p : pubs_) {
        json e;
        e["type"] = section_name(p.cfg.kind);
        e["address"] = p.cfg.address;
        e["port"] = p.cfg.port;
        e["deployment"] = p.cfg.deployment;
        e["state"] = p.state == PublisherState::State::Running ? "pending" : to_string(p.state);
        e["error"] = p.error;
        e["last_attempt_unix"] = p.last_attempt_unix;
        e["last_success_unix"] = p.last_success_unix;
        e["last_success"] = iso_time(p.last_success_unix);
        e["product_version"] = p.product_version;
        e["axl_version"] = p.axl_version;
        e["cluster"] = p.cluster;
        e["mixed_mode"] = p.mixed_mode;
        e["nodes"] = json::parse(mra::nodes_to_json(p.nodes));
        j["publishers"].push_back(std::move(e));
    }
    return j.dump(1);
}

Result<size_t> Discovery::adopt_peer_state(std::string_view text, const std::string& peer) {
    size_t taken = 0;
    try {
        auto j = json::parse(text);
        if (j.value("format", "") != kStateFormat) return make_error("not an edgepair discovery state");
        for (auto& e : j.at("publishers")) {
            const auto type = e.value("type", "");
            const auto address = e.value("address", "");
            const auto port = e.value("port", 0);
            const int64_t success = e.value("last_success_unix", int64_t(0));
            if (e.value("state", "") != "ok" || success <= 0) continue;
            for (auto& p : pubs_) {
                if (section_name(p.cfg.kind) != type || p.cfg.address != address || p.cfg.port != port)
                    continue;
                // A run of our own in flight will be newer; an older or equal result changes nothing.
                if (p.state == PublisherState::State::Running || success <= p.last_success_unix) break;
                auto nodes = mra::nodes_from_json(e.at("nodes").dump());
                if (!nodes) return make_error("publisher " + address + ": " + nodes.error().message);
                p.nodes = std::move(*nodes);
                for (auto& n : p.nodes)
                    n.deployment = node_deployment(p.cfg.deployment);
                p.state = PublisherState::State::Ok;
                p.error.clear();
                p.notes.clear();
                p.stale = false;
                p.from_state_file = false;
                p.from_peer = peer;
                p.last_success_unix = success;
                p.last_attempt_unix = std::max(p.last_attempt_unix, e.value("last_attempt_unix", int64_t(0)));
                p.product_version = e.value("product_version", "");
                p.axl_version = e.value("axl_version", "");
                p.cluster = e.value("cluster", "");
                p.mixed_mode = e.value("mixed_mode", false);
                ++taken;
                break;
            }
        }
    } catch (const json::exception& e) {
        return make_error(std::string("unreadable: ") + e.what());
    }
    if (taken > 0)
        if (auto w = save_state(); !w) EP_WARN("discovery", "state file: {}", w.error().message);
    return taken;
}

Result<void> Discovery::save_state() const {
    if (state_file_.empty()) return {};
    const std::string text = state_json();
    // Written beside the target and renamed over it, so a crash never leaves a half-written state file.
    std::string tmp = fmt::format("{}.tmp.{}", state_file_, ::getpid());
    {
        std::ofstream f(tmp, std::ios::trunc);
        if (!f) return make_error("cannot write " + tmp);
        f << text << '\n';
        f.flush();
        if (!f) {
            std::remove(tmp.c_str());
            return make_error("cannot write " + tmp);
        }
    }
    if (std::rename(tmp.c_str(), state_file_.c_str()) != 0) {
        std::remove(tmp.c_str());
        return make_error("cannot replace " + state_file_);
    }
    return {};
}

std::string Discovery::refresh(const std::vector<size_t>& which) {
    ++refreshes_;
    last_refresh_unix_ = now_unix();
    std::vector<size_t> idx = which;
    if (idx.empty())
        for (size_t i = 0; i < pubs_.size(); ++i)
            idx.push_back(i);
    json out;
    out["publishers"] = json::array();
    for (size_t i : idx) {
        if (i >= pubs_.size()) continue;
        auto& p = pubs_[i];
        json e{{"type", section_name(p.cfg.kind)}, {"address", p.cfg.address}, {"port", p.cfg.port}};
        if (p.state == PublisherState::State::Running) {
            p.rerun = true;
            e["action"] = "queued: a discovery of this publisher is running; it runs again when that ends";
        } else {
            start(i);
            e["action"] = "started";
        }
        out["publishers"].push_back(std::move(e));
    }
    out["accepted"] = !out["publishers"].empty();
    if (pubs_.empty())
        out["message"] = "no publishers configured (discovery.unified_cm, im_and_presence, unity_connection)";
    out["status"] = "GET /status: discovery.publishers[].state turns ok or error when each run ends";
    return out.dump();
}

void Discovery::start(size_t i) {
    auto& p = pubs_[i];
    p.state = PublisherState::State::Running;
    p.rerun = false;
    p.last_attempt_unix = now_unix();
    auto run = std::make_shared<Run>(http_, resolver_, p.cfg);
    runs_.emplace_back(p.id, run);
    EP_INFO(kLog, "discovering {} publisher {} (TLS verify {})", product_name(p.cfg.kind), host_port(p.cfg),
            p.cfg.tls_verify ? "on" : "off");
    std::weak_ptr<bool> alive = alive_;
    uint64_t id = p.id;
    Run* raw = run.get();
    run->begin([this, alive, id, raw] {
        if (alive.expired()) return;
        finish(id, *raw);
    });
}

void Discovery::finish(uint64_t id, const Run& run) {
    std::shared_ptr<Run> keep; // the Run is inside its own callback: free it after this call returns
    for (auto it = runs_.begin(); it != runs_.end(); ++it)
        if (it->second.get() == &run) {
            keep = std::move(it->second);
            runs_.erase(it);
            break;
        }
    if (keep) loop_.post([keep] {});
    size_t i = 0;
    while (i < pubs_.size() && pubs_[i].id != id)
        ++i;
    if (i == pubs_.size()) return; // removed from the configuration meanwhile
    auto& p = pubs_[i];
    if (run.ok) {
        p.state = PublisherState::State::Ok;
        p.error.clear();
        p.nodes = run.nodes;
        for (auto& n : p.nodes)
            n.deployment = node_deployment(p.cfg.deployment);
        p.stale = false;
        p.from_state_file = false;
        p.from_peer.clear();
        p.last_success_unix = now_unix();
        p.product_version = run.product_version;
        p.axl_version = p.cfg.kind == config::UcKind::UnityConnection ? "" : run.axl_version;
        p.cluster = run.cluster;
        p.mixed_mode = run.mixed;
        p.notes = run.notes;
        std::string names;
        for (auto& n : p.nodes)
            names += (names.empty() ? "" : ", ") + n.name;
        EP_INFO(kLog, "{} publisher {}: {} nodes ({}){}", product_name(p.cfg.kind), host_port(p.cfg),
                p.nodes.size(), names, p.mixed_mode ? ", mixed mode" : "");
        for (auto& note : p.notes)
            EP_WARN(kLog, "{}: {}", p.cfg.address, note);
    } else {
        p.state = PublisherState::State::Error;
        p.error = run.error;
        p.stale = !p.nodes.empty();
        EP_ERROR(kLog, "{} publisher {}: {}{}", product_name(p.cfg.kind), host_port(p.cfg), p.error,
                 p.nodes.empty() ? "" : fmt::format(" (keeping its {} last known nodes)", p.nodes.size()));
    }
    if (auto saved = save_state(); !saved) EP_ERROR(kLog, "state file: {}", saved.error().message);
    if (p.rerun) start(i);
    if (on_change_) on_change_();
}

bool Discovery::running() const {
    return !runs_.empty();
}

std::vector<mra::UcNode> Discovery::nodes() const {
    std::vector<mra::UcNode> out;
    for (auto& p : pubs_)
        for (auto& n : p.nodes) {
            // The same cluster configured twice (or a node listed by two publishers) must not become a
            // duplicate node: build_snapshot() rejects those. The first publisher wins.
            bool dup =
                std::any_of(out.begin(), out.end(), [&](const mra::UcNode& o) { return o.name == n.name; });
            if (!dup) out.push_back(n);
        }
    return out;
}

std::string Discovery::serving_note() const {
    int64_t oldest = 0;
    bool any = false;
    for (auto& p : pubs_)
        if (p.from_state_file && p.stale && !p.nodes.empty()) {
            any = true;
            if (p.last_success_unix && (!oldest || p.last_success_unix < oldest))
                oldest = p.last_success_unix;
        }
    if (!any) return {};
    return fmt::format("serving last known state from {} (discovered at {})", state_file_,
                       oldest ? iso_time(oldest) : std::string("an unknown time"));
}

std::string Discovery::ready_reason() const {
    bool ucm_configured = false, ucm_nodes = false;
    std::string first_error;
    for (auto& p : pubs_) {
        bool tried = p.state == PublisherState::State::Ok || p.state == PublisherState::State::Error;
        if (!tried && p.nodes.empty())
            return fmt::format("discovery of {} publisher {} not finished yet", product_name(p.cfg.kind),
                               host_port(p.cfg));
        if (p.cfg.kind == config::UcKind::UnifiedCm) {
            ucm_configured = true;
            if (!p.nodes.empty()) ucm_nodes = true;
            if (first_error.empty()) first_error = p.error;
        }
    }
    if (ucm_configured && !ucm_nodes) return "discovery found no Unified CM node: " + first_error;
    return {};
}

std::string Discovery::status_json(const mra::Snapshot* snap) const {
    json j;
    j["state_file"] = state_file_;
    j["state_file_loaded"] = state_load_note_;
    auto note = serving_note();
    j["serving_last_known_state"] = !note.empty();
    j["note"] = note;
    j["running"] = running();
    j["refreshes"] = refreshes_;
    j["last_refresh"] = time_json(last_refresh_unix_);
    j["publishers"] = json::array();
    std::map<std::string, const PublisherState*> source;
    for (auto& p : pubs_) {
        json e;
        e["type"] = section_name(p.cfg.kind);
        e["address"] = p.cfg.address;
        e["port"] = p.cfg.port;
        e["username"] = p.cfg.username;
        e["tls_verify"] = p.cfg.tls_verify;
        e["deployment"] = p.cfg.deployment;
        e["state"] = to_string(p.state);
        e["error"] = p.error;
        e["notes"] = p.notes;
        e["stale"] = p.stale;
        e["from_state_file"] = p.from_state_file;
        if (!p.from_peer.empty()) e["discovered_by_peer"] = p.from_peer;
        e["last_attempt"] = time_json(p.last_attempt_unix);
        e["last_success"] = time_json(p.last_success_unix);
        e["product_version"] = p.product_version;
        e["axl_version"] = p.axl_version;
        e["cluster"] = p.cluster;
        if (p.cfg.kind == config::UcKind::UnifiedCm) e["mixed_mode"] = p.mixed_mode;
        json names = json::array();
        for (auto& n : p.nodes) {
            names.push_back(n.name);
            source.emplace(n.name, &p);
        }
        e["nodes"] = std::move(names);
        j["publishers"].push_back(std::move(e));
    }
    j["nodes"] = json::array();
    for (auto& n : nodes()) {
        auto e = json::parse(mra::node_to_json(n));
        if (n.type == mra::NodeType::UnifiedCM) e["security_mode"] = n.mixed_mode ? "mixed" : "non-secure";
        auto it = source.find(n.name);
        if (it != source.end()) {
            e["stale"] = it->second->stale;
            e["discovered_via"] =
                fmt::format("{} {}", section_name(it->second->cfg.kind), host_port(it->second->cfg));
            e["discovered_at"] = time_json(it->second->last_success_unix);
        }
        j["nodes"].push_back(std::move(e));
    }
    j["zones"] = json::array();
    j["search_rules"] = json::array();
    j["automatic_allow_rules"] = json::array();
    if (snap) {
        for (auto& z : snap->zones)
            j["zones"].push_back({{"name", z.name},
                                  {"transport", z.transport == mra::ZoneTransport::Tls ? "tls" : "tcp"},
                                  {"node", z.node},
                                  {"port", z.port},
                                  {"tls_verify", z.tls_verify},
                                  {"deployment", z.deployment}});
        for (auto& r : snap->search_rules)
            j["search_rules"].push_back(
                {{"name", r.name},
                 {"priority", r.priority},
                 {"target_zone", r.target_zone},
                 {"pattern_type", r.pattern_type == mra::PatternType::Regex ? "regex" : "exact"},
                 {"pattern", r.pattern}});
        for (auto& r : snap->allow_list.rules()) {
            if (r.origin != mra::RuleOrigin::Automatic) continue;
            j["automatic_allow_rules"].push_back(
                {{"url", mra::to_string(r.url)},
                 {"methods", snap->allow_list.effective_methods(r).to_string()},
                 {"match", std::string(mra::to_string(r.match))},
                 {"deployment", r.deployment},
                 {"description", r.description}});
        }
    }
    return j.dump();
}

// ---- edge-c discover ----

namespace {

Result<std::pair<std::shared_ptr<net::TlsClientContext>, std::shared_ptr<net::TlsClientContext>>>
upstream_tls(const config::EdgeCConfig& cfg) {
    // As EdgeC::build() makes them for the running edge-c, so the CLI verifies exactly as the daemon does.
    net::TlsClientOptions o;
    o.trusted_cas = cfg.tls.trusted_cas;
    o.cert = cfg.tls.certificate.cert;
    o.key = cfg.tls.certificate.key;
    o.min_version = cfg.tls.min_version == config::TlsVersion::V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    auto verify = net::TlsClientContext::create(o);
    if (!verify) return verify.error();
    o.verify = false;
    auto noverify = net::TlsClientContext::create(o);
    if (!noverify) return noverify.error();
    return std::make_pair(*verify, *noverify);
}

std::string pad(std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    if (rows.empty()) return;
    std::vector<size_t> w(rows[0].size(), 0);
    for (auto& r : rows)
        for (size_t i = 0; i < r.size() && i < w.size(); ++i)
            w[i] = std::max(w[i], r[i].size());
    for (auto& r : rows) {
        std::string line = " ";
        for (size_t i = 0; i < r.size(); ++i)
            line += " " + (i + 1 < r.size() ? pad(r[i], w[i]) : r[i]);
        std::printf("%s\n", line.c_str());
    }
}

} // namespace

int run_discover_cli(const config::EdgeCConfig& cfg) {
    core::Loop loop;
    net::ResolverOptions ro;
    for (auto& a : cfg.dns.servers)
        ro.servers.push_back(a.str());
    ro.timeout_ms = uint32_t(cfg.dns.timeout.count());
    auto resolver = net::Resolver::create(loop, ro);
    if (!resolver) {
        std::fprintf(stderr, "edge-c discover: dns: %s\n", resolver.error().message.c_str());
        return 1;
    }
    auto tls = upstream_tls(cfg);
    if (!tls) {
        std::fprintf(stderr, "edge-c discover: tls: %s\n", tls.error().message.c_str());
        return 1;
    }
    http::ClientOptions co;
    co.tls_verify = tls->first;
    co.tls_noverify = tls->second;
    http::Client client(loop, **resolver, co);
    Discovery d(loop, client, **resolver, cfg.discovery.state_file);
    d.configure(cfg.discovery);
    if (d.publishers().empty()) {
        std::fprintf(stderr, "edge-c discover: no publishers configured (discovery.unified_cm, "
                             "discovery.im_and_presence, discovery.unity_connection)\n");
        return 1;
    }
    // Loaded so a publisher that fails now keeps its last known nodes in the state file written below.
    if (auto st = d.load_state(); !st)
        std::fprintf(stderr, "edge-c discover: ignoring the state file: %s\n", st.error().message.c_str());
    bool timed_out = false;
    // Every request is bounded by http::Client's timeouts; this only guards the whole run.
    core::Timer guard(loop, [&] {
        timed_out = true;
        loop.stop();
    });
    guard.arm(180000);
    d.on_change([&] {
        if (!d.running()) loop.stop();
    });
    d.refresh();
    loop.run();

    bool all_ok = !timed_out;
    std::printf("Publishers\n");
    std::vector<std::vector<std::string>> rows{{"TYPE", "ADDRESS", "STATE", "DETAILS"}};
    for (auto& p : d.publishers()) {
        std::string details;
        if (p.state == PublisherState::State::Ok) {
            details = fmt::format("{} {}{}{}, {} node{}", product_name(p.cfg.kind), p.product_version,
                                  p.axl_version.empty() ? "" : " (AXL " + p.axl_version + ")",
                                  p.cluster.empty() ? "" : ", cluster " + p.cluster, p.nodes.size(),
                                  p.nodes.size() == 1 ? "" : "s");
            if (p.cfg.kind == config::UcKind::UnifiedCm)
                details += p.mixed_mode ? ", mixed mode" : ", non-secure";
        } else {
            all_ok = false;
            details = p.error.empty() ? "not finished" : p.error;
            if (!p.nodes.empty()) details += fmt::format(" [keeping {} last known nodes]", p.nodes.size());
        }
        rows.push_back({section_name(p.cfg.kind), host_port(p.cfg), to_string(p.state), details});
    }
    print_table(rows);

    auto nodes = d.nodes();
    auto in = snapshot_input(cfg, nodes);
    auto snap = mra::build_snapshot(std::move(in));
    std::printf("\nNodes\n");
    rows = {{"NAME", "TYPE", "PUBLISHER", "HTTPS", "SIP", "SIP-TLS", "SECURITY", "DEPLOYMENT", "STATUS"}};
    for (auto& n : nodes) {
        bool ucm = n.type == mra::NodeType::UnifiedCM;
        rows.push_back({n.name, std::string(mra::to_string(n.type)), n.publisher,
                        std::to_string(mra::https_port_of(n)), ucm ? std::to_string(n.sip_tcp_port) : "-",
                        ucm ? std::to_string(n.sip_tls_port) : "-",
                        ucm ? (n.mixed_mode ? "mixed" : "non-secure") : "-",
                        n.deployment.empty() ? std::string(mra::kDefaultDeploymentName) : n.deployment,
                        std::string(mra::to_string(n.status))});
    }
    if (nodes.empty())
        std::printf("  (none)\n");
    else
        print_table(rows);
    if (!snap) {
        all_ok = false;
        std::printf("\nThe MRA configuration does not validate with these nodes:\n%s\n",
                    snap.error().message.c_str());
    } else {
        auto& s = **snap;
        std::printf("\nZones\n");
        rows = {{"NAME", "TRANSPORT", "TARGET", "TLS-VERIFY"}};
        for (auto& z : s.zones)
            rows.push_back({z.name, z.transport == mra::ZoneTransport::Tls ? "tls" : "tcp",
                            fmt::format("{}:{}", z.node, z.port),
                            z.transport == mra::ZoneTransport::Tls ? (z.tls_verify ? "on" : "off") : "-"});
        if (s.zones.empty())
            std::printf("  (none)\n");
        else
            print_table(rows);
        std::printf("\nSearch rules\n");
        rows = {{"NAME", "PRIORITY", "PATTERN", "TARGET-ZONE"}};
        for (auto& r : s.search_rules)
            rows.push_back(
                {r.name, std::to_string(r.priority),
                 fmt::format("{} {}", r.pattern_type == mra::PatternType::Regex ? "regex" : "exact",
                             r.pattern),
                 r.target_zone});
        if (s.search_rules.empty())
            std::printf("  (none)\n");
        else
            print_table(rows);
        std::printf("\nAutomatic allow-list rules\n");
        rows = {{"URL", "METHODS", "MATCH", "DEPLOYMENT", "DESCRIPTION"}};
        for (auto& r : s.allow_list.rules())
            if (r.origin == mra::RuleOrigin::Automatic)
                rows.push_back({mra::to_string(r.url), s.allow_list.effective_methods(r).to_string(),
                                std::string(mra::to_string(r.match)), r.deployment, r.description});
        if (rows.size() == 1)
            std::printf("  (none)\n");
        else
            print_table(rows);
    }

    bool notes = false;
    for (auto& p : d.publishers())
        for (auto& n : p.notes) {
            if (!notes) std::printf("\nNotes\n");
            notes = true;
            std::printf("  %s: %s\n", p.cfg.address.c_str(), n.c_str());
        }
    bool errors = false;
    for (auto& p : d.publishers())
        if (p.state != PublisherState::State::Ok) {
            if (!errors) std::printf("\nErrors\n");
            errors = true;
            std::printf("  %s %s: %s\n", section_name(p.cfg.kind), host_port(p.cfg).c_str(),
                        p.error.empty() ? "did not finish" : p.error.c_str());
        }
    if (timed_out) std::printf("  discovery did not finish within 180 s\n");
    if (!cfg.discovery.state_file.empty())
        std::printf("\nState written to %s\n", cfg.discovery.state_file.c_str());
    std::fflush(stdout);
    return all_ok ? 0 : 1;
}

} // namespace edgepair::edge_c
