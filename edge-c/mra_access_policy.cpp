#include "edge-c/mra_access_policy.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "common/http/b64_domain.h"
#include "common/obs/log.h"
#include "common/xmpp/writer.h"
#include "edge-c/discovery.h"
#include "edge-c/edge_c.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "policy";
constexpr const char* kSoapEnv = "http://schemas.xmlsoap.org/soap/envelope/";
// Assumption (see the header): a user without a user profile has Unified CM's default profile values.
constexpr MraPolicy kNoProfilePolicy = MraPolicy::ImVoiceVideo;
// Bounds the cache against a flood of distinct user names (each a cheap entry, but not free).
constexpr size_t kMaxEntries = 100000;

bool icontains(std::string_view hay, std::string_view needle) {
    if (needle.size() > hay.size()) return false;
    for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
        if (mra::iequals(hay.substr(i, needle.size()), needle)) return true;
    return false;
}

// Children by local name (AXL answers carry ns:, axl: or no prefix depending on the release).
std::string_view local_name(const char* n) {
    std::string_view s(n);
    auto c = s.find(':');
    return c == std::string_view::npos ? s : s.substr(c + 1);
}

pugi::xml_node child(pugi::xml_node n, std::string_view name) {
    for (auto c : n.children())
        if (c.type() == pugi::node_element && local_name(c.name()) == name) return c;
    return {};
}

std::string trimmed_text(pugi::xml_node n) {
    std::string_view s = n.text().get();
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
        s.remove_suffix(1);
    return std::string(s);
}

bool axl_true(std::string_view s) {
    return mra::iequals(s, "true") || s == "t" || s == "1";
}

// AXL answers a getUser for an unknown user with a Fault (axlcode 5007 "Item not valid: The specified User
// was not found" on real nodes; the fixture says the same).
bool fault_is_not_found(const AxlReply& r) {
    return r.kind == AxlReply::Fault && (r.axlcode == "5007" || icontains(r.message, "not found"));
}

uint64_t to_ms(config::Duration d) {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

} // namespace

const char* policy_label(MraPolicy p) {
    switch (p) {
    case MraPolicy::NoService:
        return "no_service";
    case MraPolicy::ImOnly:
        return "im_only";
    case MraPolicy::ImVoiceVideo:
        return "im_voice_video";
    }
    return "no_service";
}

std::optional<MraPolicy> parse_mra_policy(std::string_view axl) {
    if (mra::iequals(axl, "No Service")) return MraPolicy::NoService;
    if (mra::iequals(axl, "IM & Presence only")) return MraPolicy::ImOnly;
    if (mra::iequals(axl, "IM & Presence, Voice and Video calls")) return MraPolicy::ImVoiceVideo;
    return std::nullopt;
}

const char* service_label(MraService s) {
    switch (s) {
    case MraService::Http:
        return "http";
    case MraService::Xmpp:
        return "xmpp";
    case MraService::Sip:
        return "sip";
    }
    return "http";
}

bool policy_allows(MraPolicy p, MraService s) {
    switch (p) {
    case MraPolicy::NoService:
        return false;
    case MraPolicy::ImOnly:
        return s != MraService::Sip;
    case MraPolicy::ImVoiceVideo:
        return true;
    }
    return false;
}

const char* device_class_label(DeviceClass c) {
    switch (c) {
    case DeviceClass::Desktop:
        return "desktop";
    case DeviceClass::Mobile:
        return "mobile";
    case DeviceClass::Unknown:
        return "unknown";
    }
    return "unknown";
}

// The one place that tells desktop from mobile on SIP. Unified CM's guides name the Jabber device types by
// their name prefix: CSF (Cisco Unified Client Services Framework: Jabber for Windows and Mac), TCT (iPhone),
// BOT (Android), TAB (tablets). Anything else (a desk phone, a TC endpoint) is Unknown.
DeviceClass device_class_of_sip_device(std::string_view device_name) {
    if (device_name.size() < 4) return DeviceClass::Unknown;
    auto p = device_name.substr(0, 3);
    if (mra::iequals(p, "CSF")) return DeviceClass::Desktop;
    if (mra::iequals(p, "TCT") || mra::iequals(p, "BOT") || mra::iequals(p, "TAB"))
        return DeviceClass::Mobile;
    return DeviceClass::Unknown;
}

// The one place that tells desktop from mobile on HTTP and XMPP. Jabber's exact User-Agent strings are not
// public: mobile platforms are recognised by the platform names any client puts there.
DeviceClass device_class_of_user_agent(std::string_view ua) {
    for (auto m : {"iphone", "ipad", "android", "ios"})
        if (icontains(ua, m)) return DeviceClass::Mobile;
    for (auto d : {"windows", "macintosh", "mac os", "macos"})
        if (icontains(ua, d)) return DeviceClass::Desktop;
    return DeviceClass::Unknown;
}

bool UserAccess::owns_device(std::string_view device) const {
    return std::any_of(devices.begin(), devices.end(),
                       [&](const std::string& d) { return mra::iequals(d, device); });
}

MraPolicy effective_policy(const UserAccess& a, DeviceClass c, config::UnknownDeviceClass unknown) {
    if (!a.found || !a.mra_enabled) return MraPolicy::NoService;
    if (c == DeviceClass::Unknown) {
        switch (unknown) {
        case config::UnknownDeviceClass::Desktop:
            c = DeviceClass::Desktop;
            break;
        case config::UnknownDeviceClass::Mobile:
            c = DeviceClass::Mobile;
            break;
        case config::UnknownDeviceClass::Strictest:
            return std::min(a.desktop, a.mobile); // the enum is ordered from least to most access
        }
    }
    return c == DeviceClass::Mobile ? a.mobile : a.desktop;
}

std::optional<AxlUser> parse_axl_user(pugi::xml_node ret) {
    auto u = child(ret, "user");
    if (!u) return std::nullopt;
    AxlUser out;
    out.userid = trimmed_text(child(u, "userid"));
    out.profile = trimmed_text(child(u, "userProfile"));
    if (auto ad = child(u, "associatedDevices"))
        for (auto d : ad.children())
            if (d.type() == pugi::node_element && local_name(d.name()) == "device") {
                auto name = trimmed_text(d);
                if (!name.empty() && out.devices.size() < 1000) out.devices.push_back(std::move(name));
            }
    return out;
}

std::optional<AxlProfile> parse_user_profile(pugi::xml_node ret) {
    auto p = child(ret, "userProfileProvision");
    if (!p) return std::nullopt;
    AxlProfile out;
    if (auto e = child(p, "enableMra")) out.enable_mra = axl_true(trimmed_text(e));
    for (auto [tag, dst] :
         {std::pair{"mraPolicy_Desktop", &out.desktop}, std::pair{"mraPolicy_Mobile", &out.mobile}}) {
        auto n = child(p, tag);
        if (!n) continue; // absent: the schema default
        auto v = parse_mra_policy(trimmed_text(n));
        if (!v) return std::nullopt;
        *dst = *v;
    }
    return out;
}

Result<UserAccess> access_from_axl(std::string_view user, int user_status, std::string_view user_body,
                                   std::optional<std::pair<int, std::string_view>> profile_reply) {
    UserAccess a;
    a.user = std::string(user);
    auto ur = parse_axl_reply(user_status, user_body);
    if (fault_is_not_found(ur)) {
        a.found = false;
        return a;
    }
    if (ur.kind != AxlReply::Ok)
        return make_error(fmt::format("getUser {}: {}", user,
                                      ur.kind == AxlReply::Fault ? ur.message : "not an AXL answer"));
    auto u = parse_axl_user(ur.ret);
    if (!u) return make_error(fmt::format("getUser {}: no <user> in the answer", user));
    a.found = true;
    a.devices = std::move(u->devices);
    a.desktop = a.mobile = kNoProfilePolicy;
    if (u->profile.empty() || !profile_reply) return a;
    auto pr = parse_axl_reply(profile_reply->first, profile_reply->second);
    if (pr.kind != AxlReply::Ok)
        return make_error(fmt::format("getUserProfileProvision {}: {}", u->profile,
                                      pr.kind == AxlReply::Fault ? pr.message : "not an AXL answer"));
    auto p = parse_user_profile(pr.ret);
    if (!p)
        return make_error(
            fmt::format("getUserProfileProvision {}: no profile or an unknown MRA policy value", u->profile));
    a.mra_enabled = p->enable_mra;
    a.desktop = p->desktop;
    a.mobile = p->mobile;
    return a;
}

// ---------------------------------------------------------------------------------------------------------
// XMPP

// ---------------------------------------------------------------------------------------------------------
// MraAccessDirectory

MraAccessDirectory::MraAccessDirectory(CWorker& w) : w_(w) {}

MraAccessDirectory::~MraAccessDirectory() {
    *alive_ = false;
}

void MraAccessDirectory::count_refusal(MraService s, MraPolicy p) {
    w_.counters()
        .get("edgepair_mra_policy_refused_total", "Requests refused by the user's MRA access policy",
             {{"service", service_label(s)}, {"policy", policy_label(p)}})
        .inc();
}

void MraAccessDirectory::lookup(std::string_view user, std::string_view deployment, Callback cb) {
    std::string key = std::string(deployment) + '\n' + mra::to_lower(user);
    const uint64_t now = w_.worker().loop().now_ms();
    if (auto it = cache_.find(key); it != cache_.end()) {
        if (it->second.expires_ms > now) return cb(it->second.access);
        cache_.erase(it);
    }
    auto& waiters = pending_[key];
    waiters.push_back(std::move(cb));
    if (waiters.size() == 1) start(key, std::string(user), std::string(deployment));
}

void MraAccessDirectory::start(const std::string& key, std::string user, std::string deployment) {
    const auto& cfg = w_.gen()->cfg;
    const config::UcServerConfig* pub = nullptr;
    for (const auto& p : cfg.discovery.unified_cm)
        if (p.deployment == deployment) {
            pub = &p;
            break;
        }
    if (!pub) {
        return w_.worker().loop().post([this, alive = std::weak_ptr<bool>(alive_), key, deployment] {
            if (alive.expired()) return;
            finish(key, make_error(fmt::format("no Unified CM publisher configured for deployment {} "
                                               "(discovery.unified_cm)",
                                               deployment)));
        });
    }
    auto axl = [pub, ver = cfg.mra_policy.axl_version](std::string_view op, std::string inner) {
        http::ClientRequest req;
        req.method = "POST";
        req.origin = http::Origin{"https", pub->address, pub->port};
        req.target = "/axl/";
        req.verify = pub->tls_verify;
        req.headers.add("Authorization", "Basic " + http::base64_encode(pub->username + ":" + pub->password));
        req.headers.add("Content-Type", "text/xml; charset=utf-8");
        req.headers.add("SOAPAction", fmt::format("\"CUCM:DB ver={} {}\"", ver, op));
        req.body =
            fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                        "<soapenv:Envelope xmlns:soapenv=\"{}\" xmlns:ns=\"http://www.cisco.com/AXL/API/{}\">"
                        "<soapenv:Header/><soapenv:Body><ns:{}>{}</ns:{}></soapenv:Body></soapenv:Envelope>",
                        kSoapEnv, ver, op, inner, op);
        return req;
    };
    auto req = axl("getUser", fmt::format("<userid>{}</userid><returnedTags><userid/><associatedDevices>"
                                          "<device/></associatedDevices><userProfile/></returnedTags>",
                                          xmpp::escape_xml(user)));
    std::weak_ptr<bool> alive = alive_;
    w_.http().fetch(std::move(req), [this, alive, key, user, axl](Result<http::ClientResponse> r) {
        if (alive.expired()) return;
        if (!r) return finish(key, make_error(fmt::format("AXL getUser {}: {}", user, r.error().message)));
        auto first = access_from_axl(user, r->status, r->body, std::nullopt);
        if (!first || !first->found) return finish(key, std::move(first));
        auto ur = parse_axl_reply(r->status, r->body);
        auto u = parse_axl_user(ur.ret);
        if (!u || u->profile.empty()) return finish(key, std::move(first));
        auto preq =
            axl("getUserProfileProvision", fmt::format("<name>{}</name>", xmpp::escape_xml(u->profile)));
        w_.http().fetch(std::move(preq), [this, alive, key, user, status = r->status,
                                          body = std::move(r->body)](Result<http::ClientResponse> p) {
            if (alive.expired()) return;
            if (!p)
                return finish(key,
                              make_error(fmt::format("AXL getUserProfileProvision: {}", p.error().message)));
            finish(key,
                   access_from_axl(user, status, body, std::pair<int, std::string_view>{p->status, p->body}));
        });
    });
}

void MraAccessDirectory::finish(const std::string& key, Result<UserAccess> r) {
    auto it = pending_.find(key);
    if (it == pending_.end()) return;
    auto waiters = std::move(it->second);
    pending_.erase(it);
    if (r) {
        const uint64_t ttl = to_ms(w_.gen()->cfg.mra_policy.cache_ttl);
        if (ttl) {
            if (cache_.size() >= kMaxEntries) {
                const uint64_t now = w_.worker().loop().now_ms();
                std::erase_if(cache_, [now](const auto& e) { return e.second.expires_ms <= now; });
                if (cache_.size() >= kMaxEntries) cache_.clear();
            }
            cache_[key] = Entry{*r, w_.worker().loop().now_ms() + ttl};
        }
        EP_DEBUG(kLog, "user {}: found={} mra={} desktop={} mobile={} devices={}", r->user, r->found,
                 r->mra_enabled, policy_label(r->desktop), policy_label(r->mobile), r->devices.size());
    } else {
        EP_WARN(kLog, "MRA access policy look-up failed: {}", r.error().message);
    }
    for (auto& cb : waiters)
        cb(r);
}

} // namespace edgepair::edge_c
