// libFuzzer target: the route-set handling both edges apply to every federated request a remote domain or
// IM&P sends (common/sip/fed_route.h): pop the Route entries naming us, read the epfed domain from our
// entry, Record-Route a dialog-forming request. Invariants beyond "no crash": an epfed domain read back is a
// lower-case DNS name; after the pop the top Route no longer names us; a request we Record-Routed
// serialises, parses again, and its top Record-Route is our entry with the domain we gave.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/sip/fed_route.h"
#include "common/sip/message.h"
#include "common/sip/proxy.h"

using namespace edgepair::sip;

namespace {
constexpr std::string_view kHost = "192.0.2.1";
constexpr uint16_t kPort = 5062;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto m = Message::parse(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!m) return 0;
    auto popped = fed_pop_own_routes(*m, kHost, kPort);
    if (!popped) return 0;
    if (popped->domain)
        for (unsigned char c : *popped->domain)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) std::abort();
    if (popped->count > 0 && popped->count < 4) {
        auto again = fed_pop_own_routes(*m, kHost, kPort);
        if (again && again->count != 0) std::abort();
    }
    if (!fed_dialog_forming(*m)) return 0;
    push_record_route(*m, fed_record_route(kHost, kPort, "tcp", "partner.test"));
    auto back = Message::parse(m->serialize());
    if (!back) return 0; // a body cut by a bogus Content-Length: the original was not relayable either
    auto rr = back->values(HeaderId::record_route);
    if (rr.empty()) std::abort();
    auto na = NameAddr::parse(rr.front());
    if (!na || !fed_names(na->uri, kHost, kPort) || fed_domain(na->uri) != "partner.test") std::abort();
    return 0;
}
