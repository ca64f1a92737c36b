// Feeds arbitrary bytes to the SIP stream framer, whole and in chunks, and checks:
// - framing does not depend on how the input was split;
// - every framed message that parses re-parses identically after serialize();
// - a valid request yields a response that itself validates, and proxy edits keep it parseable;
// - can_reply implies the reported head parses.
#include "common/sip/framer.h"
#include "common/sip/message.h"
#include "common/sip/proxy.h"
#include "common/sip/uri.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace edgepair::sip;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void exercise(std::string_view wire) {
    auto m = Message::parse(wire);
    if (!m) return;
    std::string out = m->serialize();
    auto again = Message::parse(out);
    check(again.ok());
    check(again->headers().size() == m->headers().size());
    check(again->body() == m->body());
    check(again->serialize() == out);

    RoutingInfo ri;
    Validation v = validate(*m, {}, &ri);
    if (v.ok()) {
        // Parameter lists are kept as normalised text (issue 18): what was parsed writes out and parses
        // back to the same text, and every parameter's value is found again by its name.
        auto via = Via::parse(ri.top_via.to_string());
        check(via.ok() && via->to_string() == ri.top_via.to_string());
        check(via->branch() == ri.top_via.branch());
        for (const NameAddr* na : {&ri.from, &ri.to}) {
            auto back = NameAddr::parse(na->to_string());
            check(back.ok() && back->to_string() == na->to_string());
            check(back->params.size() == na->params.size() && back->tag() == na->tag());
        }
    }
    if (!v.ok() || !m->is_request()) return;
    Message r = make_response(*m, 400, {}, "fz");
    auto rp = Message::parse(r.serialize());
    check(rp.ok());
    check(validate(*rp).ok());

    Message edited = *m;
    ViaSpec spec;
    spec.host = "expe1.example.com";
    spec.port = 5061;
    spec.branch = make_branch([](uint8_t* p, size_t n) {
        for (size_t i = 0; i < n; ++i)
            p[i] = static_cast<uint8_t>(i);
    });
    push_via(edited, spec);
    (void)decrement_max_forwards(edited);
    (void)pop_route_if(edited, [](const Uri& u) { return u.host == "expe1.example.com"; });
    auto n = rewrite_contacts(edited, [](const Uri& u) -> std::optional<std::string> {
        Uri o = u;
        if (o.is_sip()) o.host = "edge.example.com";
        return o.to_string();
    });
    auto ep = Message::parse(edited.serialize());
    check(ep.ok());
    if (n) check(ep->values(HeaderId::contact).size() == m->values(HeaderId::contact).size());
    check(pop_via(*ep));
    Validation v2 = validate(*ep);
    (void)v2;
}

std::vector<std::string> run(std::string_view in, size_t chunk, bool deep) {
    FramerLimits lim;
    lim.max_message_size = 4096;
    lim.max_headers = 40;
    Framer f(lim);
    std::vector<std::string> evs;
    size_t pos = 0;
    bool done = false;
    while (!done) {
        if (pos < in.size()) {
            size_t n = std::min(chunk, in.size() - pos);
            f.feed(in.substr(pos, n));
            pos += n;
        }
        while (true) {
            FrameEvent ev = f.next();
            if (ev.type == FrameEventType::need_more) break;
            if (ev.type == FrameEventType::message) {
                check(ev.head_size <= ev.message.size());
                check(ev.message.size() <= lim.max_message_size);
                evs.push_back("m:" + std::string(ev.message));
                if (deep) exercise(ev.message);
            } else if (ev.type == FrameEventType::keepalive_ping) {
                evs.push_back("ping");
            } else if (ev.type == FrameEventType::keepalive_pong) {
                evs.push_back("pong");
            } else {
                check(ev.error != nullptr);
                check(!metric_label(ev.error->code).empty());
                if (ev.error->can_reply) check(Message::parse_head(ev.error->head).ok());
                evs.push_back("e:" + std::string(metric_label(ev.error->code)));
                done = true;
                break;
            }
        }
        if (pos >= in.size()) done = true;
    }
    return evs;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t chunk = (data[0] % 32) + 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto whole = run(in, in.size() + 1, true);
    auto split = run(in, chunk, false);
    check(whole == split);
    return 0;
}
