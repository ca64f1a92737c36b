#include "edge-c/stream_router.h"

#include "common/obs/log.h"
#include "edge-c/edge_c.h"

namespace edgepair::edge_c {

namespace {
// Answers a stream that no service can take yet, so edge-e's client gets a clear error rather than a hang.
class Refuse final : public link::StreamHandler {
  public:
    void on_data(link::LinkStream& s, const char*, size_t n) override { s.consumed(n); }
    void on_close(link::LinkStream&, std::string_view) override { delete this; }
};
} // namespace

void serve_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers) {
    (void)w;
    EP_DEBUG("link", "stream {} ({}) {}", s->id(), link::to_string(s->kind()),
             link::header_value(headers, ":path"));
    auto* h = new Refuse;
    s->set_handler(h);
    s->send_headers({{":status", "501"}, {"content-type", "text/plain"}}, false);
    s->write("service not available on this edge-c yet\n");
    s->end();
}

} // namespace edgepair::edge_c
