// libFuzzer target: what edge-e and edge-c read from the traversal link's control stream. The input is used
// twice: as one control message (the JSON envelope and the snapshot document edge-e rebuilds its MRA state
// from), and as the raw stream body, cut into DATA-frame-sized pieces by the length-prefix decoder.
// Only what the decoder would deliver (bounded length and nesting) reaches the JSON handlers, as on the link.
// Invariants beyond "no crash": the decoder accounts for every byte and delivers the same messages whatever
// the split; a snapshot that parses re-serialises to a document that parses to the same thing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/link/control.h"
#include "common/mra/snapshot.h"
#include "common/mra/snapshot_json.h"

using namespace edgepair;

namespace {

// The bound LinkConn uses for control messages is configurable; a small one here lets the fuzzer reach the
// over-limit path with short inputs.
constexpr size_t kMaxMessage = 2048;

void check_message(std::string_view msg) {
    if (link::json_nesting_depth(msg) > link::kMaxControlDepth) std::abort();
    (void)mra::control_type(msg);
    (void)mra::control_uint(msg, "workers", 1);
    (void)mra::control_uint(msg, "id", 0);
    auto in = mra::snapshot_input_from_control(msg);
    if (!in) return;
    // edge-c serialises with to_json; whatever edge-e accepted must survive the same trip unchanged.
    const std::string once = mra::to_json(*in);
    auto again = mra::snapshot_input_from_json(once);
    if (!again || mra::to_json(*again) != once) std::abort();
    (void)mra::build_snapshot(std::move(*in));
}

struct Decoded {
    std::vector<std::string> msgs;
    bool ok = true;
    size_t buffered = 0;
};

Decoded decode(std::string_view wire, size_t chunk) {
    link::ControlDecoder d(kMaxMessage);
    Decoded out;
    for (size_t i = 0; i < wire.size() && out.ok; i += chunk) {
        size_t n = std::min(chunk, wire.size() - i);
        out.ok = d.feed(wire.data() + i, n, [&](std::string_view m) {
            if (m.size() > kMaxMessage) std::abort();
            out.msgs.emplace_back(m);
        });
        if (!out.ok && d.error().empty()) std::abort();
    }
    out.buffered = d.buffered();
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (size <= kMaxMessage && link::json_nesting_depth(input) <= link::kMaxControlDepth)
        check_message(input);

    // The first byte picks the DATA frame size, the rest is the stream body.
    if (size == 0) return 0;
    const size_t chunk = size_t(data[0] % 17) + 1;
    const std::string_view wire = input.substr(1);
    auto whole = decode(wire, wire.size() ? wire.size() : 1);
    auto split = decode(wire, chunk);
    if (whole.ok != split.ok || whole.msgs != split.msgs) std::abort();
    if (whole.ok) {
        size_t used = whole.buffered;
        for (auto& m : whole.msgs)
            used += 4 + m.size();
        if (used != wire.size()) std::abort();
        if (whole.buffered >= 4 + kMaxMessage) std::abort();
    }
    for (auto& m : whole.msgs)
        check_message(m);
    // Framing what was decoded gives back the bytes it came from.
    std::string reframed;
    for (auto& m : whole.msgs)
        reframed += link::frame_control(m);
    if (wire.substr(0, reframed.size()) != reframed) std::abort();
    return 0;
}
