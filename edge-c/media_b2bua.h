#pragma once
// edge-c's media B2BUA (issue #9, the guide's "Media encryption"): for every call through the SIP router it
// rewrites SDP so each side sends media to the edge next to it, and relays the media itself:
//
//   client ==SRTP(client's key)==> edge-e port ==traversal==> edge-c ==RTP or SRTP(our key)==> internal
//   client <==SRTP(our key)======= edge-e port <==traversal== edge-c <==RTP or SRTP(its key)== internal
//
// Every m-line the relay can carry gets its own relay (audio, video, content video, UDP/BFCP floor control;
// up to 8 per call); each RTP stream uses an RTP+RTCP port pair, or one port on the legs that negotiated
// rtcp-mux. An m-line it cannot carry goes on with port 0 and is answered with port 0
// (common/media/sdp_relay.h).
//
// SRTP is always terminated here (keys never cross legs): the client leg is always SRTP with SDES keys
// edge-c generates, and with `media.encryption: force` a client that offers or answers without a=crypto is
// refused. Towards the internal side edge-c offers "best effort" (RTP/AVP with a=crypto) and follows what the
// internal endpoint answers, or answers what it offers.
//
// Each call's edge-e ports are opened over the control stream of the link that carries its SIP flow; SIP
// messages carrying SDP wait (in order, per call) until edge-e has answered, which costs one link round
// trip on the first SDP of a call.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/config/media_config.h"
#include "common/core/loop.h"
#include "common/media/media_metrics.h"
#include "common/media/sdp.h"
#include "common/media/srtp.h"
#include "common/media/traversal.h"
#include "common/media/udp.h"
#include "common/sip/message.h"

namespace edgepair::link {
class LinkConn;
}

namespace edgepair::edge_c {

class MediaB2bua {
  public:
    enum class From { Client, Internal };
    // Called with the (possibly rewritten) message: status 0 = forward it, else answer the request with
    // status/reason instead (responses are always forwarded).
    using Continue = std::function<void(sip::Message&& m, int status, std::string_view reason)>;

    struct Refusals {
        obs::Counter* unencrypted = nullptr; // the guide's "Force encrypted"
        obs::Counter* unavailable = nullptr; // edge-e or our ports could not open the call's media
    };
    // link_alive: whether a link pointer still names a live link (a call may outlive its link).
    MediaB2bua(core::Loop& loop, const config::EdgeCMediaConfig& cfg, const media::MediaMetrics& metrics,
               Refusals refusals, std::function<bool(link::LinkConn*)> link_alive);
    ~MediaB2bua();
    MediaB2bua(const MediaB2bua&) = delete;
    MediaB2bua& operator=(const MediaB2bua&) = delete;

    // Every SIP message of a client flow passes here before it is forwarded. link: the link carrying
    // the flow; client_ip: the client's address as edge-e saw it (media is latched to it).
    void process(uint64_t flow, link::LinkConn* link, const std::string& client_ip, From from,
                 sip::Message&& m, Continue next);
    // A "media_*" control message from edge-e on link.
    void on_control(link::LinkConn* link, std::string_view json);
    void flow_closed(uint64_t flow);
    void link_closed(link::LinkConn* link);
    size_t calls() const { return calls_.size(); }

  private:
    struct Call;
    struct Leg;
    struct LinkMedia;

    // Asks edge-e for n more streams of the call (its first offer, or a re-offer adding m-lines).
    void open(Call& c, size_t n);
    void opened(Call& c, const nlohmann::json& j);
    void run_waiting(const std::string& call_id);
    // may_open: an offer with m-lines that have no relay yet opens them first and runs again once they are
    // open (then with may_open false: whatever could not be opened is rejected).
    void handle(Call& c, From from, sip::Message&& m, Continue next, bool may_open);
    // Rewrites body in place. Returns 0 or the SIP status to refuse with.
    int rewrite_from_client(Call& c, media::Sdp& sdp, bool offer);
    int rewrite_from_internal(Call& c, media::Sdp& sdp, bool offer);
    void release(const std::string& call_id, std::string_view why);
    void on_traversal(LinkMedia& lm);
    void on_internal(Leg& leg, int which);
    // One packet, decrypted and re-encrypted as needed, to the internal endpoint / to edge-e for the client.
    // which: 0 RTP, 1 RTCP. forward_client's buf has room for the traversal header before the packet.
    void forward_internal(Leg& leg, int which, const uint8_t* p, size_t len);
    void forward_client(Leg& leg, int which, uint8_t* buf, size_t len);
    // The relayed-packet counters are shared by the workers: forward_* tally, each read event adds once.
    void flush_tally();
    void sweep();
    LinkMedia* link_media(link::LinkConn* link, uint16_t mux_port);

    core::Loop& loop_;
    config::EdgeCMediaConfig cfg_;
    const media::MediaMetrics& m_;
    Refusals refused_;
    std::function<bool(link::LinkConn*)> link_alive_;
    std::unique_ptr<media::PortPairAllocator> alloc_;
    std::unique_ptr<core::Timer> sweep_timer_;
    uint32_t next_req_ = 1;
    unsigned sweeps_ = 0;
    std::unordered_map<std::string, std::unique_ptr<Call>> calls_; // by Call-ID
    std::unordered_map<uint32_t, std::string> opening_;            // control request id -> Call-ID
    std::unordered_map<uint32_t, std::pair<Leg*, int>> channels_;  // edge-e channel -> leg, RTP/RTCP
    std::unordered_map<link::LinkConn*, std::unique_ptr<LinkMedia>> links_;
    uint64_t tally_packets_ = 0, tally_bytes_ = 0;
    // Room for the traversal header before each datagram (edge-e's, or the one forward_client writes) and for
    // the SRTP trailer that protecting a packet in place adds after it.
    media::RecvBatch traversal_batch_{0, media::kTraversalHeader + media::kMaxDatagram,
                                      media::kSrtpMaxTrailer};
    media::RecvBatch internal_batch_{media::kTraversalHeader, media::kMaxDatagram, media::kSrtpMaxTrailer};
};

} // namespace edgepair::edge_c
