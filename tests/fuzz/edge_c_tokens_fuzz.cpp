// libFuzzer target: the bearer values a client on the internet puts in front of edge-c's token parsers
// (edge-c/edge_token.h, edge-c/oauth_validator.h), and the key set a key endpoint answers
// (edge-c/oauth_keys.h: key_fetch_answer, which parses it with cluster_from_jwks). Invariants beyond "no
// crash": no input is accepted as an OAuth token (the fuzzer cannot sign with the RSA key, so an accepted
// token would mean a bypass), and an edge token opens only when it is one the sealer issued (the fuzzer does
// not know the key either).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "edge-c/edge_token.h"
#include "edge-c/oauth_keys.h"
#include "edge-c/oauth_validator.h"

using namespace edgepair;

namespace {

// A fixed key set: an RSA public key and an oct key, as an operator's JWKS file holds them. Built once (key
// generation per input would drown the parser in RSA work); read-only afterwards.
const edge_c::OAuthValidator& validator() {
    static const std::unique_ptr<edge_c::OAuthValidator> v = [] {
        config::OAuthClusterConfig cc;
        cc.name = "c1";
        cc.issuer = "https://cucm1/ssosp";
        const char* jwks =
            R"({"keys":[{"kty":"RSA","kid":"sig-1","e":"AQAB","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"},{"kty":"oct","kid":"enc-1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr0"}]})";
        auto cl = edge_c::cluster_from_jwks(cc, jwks);
        if (!cl) std::abort();
        std::vector<edge_c::OAuthCluster> v;
        v.push_back(std::move(*cl));
        return std::make_unique<edge_c::OAuthValidator>(std::move(v), 30);
    }();
    return *v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view v(reinterpret_cast<const char*>(data), size);
    auto r = validator().validate(v, "default", 1'800'000'000);
    if (std::holds_alternative<edge_c::OAuthIdentity>(r)) std::abort();

    const edge_c::EdgeTokenSealer sealer(std::string(32, 'k'));
    static const edge_c::CredentialStamps seen;
    auto e = sealer.open(v, "default", 1'800'000'000'000, 3'600'000, seen);
    if (std::holds_alternative<edge_c::EdgeTokenClaims>(e)) std::abort();
    (void)edge_c::edge_token_from_cookie(v);
    (void)edge_c::cookie_without_edge_token(v);

    // A key endpoint's answer (inside the network, but still input): any JSON, any key, never a crash.
    static const config::OAuthClusterConfig kc = [] {
        config::OAuthClusterConfig c;
        c.name = "c1";
        c.issuer = "https://cucm1/ssosp";
        c.keys_fetch.url = "https://cucm1/keys";
        return c;
    }();
    if (!v.empty() && v.front() == '{') (void)edge_c::key_fetch_answer(kc, 200, v);
    return 0;
}
