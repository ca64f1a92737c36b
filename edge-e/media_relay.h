#pragma once
// edge-e's half of the media relay (issue #9): per-call RTP/RTCP port pairs facing the clients, and one
// multiplexed traversal port per worker facing edge-c (common/media/traversal.h). edge-e never looks inside
// the packets: SRTP is terminated by edge-c. It only latches each stream to the client's real source address
// (the client is usually behind NAT, so the SDP address is useless) and refuses packets from anyone else.
//
// Sessions are opened and closed by edge-c over the control stream of the link that carries the call's SIP
// flow, so a call's media lives on the same worker as its signalling and its link.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config/media_config.h"
#include "common/core/loop.h"
#include "common/media/media_metrics.h"
#include "common/media/traversal.h"
#include "common/media/udp.h"
#include "common/net/address.h"

namespace edgepair::link {
class LinkConn;
}

namespace edgepair::edge_e {

class MediaRelay {
  public:
    MediaRelay(core::Loop& loop, const config::EdgeEMediaConfig& cfg, unsigned worker, unsigned workers,
               const media::MediaMetrics& metrics);
    ~MediaRelay();
    MediaRelay(const MediaRelay&) = delete;
    MediaRelay& operator=(const MediaRelay&) = delete;

    // A "media_*" control message from edge-c on `link`; returns the reply to send on that link (or "").
    std::string on_control(link::LinkConn* link, std::string_view json);
    // The link went away: its calls cannot continue.
    void link_closed(link::LinkConn* link);
    size_t sessions() const { return sessions_.size(); }
    bool ready() const { return mux_.valid(); }

  private:
    struct Session;
    struct Stream {
        Session* session = nullptr;
        media::UdpSocket sock[2]; // RTP, RTCP
        std::unique_ptr<core::IoWatcher> watch[2];
        uint32_t channel[2] = {0, 0};
        net::SockAddr client[2]; // latched client address (len 0 until latched)
        uint16_t port = 0;
    };
    struct Session {
        uint64_t id = 0;
        link::LinkConn* link = nullptr;
        std::string client_ip; // the SIP connection's address: the only source we latch to
        std::vector<std::unique_ptr<Stream>> streams;
        uint64_t last_ms = 0;
    };
    struct LinkMedia {
        net::SockAddr peer;      // edge-c's address on the link: the only source of traversal packets
        net::SockAddr traversal; // edge-c's traversal socket, learned from its packets
    };

    std::string open(link::LinkConn* link, uint64_t req, const std::string& client, size_t nstreams);
    void close(uint64_t id);
    void on_client(Stream& st, int which);
    void on_mux();
    void count(uint64_t packets, uint64_t bytes);
    void sweep();
    uint32_t new_channel();

    core::Loop& loop_;
    config::EdgeEMediaConfig cfg_;
    const media::MediaMetrics& m_;
    media::UdpSocket mux_;
    std::unique_ptr<core::IoWatcher> mux_watch_;
    std::unique_ptr<media::PortPairAllocator> alloc_;
    std::unique_ptr<core::Timer> sweep_timer_;
    uint64_t next_id_ = 1;
    std::unordered_map<uint64_t, std::unique_ptr<Session>> sessions_;
    std::unordered_map<uint32_t, std::pair<Stream*, int>> channels_;
    std::unordered_map<link::LinkConn*, LinkMedia> links_;
    uint16_t mux_port_ = 0;
    // Client sockets read behind room for the traversal header; the traversal socket reads header and all.
    media::RecvBatch client_batch_{media::kTraversalHeader, media::kMaxDatagram, 0};
    media::RecvBatch mux_batch_{0, media::kTraversalHeader + media::kMaxDatagram, 0};
};

} // namespace edgepair::edge_e
