#pragma once
// The admin HTTP endpoint (plain HTTP on a loopback/management address): /health, /ready, /status,
// /metrics and actions. It runs on the main loop, apart from the workers, so a busy data plane never
// makes health checks time out and a slow scrape never delays client traffic.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/net/address.h"
#include "common/net/listener.h"
#include "common/obs/json.h"

namespace edgepair::admin {

struct Request {
    std::string method;
    std::string path; // without the query
    std::string query;
    std::string body;
    std::string authorization; // the Authorization header, when sent
};

struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

Response text(int status, std::string body);
Response json(int status, std::string body);

class Server {
  public:
    using Handler = std::function<Response(const Request&)>;
    static Result<std::unique_ptr<Server>> open(core::Loop& loop, const net::SockAddr& addr);
    ~Server();
    // Exact path match; a handler decides on the method itself (405 otherwise).
    void route(const std::string& path, Handler h) { routes_[path] = std::move(h); }
    // HTTP Basic authentication for every route but /health (a liveness probe learns nothing from it).
    // Without a checker (the loopback default) nothing is asked for.
    using Checker = std::function<bool(std::string_view user, std::string_view password)>;
    void require_basic_auth(std::string realm, Checker check) {
        realm_ = std::move(realm);
        check_ = std::move(check);
    }
    const net::SockAddr& address() const;
    Response dispatch(const Request& req) const;

  private:
    struct Client;
    explicit Server(core::Loop& loop);
    core::Loop& loop_;
    std::unique_ptr<net::Listener> listener_;
    std::map<std::string, Handler> routes_;
    std::string realm_;
    Checker check_;
    std::map<Client*, std::unique_ptr<Client>> clients_;
};

// /status documents are built by hand; strings go through the one escaper.
using obs::json_str;

} // namespace edgepair::admin

namespace edgepair::obs {
class Registry;
}

namespace edgepair::admin {

// The routes every edge serves. `ready` returns an empty string when ready, else the reason (503).
// `status` returns the /status JSON document.
void install_standard_routes(Server& server, const obs::Registry& metrics, std::function<std::string()> ready,
                             std::function<std::string()> status);

// A counter family for /status, summed over workers as /metrics has it: {"<label values joined by />": n},
// e.g. {"denied":3,"tls_required":0} or {"in/ok":2}. {} when the family does not exist.
std::string counters_json(const obs::Registry& metrics, const std::string& family);

} // namespace edgepair::admin
