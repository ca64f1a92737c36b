// Feeds arbitrary bytes to the XMPP stream framer, whole and in chunks, and checks that the events
// before any error do not depend on the split, that both runs agree on failing, and that every
// stanza is a byte range of the input. A second pass restarts after STARTTLS to reach that path. The
// chunked runs free the parser after every chunk (Framer::release_parser), which must change nothing.
#include "common/xmpp/framer.h"
#include "common/xmpp/writer.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace edgepair::xmpp;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

struct Run {
    std::vector<std::string> events; // keep-alive runs merged, errors excluded
    bool failed = false;
};

Run run(std::string_view in, size_t chunk, bool restart_on_starttls, bool release) {
    FramerOptions opts;
    opts.max_stanza_size = 2048;
    opts.max_depth = 16;
    opts.max_token_size = 512;
    Framer f(opts);
    Run r;
    size_t pos = 0;
    while (pos < in.size()) {
        size_t n = std::min(chunk, in.size() - pos);
        f.feed(in.substr(pos, n));
        if (release) f.release_parser();
        pos += n;
        while (auto ev = f.next()) {
            switch (ev->type) {
            case EventType::stream_open:
                check(in.find(ev->header.raw) != std::string_view::npos);
                r.events.push_back("open:" + ev->header.raw);
                break;
            case EventType::stanza:
            case EventType::starttls:
                check(!ev->raw.empty() && ev->raw.size() <= opts.max_stanza_size);
                check(in.find(ev->raw) != std::string_view::npos);
                r.events.push_back("s:" + ev->raw);
                if (ev->type == EventType::starttls && restart_on_starttls) f.restart();
                break;
            case EventType::keepalive:
                if (!r.events.empty() && r.events.back().rfind("ws:", 0) == 0)
                    r.events.back() += ev->raw;
                else
                    r.events.push_back("ws:" + ev->raw);
                break;
            case EventType::stream_close:
                r.events.push_back("close");
                break;
            case EventType::error:
                check(!condition_name(ev->condition).empty());
                (void)stream_error(ev->condition, ev->detail);
                r.failed = true;
                break;
            }
        }
    }
    check(r.failed == f.failed());
    return r;
}

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (a.size() > b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (i + 1 == a.size() && a[i].rfind("ws:", 0) == 0 && b[i].rfind(a[i], 0) == 0) continue;
        if (a[i] != b[i]) return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t chunk = (data[0] % 32) + 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    Run whole = run(in, in.size() + 1, false, false);
    Run split = run(in, chunk, false, true);
    check(whole.failed == split.failed);
    if (!whole.failed)
        check(whole.events == split.events);
    else
        check(is_prefix(whole.events, split.events) || is_prefix(split.events, whole.events));
    (void)run(in, chunk, true, true);
    return 0;
}
