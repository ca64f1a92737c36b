// libFuzzer target: what a Unified CM / IM and Presence publisher answers edge-c's AXL discovery, and what a
// Unity Connection publisher answers to CUPI (edge-c/discovery.h response parsers). The first byte picks the
// HTTP status the body came with (200 or 500); the rest is the body. Invariants beyond "no crash": the parsed
// reply is consistent with its kind, names come back lower case and non-empty, summaries stay bounded.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge-c/discovery.h"

using namespace edgepair::edge_c;

namespace {

void check_names(const std::vector<std::string>& names, const std::string& publisher) {
    for (auto& n : names) {
        if (n.empty()) std::abort();
        for (unsigned char c : n)
            if (std::isupper(c)) std::abort();
    }
    if (!publisher.empty()) {
        bool listed = false;
        for (auto& n : names)
            listed = listed || n == publisher;
        if (!listed) std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const int status = (data[0] & 1) ? 500 : 200;
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

    auto rep = parse_axl_reply(status, body);
    if ((rep.kind == AxlReply::Ok) != bool(rep.ret)) std::abort();
    if (rep.kind != AxlReply::Fault && (!rep.message.empty() || !rep.axlcode.empty())) std::abort();
    if (!rep.parse_error.empty() && rep.kind != AxlReply::NoEnvelope) std::abort();
    if (status == 200 && (rep.kind == AxlReply::Fault || rep.kind == AxlReply::NoFault)) std::abort();
    if (status == 500 && (rep.kind == AxlReply::Ok || rep.kind == AxlReply::NoReturn)) std::abort();
    if (rep.kind == AxlReply::Ok) {
        (void)parse_ccm_version(rep.ret);
        for (const char* role : {"CUCM Voice/Video", "CUCM IM and Presence"}) {
            auto nodes = parse_process_nodes(rep.ret, role);
            check_names(nodes.names, nodes.publisher);
        }
        (void)parse_security_mode(rep.ret);
        (void)parse_cluster_id(rep.ret);
        (void)parse_call_manager_ports(rep.ret);
        (void)parse_call_manager_list(rep.ret);
    }

    (void)parse_cupi_version(body);
    if (auto c = parse_cupi_cluster(body)) {
        check_names(c->names, c->publisher);
        if (c->names.empty() != c->publisher.empty()) std::abort();
    }

    auto v = highest_listed_axl_version(body);
    if (!v.empty() && (v.size() > 9 || v.find('.') == std::string::npos)) std::abort();
    auto summary = page_summary(body);
    if (summary.size() > 241 || summary.find('<') != std::string::npos) std::abort();
    return 0;
}
