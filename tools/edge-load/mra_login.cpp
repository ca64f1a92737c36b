#include "tools/edge-load/mra_login.h"

#include <netinet/in.h>
#include <pugixml.hpp>

#include <fmt/format.h>

#include "common/core/version.h"
#include "common/http/b64_domain.h"
#include "tools/edge-load/driver.h"
#include "tools/edge-load/source_addr.h"

namespace edgepair::load {

namespace {
constexpr size_t kMaxBody = 1 << 20; // edge config, UDS user, a config file: all far smaller
}

const char* mra_step_name(size_t step) {
    static const std::array<const char*, kMraSteps> names{"dns",  "edge_config",  "uds",
                                                          "tftp", "sip_register", "xmpp_login"};
    return step < kMraSteps ? names[step] : "login";
}

const char* sign_in_step_name(size_t step) {
    static const std::array<const char*, kSignInSteps> names{"connect", "edge_config", "home_cluster", "uds"};
    return step < kSignInSteps ? names[step] : "sign-in";
}

// net::Connection's close reasons begin "connect to ..." for TCP failures and "tls ..." for TLS ones.
ErrKind conn_err_kind(std::string_view why) {
    return why.starts_with("connect") ? ErrKind::Connect
           : why.starts_with("tls")   ? ErrKind::Tls
                                      : ErrKind::Protocol;
}

void set_port(net::SockAddr& a, uint16_t port) {
    if (a.family() == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
    else
        reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
}

std::optional<EdgeConfigInfo> parse_edge_config(std::string_view xml, std::string* why, bool need_sip_xmpp) {
    pugi::xml_document doc;
    if (!doc.load_buffer(xml.data(), xml.size())) {
        *why = "get_edge_config: not XML";
        return std::nullopt;
    }
    auto root = doc.child("getEdgeConfigResponse");
    if (!root) {
        *why = "get_edge_config: no getEdgeConfigResponse";
        return std::nullopt;
    }
    EdgeConfigInfo info;
    for (auto svc : root.child("serviceConfig").children("service")) {
        std::string_view name = svc.child_value("name");
        if (name == "_cisco-uds" && info.uds_host.empty()) {
            if (auto srv = svc.child("server")) {
                info.uds_host = srv.child_value("address");
                info.uds_port = uint16_t(srv.child("port").text().as_uint(8443));
            }
        } else if (name == "tftpServer" && info.tftp_host.empty()) {
            info.tftp_host = svc.child_value("address");
        }
    }
    auto edge = root.child("edgeConfig");
    info.sip_host = edge.child("sipEdgeServer").child("server").child_value("address");
    info.sip_port = uint16_t(edge.child("sipEdgeServer").child("server").child("tlsPort").text().as_uint(0));
    info.xmpp_host = edge.child("xmppEdgeServer").child("server").child_value("address");
    info.xmpp_port =
        uint16_t(edge.child("xmppEdgeServer").child("server").child("tlsPort").text().as_uint(0));
    if (info.uds_host.empty())
        *why = "get_edge_config: no _cisco-uds server";
    else if (need_sip_xmpp && (info.sip_host.empty() || !info.sip_port))
        *why = "get_edge_config: no sipEdgeServer";
    else if (need_sip_xmpp && (info.xmpp_host.empty() || !info.xmpp_port))
        *why = "get_edge_config: no xmppEdgeServer";
    else {
        // Unified CM nodes run the TFTP service; a deployment that lists none is served by its UDS node.
        if (info.tftp_host.empty()) info.tftp_host = info.uds_host;
        return info;
    }
    return std::nullopt;
}

MraLogin::MraLogin(core::Loop& loop, net::Resolver* resolver, const Options& opt,
                   std::shared_ptr<net::TlsClientContext> tls, std::mt19937_64& rng, unsigned index,
                   Done done)
    : loop_(loop), resolver_(resolver), opt_(opt), tls_(std::move(tls)), rng_(rng),
      user_(user_for(opt, index)), done_(std::move(done)), password_(opt.password) {}

MraLogin::~MraLogin() {
    *alive_ = false;
    if (http_) http_->set_callbacks({});
}

void MraLogin::cancel() {
    finished_ = true;
    if (http_) http_->abort("cancelled");
    if (sip_) sip_->abort("cancelled");
    if (xmpp_) xmpp_->abort("cancelled");
}

void MraLogin::start() {
    step_ = kStepDns;
    t_step_ = now_ns();
    auto alive = alive_;
    resolver_->resolve_srv("_collab-edge._tls." + opt_.domain, [this, alive](auto r) {
        if (!*alive || finished_) return;
        if (!r) return fail(ErrKind::Dns, "SRV _collab-edge._tls." + opt_.domain + ": " + r.error().message);
        if (r->empty()) return fail(ErrKind::Dns, "SRV _collab-edge._tls." + opt_.domain + ": no records");
        edge_host_ = r->front().target;
        edge_port_ = r->front().port;
        resolve_loopback(edge_host_, [this](net::SockAddr a) {
            step_done(kStepDns);
            set_port(a, edge_port_);
            std::string err;
            SSL* ssl = tls_->new_ssl(edge_host_);
            http_ = net::Connection::connect(loop_, a, ssl, &err);
            if (!http_) return fail(ErrKind::Connect, err);
            http_->set_callbacks({[this] {
                                      ++res_.connects;
                                      http_get(
                                          "/" + http::encode_domain(opt_.domain) +
                                          "/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin");
                                  },
                                  [this](const char* d, size_t n) { on_http_data(d, n); },
                                  [this](std::string_view why) {
                                      dead_http_.push_back(std::move(http_));
                                      if (finished_ || step_ > kStepTftp) return;
                                      fail(conn_err_kind(why), fmt::format("HTTPS connection: {}", why));
                                  },
                                  nullptr});
            http_->start();
        });
    });
}

void MraLogin::start_sign_in(const net::SockAddr& to, const std::string& tls_name, uint32_t source,
                             bool wrong_password) {
    sign_in_ = true;
    res_.wrong_password = wrong_password;
    // Still the user's own password with something appended: a typo, not a different user.
    if (wrong_password) password_ += "-wrong";
    step_ = kSiConnect;
    t_step_ = now_ns();
    edge_host_ = tls_name;
    edge_port_ = to.port();
    std::string err;
    http_ = connect_from(loop_, to, source, tls_->new_ssl(tls_name), &err);
    if (!http_) return fail(ErrKind::Connect, err);
    http_->set_callbacks({[this] {
                              ++res_.connects;
                              step_done(kSiConnect);
                              http_get("/" + http::encode_domain(opt_.domain) +
                                       "/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin");
                          },
                          [this](const char* d, size_t n) { on_http_data(d, n); },
                          [this](std::string_view why) {
                              dead_http_.push_back(std::move(http_));
                              if (finished_) return;
                              fail(conn_err_kind(why), fmt::format("HTTPS connection: {}", why));
                          },
                          nullptr});
    http_->start();
}

void MraLogin::resolve_loopback(const std::string& host, std::function<void(net::SockAddr)> next) {
    auto alive = alive_;
    resolver_->resolve(host, [this, alive, host, next = std::move(next)](auto r) {
        if (!*alive || finished_) return;
        if (!r || r->empty())
            return fail(ErrKind::Dns, fmt::format("{}: {}", host, r ? "no address" : r.error().message));
        for (const net::SockAddr& a : *r)
            if (is_loopback(a)) return next(a);
        fail(ErrKind::Dns,
             fmt::format("{} resolves to {}, not loopback: not dialled", host, r->front().ip()));
    });
}

void MraLogin::maybe_done() {
    if (finished_ || !xmpp_done_ || signing_out_) return;
    finished_ = true;
    res_.ok = true;
    done_(res_);
}

void MraLogin::step_done(size_t step) {
    uint64_t now = now_ns();
    res_.step_us[step] = (now - t_step_) / 1000;
    res_.steps_done = step + 1;
    t_step_ = now;
    step_ = step + 1;
}

void MraLogin::fail(ErrKind k, std::string why) {
    if (finished_) return;
    finished_ = true;
    res_.ok = false;
    res_.kind = k;
    res_.why = fmt::format("{}: {}", step_name(step_), why);
    res_.failed_step = step_;
    if (http_) http_->abort("login failed");
    if (sip_) sip_->abort("login failed");
    if (xmpp_) xmpp_->abort("login failed");
    done_(res_);
}

void MraLogin::http_get(std::string path, bool bearer) {
    parser_ = std::make_unique<http::H1Parser>(http::H1Parser::Kind::Response);
    body_.clear();
    path_ = path;
    std::string auth = bearer ? "Bearer " + token_ : "Basic " + http::base64_encode(user_ + ":" + password_);
    http_->write(fmt::format("GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: edge-load/{}\r\nAccept: */*\r\n"
                             "Authorization: {}\r\n\r\n",
                             path, edge_host_, edge_port_, kVersion, auth));
}

void MraLogin::on_http_data(const char* d, size_t n) {
    if (!parser_) return fail(ErrKind::Protocol, "bytes from the edge without a request");
    size_t off = 0;
    auto alive = alive_;
    for (size_t guard = 0; guard < 2 * n + 4 && parser_; ++guard) {
        auto r = parser_->feed(d + off, n - off);
        off += r.consumed;
        switch (r.status) {
        case http::H1Parser::Status::NeedMore:
            return;
        case http::H1Parser::Status::HeadersComplete:
            continue;
        case http::H1Parser::Status::Body:
            if (body_.size() + r.body.size() > kMaxBody)
                return fail(ErrKind::Protocol, "response body too large");
            body_.append(r.body);
            continue;
        case http::H1Parser::Status::Error:
            return fail(ErrKind::Protocol, "unparsable HTTP response");
        case http::H1Parser::Status::MessageComplete: {
            int st = parser_->response().status;
            if (sign_in_ && step_ == kSiEdgeConfig) {
                constexpr std::string_view kCookie = "X-Auth=";
                for (std::string_view c : parser_->headers().find_all("set-cookie"))
                    if (c.starts_with(kCookie))
                        token_ = std::string(c.substr(kCookie.size(), c.find(';') - kCookie.size()));
            }
            parser_.reset();
            on_http_response(st, std::move(body_));
            return;
        }
        }
    }
}

void MraLogin::on_http_response(int status, std::string body) {
    if (sign_in_) return on_sign_in_response(status, std::move(body));
    // 403 is the allow list refusing the URL, not the credentials: only 401 is an authentication error.
    if (status == 401) return fail(ErrKind::Auth, fmt::format("HTTP 401 for GET {}", path_));
    if (status >= 400)
        return fail(status >= 500 ? ErrKind::Http5xx : ErrKind::Http4xx,
                    fmt::format("HTTP {} for GET {}", status, path_));
    if (status != 200) return fail(ErrKind::Protocol, fmt::format("HTTP {} for GET {}", status, path_));
    std::string b64 = http::encode_domain(opt_.domain);
    switch (step_) {
    case kStepEdgeConfig: {
        std::string why;
        auto info = parse_edge_config(body, &why);
        if (!info) return fail(ErrKind::Protocol, why);
        info_ = *info;
        step_done(kStepEdgeConfig);
        return http_get(
            fmt::format("/{}/https/{}/{}/cucm-uds/user/{}", b64, info_.uds_host, info_.uds_port, user_));
    }
    case kStepUds:
        step_done(kStepUds);
        return http_get(
            fmt::format("/{}/http/{}/{}{}", b64, info_.tftp_host, opt_.tftp_port, opt_.tftp_file));
    case kStepTftp:
        step_done(kStepTftp);
        http_->close();
        return sip_step();
    default:
        return fail(ErrKind::Protocol, "unexpected HTTP response");
    }
}

void MraLogin::on_sign_in_response(int status, std::string body) {
    if (status == 401) return fail(ErrKind::Auth, fmt::format("HTTP 401 for GET {}", path_));
    if (status >= 400)
        return fail(status >= 500 ? ErrKind::Http5xx : ErrKind::Http4xx,
                    fmt::format("HTTP {} for GET {}", status, path_));
    if (status != 200) return fail(ErrKind::Protocol, fmt::format("HTTP {} for GET {}", status, path_));
    const std::string b64 = http::encode_domain(opt_.domain);
    switch (step_) {
    case kSiEdgeConfig: {
        std::string why;
        auto info = parse_edge_config(body, &why, false);
        if (!info) return fail(ErrKind::Protocol, why);
        info_ = *info;
        step_done(kSiEdgeConfig);
        res_.token = !token_.empty();
        // A client that got no token keeps using its password.
        return http_get(fmt::format("/{}/https/{}/{}/cucm-uds/clusterUser?username={}", b64, info_.uds_host,
                                    info_.uds_port, user_),
                        res_.token);
    }
    case kSiHomeCluster:
        step_done(kSiHomeCluster);
        return http_get(
            fmt::format("/{}/https/{}/{}/cucm-uds/user/{}", b64, info_.uds_host, info_.uds_port, user_));
    case kSiUds:
        step_done(kSiUds);
        res_.signed_in_ns = now_ns();
        finished_ = true;
        res_.ok = true;
        http_->close();
        return done_(res_);
    default:
        return fail(ErrKind::Protocol, "unexpected HTTP response");
    }
}

void MraLogin::sip_step() {
    resolve_loopback(info_.sip_host, [this](net::SockAddr a) {
        set_port(a, info_.sip_port);
        sip_cfg_.addr = a;
        sip_cfg_.tls = tls_;
        sip_cfg_.tls_name = info_.sip_host;
        sip_cfg_.user = user_;
        sip_cfg_.password = opt_.password;
        sip_cfg_.domain = opt_.domain;
        sip_cfg_.expires = opt_.expires;
        SipClient::Events ev;
        ev.on_connected = [this] {
            ++res_.connects;
            sip_->register_now(opt_.expires);
        };
        ev.on_registered = [this](uint32_t, bool challenged) {
            if (signing_out_) {
                signing_out_ = false;
                sip_->abort("signed out");
                return maybe_done();
            }
            res_.challenged = challenged;
            step_done(kStepSip);
            // A signed-in Jabber keeps its registration. A sign-in benchmark signs out (Expires 0) while the
            // XMPP step runs, outside the measured steps: otherwise every sign-in would leave one more
            // binding at the registrar, and a registrar lists them all in each 200 OK.
            signing_out_ = true;
            sip_->register_now(0);
            xmpp_step();
        };
        ev.on_failed = [this](ErrKind k, std::string_view why) {
            if (!signing_out_) return fail(k, std::string(why));
            signing_out_ = false; // a refused sign-out does not undo the sign-in
            sip_->abort("sign-out refused");
            maybe_done();
        };
        ev.on_closed = [this](ErrKind k, std::string_view why) {
            if (sip_) dead_sip_.push_back(std::move(sip_));
            if (step_ == kStepSip) return fail(k, fmt::format("SIP connection: {}", why));
            if (signing_out_) {
                signing_out_ = false;
                maybe_done();
            }
        };
        sip_ = std::make_unique<SipClient>(loop_, sip_cfg_, rng_, std::move(ev));
        std::string err;
        if (!sip_->connect(&err)) fail(ErrKind::Connect, err);
    });
}

void MraLogin::xmpp_step() {
    resolve_loopback(info_.xmpp_host, [this](net::SockAddr a) {
        set_port(a, info_.xmpp_port);
        xmpp_cfg_.addr = a;
        xmpp_cfg_.tls = tls_;
        xmpp_cfg_.tls_name = opt_.sni.empty() ? opt_.domain : opt_.sni;
        xmpp_cfg_.domain = opt_.domain;
        xmpp_cfg_.user = user_;
        xmpp_cfg_.password = opt_.password;
        xmpp_cfg_.resource = fmt::format("{}-{}", opt_.resource, rng_() % 1000000);
        XmppClient::Events ev;
        ev.on_up = [this](const std::string&, const XmppLoginTimes&) {
            ++res_.connects;
            step_done(kStepXmpp);
            res_.signed_in_ns = now_ns();
            xmpp_done_ = true;
            xmpp_->close();
            maybe_done();
        };
        ev.on_failed = [this](ErrKind k, std::string_view why) { fail(k, std::string(why)); };
        ev.on_closed = [this](ErrKind k, std::string_view why) {
            if (xmpp_) dead_xmpp_.push_back(std::move(xmpp_));
            if (step_ == kStepXmpp) fail(k, fmt::format("XMPP connection: {}", why));
        };
        xmpp_ = std::make_unique<XmppClient>(loop_, xmpp_cfg_, std::move(ev));
        std::string err;
        if (!xmpp_->connect(&err)) fail(ErrKind::Connect, err);
    });
}

} // namespace edgepair::load
