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

class ControlDecoder {
  public:
    explicit ControlDecoder(size_t max_message) : max_(max_message) {}
    // Calls on_message for every complete message. False (and error() set) when a length exceeds the
    // maximum: the stream is then unusable, since we cannot resynchronise.
    bool feed(const char* data, size_t len, const std::function<void(std::string_view)>& on_message);
    const std::string& error() const { return error_; }
    size_t buffered() const { return buf_.size() - off_; }

  private:
    size_t max_;
    std::string buf_;
    size_t off_ = 0;
    std::string error_;
};

} // namespace edgepair::link
