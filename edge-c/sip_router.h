#pragma once
// edge-c's SIP proxy element for MRA (issue #6). edge-e relays each client's TLS connection as one link
// stream of whole SIP messages; this router is the only proxy element of the pair: it adds its Via, its
// Record-Route and (per sip.path_headers) a rewritten Contact or a Path, and routes to the Unified CM node
// through the node's generated zone (CEtls- when the cluster is mixed mode, else CEtcp-).
//
// One router per edge-c worker. Towards each Unified CM node it keeps ONE persistent connection shared by
// every client flow of the worker, so Unified CM sees one line-side "trunk" per worker as with Expressway.
// edge-c accepts no inbound connections, so every URI it writes (Via sent-by, Record-Route, Contact, Path)
// names the local address of that persistent connection: a registrar that reuses connections by peer
// address (Kamailio, Unified CM) sends requests for the client back over it.
//
// Record-Route on both sides (issue #16), as Expressway does: a dialog-forming request gets two entries, the
// inside one (edge-c's URI with the flow token, which Unified CM uses) and the outside one (the edge-e
// address the client reached, `transport=tls;lr`, which the client uses), so ACK, BYE and re-INVITE from the
// client come back over its TLS flow to edge-e. Route entries naming edge-e (that outside entry, and the
// Route get_edge_config advertises in sipRequest/route) are recognised as ours and removed, never forwarded.
//
// Routing back is stateless: each URI and Via branch carries an authenticated flow token
// (sip::FlowTokenCodec) naming the client flow or the upstream connection, so no transaction table is kept.
// What is kept per flow is the Contact URIs it used (to restore the Request-URI the client expects).
//
// What a client may not do through this router (issue #14): reach the node with a Contact it wrote (every
// Contact is rewritten to a URI of this router, or the message refused), route through anything but the
// edge and Unified CM nodes (Route policy, 403), or send the node more than sip.max_message_to_node (513).
// One client's message never costs the others their shared node connection: the node framer skips what it
// cannot relay, and when a node connection is lost anyway every flow that used it is closed at once, so
// its client reconnects and registers again instead of keeping a binding that points at a dead port.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/loop.h"
#include "common/link/link_conn.h"
#include "common/mra/model.h"
#include "common/mra/snapshot.h"
#include "common/net/connection.h"
#include "common/obs/access_log.h"
#include "common/obs/counter_memo.h"
#include "common/sip/flow_token.h"
#include "common/sip/framer.h"
#include "common/sip/link_codec.h"
#include "common/sip/message.h"
#include "common/sip/mra_policy.h"
#include "edge-c/media_b2bua.h"
#include "edge-c/sip_access.h"

namespace edgepair::edge_c {

class CWorker;
class SipRouter;

// FlowId::link_stream values: what kind of thing the token names.
inline constexpr uint64_t kFlowClient = 1;
inline constexpr uint64_t kFlowUpstream = 2;

// How the client reached edge-e, from the link stream's headers.
struct EdgeSide {
    std::string local_ip; // edge-e's address on the client's connection (IPv6 bracketed)
    uint16_t local_port = 0;
    std::string name;      // x-edge-host: the name get_edge_config's sipRequest/route advertises
    uint16_t sip_port = 0; // x-edge-sip-port
};

// One client's SIP connection on edge-e, seen as the link stream that carries it.
class SipFlow final : public link::StreamHandler {
  public:
    SipFlow(SipRouter& r, link::LinkStream* s, uint64_t id, std::string domain, std::string client,
            std::string sni, EdgeSide edge);
    void on_data(link::LinkStream& s, const char* data, size_t len) override;
    void on_end(link::LinkStream& s) override;
    void on_close(link::LinkStream& s, const core::Failure& failure) override;

    // One whole message to the client.
    void send(std::string_view wire);
    // Ends the flow from this side (edge-e then closes the client's connection); the flow is freed.
    void close(std::string_view why);

    uint64_t id() const { return id_; }
    const std::string& domain() const { return domain_; }
    const std::string& client() const { return client_; }
    const std::string& sni() const { return sni_; } // the name the client reached edge-e by
    const EdgeSide& edge() const { return edge_; }
    // The outside Record-Route: edge-e by the name (SNI, else address) and port this client reached.
    sip::Uri outside_uri() const;
    link::LinkConn* link() const { return link_; }
    std::string node;       // the Unified CM node this flow registered through
    obs::FlowAccess access; // log.access: opened by SipRouter::attach, closed by flow_ended
    // Token binding (SIP OAuth or an edge token) and MRA access policy outcome of this flow
    // (edge-c/sip_access.h).
    struct Identity {
        std::string user, device, policy; // bound by a REGISTER with a valid token for one of user's devices
        bool voice = false;
        std::string refused_user,
            refused_policy; // a REGISTER the policy refused: INVITE gets the same answer
    } identity;
    // The client's Contact URIs, indexed by the rewritten Contact's "epc" param.
    sip::ContactTable contacts;
    // The upstreams (SipUpstream::id) this flow's messages went over: told when one is lost.
    std::vector<uint64_t> upstreams;
    void used(uint64_t upstream);

  private:
    SipRouter& r_;
    link::LinkStream* s_;
    link::LinkConn* link_;
    uint64_t id_;
    std::string domain_, client_, sni_;
    EdgeSide edge_;
    sip::LinkDecoder decoder_;
    bool ended_ = false;
};

// The persistent connection to one Unified CM node over one zone.
class SipUpstream {
  public:
    SipUpstream(SipRouter& r, uint64_t id, const mra::Zone& zone);
    uint64_t id() const { return id_; }
    const std::string& node() const { return node_; }
    bool ready() const { return state_ == State::Ready; }
    bool tls() const { return tls_; }
    const std::string& local_host() const { return local_host_; }
    uint16_t local_port() const { return local_port_; }
    const std::string& peer_ip() const { return peer_ip_; }
    // A request or response from a client flow (flow 0: none). Queued until connected.
    void send_from_client(sip::Message m, uint64_t flow);
    void send_raw(std::string_view wire);
    // A response from a client flow (our Via already popped): Contacts rewritten, size checked, sent.
    void send_response_from_client(sip::Message m, uint64_t flow);
    // sip:<token>@<local address>;transport=..[;lr] naming `flow` on this connection.
    sip::Uri our_uri(uint64_t flow, bool lr) const;
    // The Contact that stands for a client's `orig` Contact (sip::mra_contact).
    sip::Uri contact_for(uint64_t flow, size_t epc, const sip::Uri& orig) const;

  private:
    enum class State { Idle, Resolving, Connecting, Ready };
    struct Pending {
        sip::Message msg;
        uint64_t flow;
    };
    void connect();
    void on_resolved(Result<std::vector<net::SockAddr>> r);
    void on_ready();
    void on_data(const char* d, size_t n);
    void on_closed(std::string_view why);
    void fail_pending(std::string_view why);
    void on_frame_error(const sip::FrameError& e);
    // Writes `m` unless it is over sip.max_message_to_node; false (and 513 to `flow`) when it is.
    bool write_checked(const sip::Message& m, uint64_t flow);

    SipRouter& r_;
    uint64_t id_;
    std::string node_;
    uint16_t port_;
    bool tls_, verify_;
    State state_ = State::Idle;
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<sip::Framer> framer_;
    std::unique_ptr<core::Timer> keepalive_;
    std::vector<Pending> pending_;
    std::string local_host_, peer_ip_;
    uint16_t local_port_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class SipRouter {
  public:
    explicit SipRouter(CWorker& w);
    CWorker& worker() { return w_; }

    void attach(link::LinkStream* s, const link::Headers& headers);
    void flow_ended(SipFlow& f); // no more routing to it
    void flow_closed(SipFlow& f);

    void from_client(SipFlow& f, std::string_view bytes);
    // A node connection that carried flows is gone: close every flow that used it (see the class comment).
    void upstream_lost(SipUpstream& u);
    void from_upstream(SipUpstream& u, std::string_view bytes);
    void count(std::string_view reason);
    // The debug log's line for every SIP message: method or status, CSeq and Call-ID (issue #16).
    void log_transaction(std::string_view side, uint64_t id, std::string_view peer, std::string_view dir,
                         const sip::Message& m) const;
    std::string random_token(size_t bytes = 8);
    // A zone's connection or a new one.
    SipUpstream* upstream_for(const mra::Zone& z);
    std::string flow_token(uint64_t kind, uint64_t id) { return tokens_->encode({kind, id}); }
    bool path_headers() const;
    SipFlow* find_flow(uint64_t id);
    // A locally generated response to a request from `flow` (0: none) whose upstream failed.
    void reply_to_flow(uint64_t flow, const sip::Message& req, int status, std::string_view reason = {});
    // A "media_*" control message from edge-e on link.
    void media_control(link::LinkConn* link, std::string_view msg);
    // Some worker's connection to Unified CM node `node` resolved to `ip` (EdgeC::share_node_address).
    void learn_node_address(const std::string& ip, const std::string& node) { node_addresses_[ip] = node; }

  private:
    const mra::Zone* choose_zone(SipFlow& f, const sip::Message& m);
    // A client's request the access gate let through: Max-Forwards, Route policy, zone, then upstream.
    void forward_request(SipFlow& f, sip::Message&& m);
    // The zone of the Unified CM node `host` names (search rules, then the addresses this worker's node
    // connections reached, then those any worker's reached: EdgeC::share_node_address).
    const mra::Zone* zone_by_host(const mra::Snapshot& snap, std::string_view host) const;
    // The URI names a Unified CM node on one of its SIP ports (Route policy).
    bool names_node(const sip::Uri& u) const;
    // The URI names this edge: our own flow-token URIs, or edge-e by the name the client reached it by.
    bool names_edge(const SipFlow& f, const sip::Uri& u) const;
    void reply_upstream(SipUpstream& u, const sip::Message& req, int status, std::string_view reason = {});
    std::optional<sip::FlowId> our_uri(const sip::Uri& u) const;
    std::optional<sip::FlowId> branch_flow(const sip::Via& top) const;
    // Hands a message to the media B2BUA (when media is configured) before `send` forwards it.
    void via_media(SipFlow& f, MediaB2bua::From from, sip::Message&& m, MediaB2bua::Continue send);

    CWorker& w_;
    // Bound once: a refused message costs a hash lookup on its reason, not a registry lookup under its lock.
    std::unique_ptr<obs::OpenLabelCounters> errors_;
    std::optional<sip::FlowTokenMemo> tokens_;
    uint64_t next_flow_ = 1, next_upstream_ = 1;
    std::unordered_map<uint64_t, SipFlow*> flows_;
    std::unordered_map<std::string, std::unique_ptr<SipUpstream>> upstreams_; // by zone name
    std::unordered_map<uint64_t, SipUpstream*> upstream_by_id_;
    // Node addresses any worker resolved (address -> node name); bounded by the discovered nodes' addresses.
    std::unordered_map<std::string, std::string> node_addresses_;
    std::unique_ptr<MediaB2bua> media_;   // none without a `media:` section
    std::unique_ptr<SipAccessGate> gate_; // SIP OAuth and MRA access policy (issue #15)
};

} // namespace edgepair::edge_c
