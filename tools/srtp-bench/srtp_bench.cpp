// SRTP cost per packet for each backend of common/media/srtp (issue 18): protect then unprotect N RTP
// packets of 172 bytes (12-byte header, 160 bytes of G.711 at 20 ms), one SSRC, as edge-c's media B2BUA
// does for every packet it relays. Prints packets per CPU-second of this process (getrusage), so other
// load on the machine changes the figure less than wall time would.
//
//   srtp-bench [packets] [80|32] [openssl|libsrtp2]      (defaults: 2000000, 80, both)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/media/srtp.h"
#include "tools/cpu_seconds.h"

using namespace edgepair::media;

namespace {

using edgepair::tools::cpu_seconds;

// Returns packets per CPU-second, or a negative number if a packet did not come back intact.
double run(SrtpBackend backend, SrtpSuite suite, long packets) {
    const std::string key = "0123456789abcdef0123456789abcd";
    auto out = SrtpStream::create(suite, key, SrtpStream::Direction::Outbound, backend);
    auto in = SrtpStream::create(suite, key, SrtpStream::Direction::Inbound, backend);
    if (!out || !in) return -1;
    uint8_t plain[172], buf[172 + kSrtpMaxTrailer];
    plain[0] = 0x80;
    plain[1] = 0;
    std::memcpy(plain + 8, "\x12\x34\x56\x78", 4);
    for (size_t i = 12; i < sizeof plain; ++i)
        plain[i] = uint8_t(i * 7);
    const double t0 = cpu_seconds();
    for (long i = 0; i < packets; ++i) {
        const uint16_t seq = uint16_t(i);
        const uint32_t ts = uint32_t(i) * 160;
        plain[2] = uint8_t(seq >> 8);
        plain[3] = uint8_t(seq);
        for (int b = 0; b < 4; ++b)
            plain[4 + b] = uint8_t(ts >> (24 - 8 * b));
        std::memcpy(buf, plain, sizeof plain);
        size_t len = sizeof plain;
        if ((*out)->protect_rtp(buf, len, sizeof buf) != SrtpStatus::Ok) return -1;
        if ((*in)->unprotect_rtp(buf, len) != SrtpStatus::Ok) return -1;
        if (len != sizeof plain || std::memcmp(buf + 12, plain + 12, len - 12) != 0) return -1;
    }
    const double t = cpu_seconds() - t0;
    return t > 0 ? double(packets) / t : 0;
}

} // namespace

int main(int argc, char** argv) {
    long packets = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 2000000;
    SrtpSuite suite = argc > 2 && std::string(argv[2]) == "32" ? SrtpSuite::AES_CM_128_HMAC_SHA1_32
                                                               : SrtpSuite::AES_CM_128_HMAC_SHA1_80;
    const std::string only = argc > 3 ? argv[3] : "";
    if (packets <= 0) {
        std::fprintf(stderr, "usage: srtp-bench [packets] [80|32] [openssl|libsrtp2]\n");
        return 2;
    }
    std::printf("%s, %ld packets of 172 bytes, protect + unprotect each\n", suite_name(suite), packets);
    double rate[2] = {};
    int i = 0;
    for (SrtpBackend b : {SrtpBackend::Libsrtp2, SrtpBackend::OpenSSL}) {
        if (!only.empty() && only != to_string(b)) {
            ++i;
            continue;
        }
        rate[i] = run(b, suite, packets);
        if (rate[i] < 0) {
            std::fprintf(stderr, "%s: a packet failed\n", to_string(b));
            return 1;
        }
        std::printf("%-9s %10.0f packets/CPU-s  (%.0f ns per packet)\n", to_string(b), rate[i],
                    1e9 / rate[i]);
        ++i;
    }
    if (only.empty()) std::printf("openssl / libsrtp2: %.2fx\n", rate[1] / rate[0]);
    return 0;
}
