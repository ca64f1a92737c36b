#pragma once
// An HTTP/2 request's header block, checked and turned into the same RequestHead an HTTP/1.1 request
// yields, so both protocols meet one request gate on edge-e. nghttp2 validates much of RFC 9113 8.2-8.3
// already; this is the second, independent check (and the one the fuzzer drives), fed field by field as
// HPACK decodes them so that memory stays bounded by the limits, not by what the client sends.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/http/h1_parser.h"

namespace edgepair::http {

struct H2RequestLimits {
    size_t max_header_bytes = 16 * 1024; // sum of name + value + 32 per field (RFC 9113 6.5.2 accounting)
    size_t max_headers = 100;
};

struct H2RequestError {
    // Malformed per RFC 9113 8.1.1: a stream error (RST_STREAM PROTOCOL_ERROR), no HTTP answer.
    // Otherwise an HTTP answer with `status` (431 for size limits, 501 for CONNECT).
    bool malformed = false;
    int status = 400;
    std::string label; // stable metric label
    std::string detail;
};

class H2RequestBuilder {
  public:
    explicit H2RequestBuilder(H2RequestLimits limits = {}) : limits_(limits) {}
    // One decoded field, in block order. After the first error the rest is ignored (not stored).
    void add(std::string_view name, std::string_view value);
    // The end of the header block. On success `head()` holds method, target (:path), version_minor 2 and the
    // regular fields with Host set from :authority (cookie crumbs joined per RFC 9113 8.2.3).
    bool finish();
    bool failed() const { return !error_.label.empty(); }
    const H2RequestError& error() const { return error_; }
    const RequestHead& head() const { return head_; }
    // Content-Length as sent, when sent (an h2 request may omit it: the END_STREAM flag frames the body).
    bool has_content_length() const { return has_cl_; }
    uint64_t content_length() const { return cl_; }

  private:
    void fail(bool malformed, int status, std::string label, std::string detail);

    H2RequestLimits limits_;
    RequestHead head_;
    H2RequestError error_;
    std::string scheme_, authority_, cookie_;
    bool seen_method_ = false, seen_scheme_ = false, seen_path_ = false, seen_authority_ = false;
    bool regular_seen_ = false;
    bool has_cl_ = false;
    uint64_t cl_ = 0;
    size_t bytes_ = 0;
    size_t count_ = 0;
};

} // namespace edgepair::http
