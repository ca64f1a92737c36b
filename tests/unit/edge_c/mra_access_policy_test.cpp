#include <catch2/catch.hpp>

#include <string>

#include "edge-c/mra_access_policy.h"

using namespace edgepair;
using namespace edgepair::edge_c;

namespace {

std::string envelope(const std::string& op, const std::string& inner) {
    return "<?xml version=\"1.0\"?><soapenv:Envelope "
           "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
           "<soapenv:Body><ns:" +
           op + "Response xmlns:ns=\"http://www.cisco.com/AXL/API/14.0\"><return>" + inner +
           "</return></ns:" + op + "Response></soapenv:Body></soapenv:Envelope>";
}

std::string user_reply(const std::string& profile) {
    return envelope("getUser",
                    "<user uuid=\"{X}\"><userid>ivy</userid><associatedDevices><device>CSFIVY</device>"
                    "<device>TCTIVY</device></associatedDevices><userProfile>" +
                        profile + "</userProfile></user>");
}

std::string profile_reply(const std::string& desktop, const std::string& mobile,
                          const std::string& mra = "true") {
    return envelope("getUserProfileProvision", "<userProfileProvision><name>p</name><enableMra>" + mra +
                                                   "</enableMra><mraPolicy_Desktop>" + desktop +
                                                   "</mraPolicy_Desktop><mraPolicy_Mobile>" + mobile +
                                                   "</mraPolicy_Mobile></userProfileProvision>");
}

} // namespace

TEST_CASE("AXL MRA policy strings and what each allows") {
    CHECK(parse_mra_policy("No Service") == MraPolicy::NoService);
    CHECK(parse_mra_policy("IM & Presence only") == MraPolicy::ImOnly);
    CHECK(parse_mra_policy("IM & Presence, Voice and Video calls") == MraPolicy::ImVoiceVideo);
    CHECK_FALSE(parse_mra_policy("Voice only"));
    CHECK_FALSE(policy_allows(MraPolicy::NoService, MraService::Http));
    CHECK_FALSE(policy_allows(MraPolicy::NoService, MraService::Xmpp));
    CHECK(policy_allows(MraPolicy::ImOnly, MraService::Http));
    CHECK(policy_allows(MraPolicy::ImOnly, MraService::Xmpp));
    CHECK_FALSE(policy_allows(MraPolicy::ImOnly, MraService::Sip));
    CHECK(policy_allows(MraPolicy::ImVoiceVideo, MraService::Sip));
}

TEST_CASE("device class rules") {
    CHECK(device_class_of_sip_device("CSFALICE") == DeviceClass::Desktop);
    CHECK(device_class_of_sip_device("tctalice") == DeviceClass::Mobile);
    CHECK(device_class_of_sip_device("BOTALICE") == DeviceClass::Mobile);
    CHECK(device_class_of_sip_device("TABALICE") == DeviceClass::Mobile);
    CHECK(device_class_of_sip_device("SEP001122334455") == DeviceClass::Unknown);
    CHECK(device_class_of_sip_device("CSF") == DeviceClass::Unknown);
    CHECK(device_class_of_user_agent("Jabber iPhone") == DeviceClass::Mobile);
    CHECK(device_class_of_user_agent("Mozilla/5.0 (Windows NT 10.0)") == DeviceClass::Desktop);
    CHECK(device_class_of_user_agent("curl/8") == DeviceClass::Unknown);
}

TEST_CASE("effective policy per class; unknown class by configuration") {
    UserAccess a;
    a.found = true;
    a.desktop = MraPolicy::ImVoiceVideo;
    a.mobile = MraPolicy::ImOnly;
    using U = config::UnknownDeviceClass;
    CHECK(effective_policy(a, DeviceClass::Desktop, U::Strictest) == MraPolicy::ImVoiceVideo);
    CHECK(effective_policy(a, DeviceClass::Mobile, U::Strictest) == MraPolicy::ImOnly);
    CHECK(effective_policy(a, DeviceClass::Unknown, U::Strictest) == MraPolicy::ImOnly);
    CHECK(effective_policy(a, DeviceClass::Unknown, U::Desktop) == MraPolicy::ImVoiceVideo);
    a.mra_enabled = false;
    CHECK(effective_policy(a, DeviceClass::Desktop, U::Desktop) == MraPolicy::NoService);
    a.mra_enabled = true;
    a.found = false;
    CHECK(effective_policy(a, DeviceClass::Desktop, U::Desktop) == MraPolicy::NoService);
}

TEST_CASE("AXL answers into a user's access") {
    std::string pr = profile_reply("IM &amp; Presence only", "No Service");
    auto r = access_from_axl("ivy", 200, user_reply("p"), std::pair<int, std::string_view>{200, pr});
    REQUIRE(r);
    CHECK(r->found);
    CHECK(r->desktop == MraPolicy::ImOnly);
    CHECK(r->mobile == MraPolicy::NoService);
    CHECK(r->owns_device("csfivy"));
    CHECK_FALSE(r->owns_device("CSFBOB"));

    // An unknown value must not grant anything: the look-up fails instead.
    std::string odd = profile_reply("Everything", "No Service");
    CHECK_FALSE(access_from_axl("ivy", 200, user_reply("p"), std::pair<int, std::string_view>{200, odd}));

    // No profile: Unified CM's defaults.
    auto np = access_from_axl("ivy", 200, user_reply(""), std::nullopt);
    REQUIRE(np);
    CHECK(np->desktop == MraPolicy::ImVoiceVideo);

    // An unknown user is a found=false answer, not an error.
    std::string fault =
        "<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
        "envelope/\"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>"
        "Item not valid: The specified User was not found</faultstring><detail><axlError><axlcode>"
        "5007</axlcode><axlmessage>x</axlmessage></axlError></detail></soapenv:Fault></soapenv:Body>"
        "</soapenv:Envelope>";
    auto nf = access_from_axl("zed", 500, fault, std::nullopt);
    REQUIRE(nf);
    CHECK_FALSE(nf->found);
    CHECK_FALSE(access_from_axl("ivy", 200, "not xml", std::nullopt));
}
