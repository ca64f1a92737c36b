#include "common/media/media_metrics.h"

namespace edgepair::media {

MediaMetrics MediaMetrics::create(obs::Registry& reg, std::initializer_list<const char*> drop_reasons) {
    MediaMetrics m;
    m.packets = &reg.counter("edgepair_media_packets_total", "RTP/RTCP packets relayed");
    m.bytes = &reg.counter("edgepair_media_bytes_total", "RTP/RTCP payload bytes relayed");
    m.sessions = &reg.gauge("edgepair_media_sessions", "Open media sessions");
    for (const char* r : drop_reasons)
        m.drops[r] = &reg.counter("edgepair_media_dropped_total", "Media packets dropped", {{"reason", r}});
    if (auto it = m.drops.find("kernel_rcvbuf"); it != m.drops.end()) m.kernel_rcvbuf = it->second;
    return m;
}

void MediaMetrics::drop(std::string_view reason, uint64_t n) const {
    if (auto it = drops.find(reason); it != drops.end()) it->second->inc(n);
}

uint64_t MediaMetrics::dropped() const {
    uint64_t n = 0;
    for (auto& [k, c] : drops)
        n += c->value();
    return n;
}

} // namespace edgepair::media
