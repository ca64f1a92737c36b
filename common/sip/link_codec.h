#pragma once
// SIP messages on a traversal-link stream (issue #13). edge-e frames and validates what a client sends,
// then hands each message to the link with its boundary, so edge-c parses it without framing it again;
// edge-c sends its messages for the client the same way and edge-e writes them out unchanged.
//
// The one place the format is defined. Format "len32": per message a 4-byte big-endian length, then the
// message bytes (a complete SIP message, Content-Length consistent with its body). A link stream of kind
// "sip" names its format in the x-sip-format header, so a different format can be introduced beside this
// one and a peer that does not know it refuses the stream instead of misreading it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgepair::sip {

inline constexpr std::string_view kLinkFormatHeader = "x-sip-format";
inline constexpr std::string_view kLinkFormat = "len32";

// Appends `message` with its boundary to `out` (one LinkStream::write per message keeps it whole).
void link_encode(std::string& out, std::string_view message);
std::string link_encode(std::string_view message);

class LinkDecoder {
  public:
    // A length above max_message is a broken peer, not a large message: decoding fails.
    explicit LinkDecoder(size_t max_message) : max_(max_message) {}

    enum class Status : uint8_t { need_more, message, error };
    void feed(std::string_view bytes);
    // On `message`, `out` is valid until the next feed() or next().
    Status next(std::string_view& out);
    bool failed() const { return failed_; }
    // feed() then next() until done: hands each whole message to `on_message`, which returns false to stop
    // (its flow ended). False when the stream broke its framing: the caller decides what that costs.
    template <class F> bool feed_each(std::string_view bytes, F&& on_message) {
        feed(bytes);
        std::string_view msg;
        for (;;) {
            switch (next(msg)) {
            case Status::need_more:
                return true;
            case Status::error:
                return false;
            case Status::message:
                if (!on_message(msg)) return true;
            }
        }
    }

  private:
    size_t max_;
    std::string buf_;
    size_t pos_ = 0;
    bool failed_ = false;
};

} // namespace edgepair::sip
