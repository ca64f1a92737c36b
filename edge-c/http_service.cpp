#include "edge-c/http_service.h"

#include "edge-c/edge_c.h"

namespace edgepair::edge_c {

namespace {
// Until the http service lands, a http stream is answered with a clear refusal instead of a hang.
class Refuse final : public link::StreamHandler {
  public:
    void on_data(link::LinkStream& s, const char*, size_t n) override { s.consumed(n); }
    void on_close(link::LinkStream&, std::string_view) override { delete this; }
};
} // namespace

void serve_http_stream(CWorker&, link::LinkStream* s, const link::Headers&) {
    s->set_handler(new Refuse);
    s->send_headers({{":status", "501"}, {"content-type", "text/plain"}}, false);
    s->write("http service not implemented on this edge-c yet\n");
    s->end();
}

} // namespace edgepair::edge_c
