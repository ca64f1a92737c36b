#pragma once
// Framing of control messages on the link's control stream: a 4-byte big-endian length, then the JSON text.
// HTTP/2 DATA frames do not preserve message boundaries, so the stream body needs its own framing.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace edgepair::link {

std::string frame_control(std::string_view payload);

// Control messages are small JSON documents (a snapshot is 5 levels deep); nlohmann::json serialises and
// compares recursively, so a deeply nested message from a broken peer would exhaust a worker's stack in
// whichever handler re-serialises it. The decoder refuses such messages before any JSON parser sees them.
inline constexpr size_t kMaxControlDepth = 32;

// The deepest nesting of JSON arrays and objects in `text`, counting brackets outside strings only (no
// validation: a malformed document is the JSON parser's to refuse). Stops counting past `limit`.
size_t json_nesting_depth(std::string_view text, size_t limit = kMaxControlDepth);

class ControlDecoder {
  public:
    explicit ControlDecoder(size_t max_message, size_t max_depth = kMaxControlDepth)
        : max_(max_message), max_depth_(max_depth) {}
    // Calls on_message for every complete message. False (and error() set) when a length exceeds the
    // maximum or a message nests deeper than max_depth: the stream is then unusable (we cannot resynchronise
    // after a bad length, and a peer that sends such a message is broken).
    bool feed(const char* data, size_t len, const std::function<void(std::string_view)>& on_message);
    const std::string& error() const { return error_; }
    size_t buffered() const { return buf_.size() - off_; }

  private:
    size_t max_;
    size_t max_depth_;
    std::string buf_;
    size_t off_ = 0;
    std::string error_;
};

} // namespace edgepair::link
