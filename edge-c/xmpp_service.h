#pragma once
#include <array>
#include <cstddef>
#include <memory>
#include <string_view>

#include "common/link/link_conn.h"
#include "common/obs/metrics.h"
#include "edge-c/imp_home.h"

namespace edgepair::obs {
class OpenLabelCounters;
}

namespace edgepair::edge_c {

class CWorker;

// edge-c's XMPP service on one worker: relays each xmpp stream edge-e opens on this worker's links to an
// IM and Presence node, the user's home node once the sign-in names the user (edge-c/imp_home.h).
class XmppService {
  public:
    explicit XmppService(CWorker& w);
    ~XmppService();
    void serve(link::LinkStream* s, const link::Headers& headers);
    // Where this worker starts its walk over a deployment's nodes (spreads sessions over them).
    size_t next_start() { return rr_++; }
    // One XMPP session set up (result "ok") or refused (the reason).
    void count(std::string_view result);
    // A sign-in followed IM&P's home-node hint (result "followed") or refused to (result "refused").
    void count_redirect(std::string_view result);
    // A sign-in refused inside the stream before IM&P saw its <auth/> (policy, token, Exclusive), by reason.
    void count_refused_sign_in(std::string_view reason);
    ImpHomeCache& homes() { return homes_; }

  private:
    CWorker& w_;
    size_t rr_ = 0;
    static constexpr std::array<std::string_view, 5> kResults{"ok", "no_config", "unknown_domain", "no_node",
                                                              "unreachable"};
    std::array<obs::Counter*, kResults.size()> results_{};
    obs::Counter* redirects_followed_ = nullptr;
    obs::Counter* redirects_refused_ = nullptr;
    std::unique_ptr<obs::OpenLabelCounters> refused_sign_ins_;
    ImpHomeCache homes_;
};

} // namespace edgepair::edge_c
