#pragma once
// Discovery of Unified CM, IM and Presence and Unity Connection nodes (issue #4).
//
// Expressway-C reads what it needs from each configured publisher once, when the publisher is added or the
// operator asks for a refresh ("Why Should I Refresh the Discovered Nodes?": the information is static), and
// builds its zones, search rules and automatic allow-list rules from the result. edgepair does the same: a
// refresh runs every configured publisher (in parallel, on edge-c's main loop, through http::Client); each
// publisher's result replaces only that publisher's nodes; a failure keeps its last known nodes (marked
// stale) and records an error phrased for the operator. The result survives restarts in the state file
// (discovery.state_file), so an edge-c started while the publishers are unreachable still serves.
//
// Wire formats follow tools/fixtures/ucm_fixture.py's docstring (AXL SOAP 1.1 with Basic auth and a
// versioned SOAPAction; CUPI /vmrest for Unity Connection); see discovery.cpp for each request.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pugixml.hpp>

#include "common/config/edge_c_config.h"
#include "common/core/loop.h"
#include "common/http/h1_client.h"
#include "common/mra/snapshot.h"
#include "common/net/dns.h"

namespace edgepair::edge_c {

// What edge-c knows about one configured publisher.
struct PublisherState {
    enum class State { Pending, Running, Ok, Error };

    config::UcServerConfig cfg; // as configured (the secret is never shown)
    State state = State::Pending;
    std::string error;              // the last run's failure, for the operator; empty when it succeeded
    std::vector<std::string> notes; // non-fatal findings of the last successful run
    std::vector<mra::UcNode> nodes; // last known nodes of this publisher's cluster
    bool stale = false;             // nodes are not from a successful run of this process
    bool from_state_file = false;   // nodes were loaded from the state file
    std::string from_peer;          // nodes were discovered by this edge-c peer (cluster), not here
    int64_t last_attempt_unix = 0;  // wall clock, seconds
    int64_t last_success_unix = 0;  // when `nodes` were discovered (0: never)
    std::string product_version;    // getCCMVersion / CUPI version
    std::string axl_version;        // AXL schema version the publisher accepted
    std::string cluster;            // Unified CM / IM&P cluster ID
    bool mixed_mode = false;        // Unified CM Cluster Security Mode 1
    bool rerun = false;             // a refresh arrived while running: run again when done
    uint64_t id = 0;                // stable across reconfiguration: a finishing run finds its publisher
};

const char* to_string(PublisherState::State s);
// "unified_cm" / "im_and_presence" / "unity_connection": the config section names.
const char* section_name(config::UcKind k);

class Discovery {
  public:
    // Called on the loop after a publisher's run ended (nodes may have changed; the state file is written).
    using ChangeFn = std::function<void()>;

    Discovery(core::Loop& loop, http::Client& http, net::Resolver& resolver, std::string state_file);
    ~Discovery();
    Discovery(const Discovery&) = delete;
    Discovery& operator=(const Discovery&) = delete;

    void on_change(ChangeFn fn) { on_change_ = std::move(fn); }

    // Adopts the configured publishers. A publisher already known (same type, address and port) keeps its
    // nodes and status; the others start Pending. Returns the indexes of the publishers that are new, which
    // the caller discovers ("the system attempts to contact the publisher" when it is added).
    std::vector<size_t> configure(const config::DiscoveryConfig& cfg);

    // Reads the state file into the configured publishers (nodes marked stale and from_state_file). A missing
    // file is not an error; a broken one is reported and ignored. Call after configure().
    Result<void> load_state();

    // Starts discovery of the given publishers (every one when `which` is empty). A publisher already
    // running is run again once it finishes. Returns a JSON object describing what will run.
    std::string refresh(const std::vector<size_t>& which = {});

    // The state file's content (what the file holds, and what edge-c peers share with cluster.redis).
    std::string state_json() const;
    // A peer's state_json(): each configured publisher takes that peer's nodes when the peer discovered them
    // successfully later than this process did (and no run of its own is in flight); publishers this peer
    // does not have are ignored. Writes the state file when anything was taken. The number of publishers
    // taken, or why the text was refused.
    Result<size_t> adopt_peer_state(std::string_view text, const std::string& peer);

    bool running() const;
    const std::vector<PublisherState>& publishers() const { return pubs_; }
    const std::string& state_file() const { return state_file_; }

    // The union of every publisher's last known nodes (a node listed by two publishers counts once).
    std::vector<mra::UcNode> nodes() const;
    // Empty when the nodes served are current; else "serving last known state from <file> (discovered at
    // <time>)".
    std::string serving_note() const;
    // Empty once every publisher has been tried (or none is configured) or the state file gave nodes to
    // serve.
    std::string ready_reason() const;
    // The "discovery" object of edge-c's /status. `snap` (may be null) supplies zones, search rules and the
    // automatic allow-list rules built from the nodes.
    std::string status_json(const mra::Snapshot* snap) const;

  private:
    struct Run;
    void start(size_t i);
    void finish(uint64_t id, const Run& run);
    Result<void> save_state() const;

    core::Loop& loop_;
    http::Client& http_;
    net::Resolver& resolver_;
    std::string state_file_;
    std::vector<PublisherState> pubs_;
    std::vector<std::pair<uint64_t, std::shared_ptr<Run>>> runs_; // in flight, by publisher id
    uint64_t next_id_ = 1;
    ChangeFn on_change_;
    std::string state_load_note_;
    int64_t state_written_unix_ = 0; // of the loaded state file
    uint64_t refreshes_ = 0;
    int64_t last_refresh_unix_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// ---- Response parsers ----
// Pure functions over what a publisher sends (no I/O, no logging), so they can be unit-tested and fuzzed on
// their own: a publisher is inside the network, but its answers are still input. Element names are matched on
// their local name only (namespace prefixes differ between Unified CM releases: ns:, axl:, none).

// One AXL answer with HTTP status 200 or 500, read as SOAP 1.1.
struct AxlReply {
    enum Kind {
        Ok,         // `ret` is the <return> element of the response element
        Fault,      // HTTP 500 with a SOAP Fault: `message` is its faultstring, `axlcode` its axlError code
        NoEnvelope, // not XML (`parse_error` says why) or no Envelope/Body
        NoFault,    // HTTP 500 without a Fault
        NoReturn,   // HTTP 200 whose first Body element has no <return>
    };
    Kind kind = NoEnvelope;
    std::shared_ptr<pugi::xml_document> doc; // owns `ret`
    pugi::xml_node ret;
    std::string axlcode, message;
    std::string parse_error;
};
AxlReply parse_axl_reply(int status, std::string_view body);

// getCCMVersion: componentVersion/version (empty when absent).
std::string parse_ccm_version(pugi::xml_node ret);

struct ProcessNodeList {
    std::vector<std::string>
        names;             // lower case, in answer order; EnterpriseWideData and other roles left out
    std::string publisher; // the (last) node whose nodeUsage is Publisher, lower case; empty if none
};
// listProcessNode: the processNode elements of `role` ("CUCM Voice/Video", "CUCM IM and Presence"); an
// element without processNodeRole is taken to have the role asked for.
ProcessNodeList parse_process_nodes(pugi::xml_node ret, std::string_view role);

// executeSQLQuery for ClusterSecurityMode: true for paramvalue 1 (mixed), nullopt when no row came back.
std::optional<bool> parse_security_mode(pugi::xml_node ret);
// executeSQLQuery for ClusterID: the first row's paramvalue (empty when absent).
std::string parse_cluster_id(pugi::xml_node ret);
// One CallManager object as listCallManager returns it. AXLSoap.xsd's list result type LCallManager carries
// name, description, autoRegistration, processNodeName and lbmGroup (uuid and ctiid as attributes): no ports.
struct CallManagerRef {
    std::string name; // the object's name, e.g. "CM_cucm1"
    std::string uuid; // the uuid attribute as sent ("{...}"); may be empty
    std::string node; // processNodeName, lower case
};
// listCallManager: the callManager elements that name an object (name or uuid), in answer order.
std::vector<CallManagerRef> parse_call_manager_list(pugi::xml_node ret);
// getCallManager (RCallManager, whose ports element holds sipPort and securedSipPort): processNodeName (lower
// case) -> {ports/sipPort, ports/securedSipPort} as atoi reads them (0 when absent); the caller keeps only
// 1..65535.
std::map<std::string, std::pair<int, int>> parse_call_manager_ports(pugi::xml_node ret);

// listPresenceRedundancyGroup (AXLSoap.xsd LPresenceRedundancyGroup: name, description, server1, server2,
// haEnabled, numUsers; server1/server2 are XFkType whose text is the process node name): node -> the other
// node of its group, lower case, for groups with two servers.
std::map<std::string, std::string> parse_presence_redundancy_groups(pugi::xml_node ret);

// CUPI GET /vmrest/version: VersionInformation/version (empty when absent or not XML).
std::string parse_cupi_version(std::string_view body);
struct CupiCluster {
    std::vector<std::string> names; // HostName, else ServerName; lower case
    std::string publisher;          // ClusterMemberId 0, else the first server
};
// CUPI GET /vmrest/cluster: nullopt when the body is not XML or has no <VmsServers>.
std::optional<CupiCluster> parse_cupi_cluster(std::string_view body);

// HTTP 599 "Incorrect axl version. Supported axl versions are 12.0, 12.5, 14.0 and 15.0" -> "15.0" (empty
// when the body lists none).
std::string highest_listed_axl_version(std::string_view body);
// A short plain-text summary (at most about 240 characters) of an HTML/XML error page, for messages.
std::string page_summary(std::string_view body);

// `edge-c -c FILE discover`: runs discovery of every configured publisher once, prints nodes, zones, search
// rules and automatic allow-list rules (and the errors), writes the state file. Returns the exit code: 0
// when every publisher was discovered, 1 otherwise.
int run_discover_cli(const config::EdgeCConfig& cfg);

} // namespace edgepair::edge_c
