#pragma once
// Per-user MRA access policy (issue #15 item 5; seed 004 "MRA Policies"; shared/MRA-PROTOCOL.md "Tokens and
// access policy"): Unified CM's user profile says, separately for Jabber desktop and Jabber mobile clients,
// "No Service", "IM & Presence only" or "IM & Presence, Voice and Video calls", and whether MRA is enabled at
// all. edge-c reads it over AXL, caches it per worker, and every service asks here before it lets a client
// on.
//
// Confirmed (AXL schema as public AXL clients generate it): UserProfileProvision has `enableMra`,
// `mraPolicy_Desktop` and `mraPolicy_Mobile`, the last two of enum XMRAPolicy with exactly the three strings
// above; getUserProfileProvision exists since AXL 10.5; the end user names its profile in `userProfile` and
// its devices in `associatedDevices/device`. Assumed, each in one place in mra_access_policy.cpp:
// - a user without a profile gets "IM & Presence, Voice and Video calls" (Unified CM's default profile
//   values; kNoProfilePolicy);
// - which client is desktop or mobile (device_class_of_*): the Jabber device types the Unified CM guides
//   name (CSF desktop; TCT, BOT, TAB mobile) for SIP, the User-Agent for HTTP; anything else is Unknown
//   and gets mra_policy.unknown_device_class.
// The OAuth token may carry the policy on real systems; its claim is not public, so the token is not read
// for it (docs/SECURITY.md, "MRA access policy").
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <pugixml.hpp>

#include "common/config/edge_c_config.h"
#include "common/core/result.h"
#include "common/xmpp/framer.h"

namespace edgepair::edge_c {

class CWorker;

enum class MraPolicy { NoService, ImOnly, ImVoiceVideo };
// Metric label: "no_service", "im_only", "im_voice_video".
const char* policy_label(MraPolicy p);
// The AXL XMRAPolicy strings (case-insensitive); nullopt for anything else.
std::optional<MraPolicy> parse_mra_policy(std::string_view axl);

enum class MraService { Http, Xmpp, Sip };
const char* service_label(MraService s);
// HTTP and XMPP need IM & Presence; SIP (registration and calls) needs voice and video.
bool policy_allows(MraPolicy p, MraService s);

enum class DeviceClass { Desktop, Mobile, Unknown };
const char* device_class_label(DeviceClass c);
// From the device name the client registers (Contact's +u.sip!devicename.ccm.cisco.com).
DeviceClass device_class_of_sip_device(std::string_view device_name);
// From an HTTP User-Agent (and the XMPP resource, which Jabber names after its platform).
DeviceClass device_class_of_user_agent(std::string_view ua);

struct UserAccess {
    std::string user;
    bool found = false;      // Unified CM knows the user
    bool mra_enabled = true; // the profile's enableMra
    MraPolicy desktop = MraPolicy::ImVoiceVideo;
    MraPolicy mobile = MraPolicy::ImVoiceVideo;
    std::vector<std::string> devices; // associatedDevices, as AXL spells them
    bool owns_device(std::string_view device) const;
};
// The policy that applies to a client of class `c` (an unknown user or MRA disabled: No service).
MraPolicy effective_policy(const UserAccess& a, DeviceClass c, config::UnknownDeviceClass unknown);

// ---- AXL answers (pure; fuzzed by fuzz_mra_policy) ----
struct AxlUser {
    std::string userid;
    std::string profile; // userProfile; empty when none
    std::vector<std::string> devices;
};
// getUser's <return>: nullopt when it holds no <user>.
std::optional<AxlUser> parse_axl_user(pugi::xml_node ret);
struct AxlProfile {
    bool enable_mra = true;
    MraPolicy desktop = MraPolicy::ImVoiceVideo;
    MraPolicy mobile = MraPolicy::ImVoiceVideo;
};
// getUserProfileProvision's <return>: nullopt without <userProfileProvision> or with a policy value that is
// not one of the three (an unknown value must not silently grant more).
std::optional<AxlProfile> parse_user_profile(pugi::xml_node ret);
// Both bodies, as a SOAP reply, into a UserAccess (used by the directory and the fuzz target).
Result<UserAccess> access_from_axl(std::string_view user, int user_status, std::string_view user_body,
                                   std::optional<std::pair<int, std::string_view>> profile_reply);

// One per worker (no locks). Asks the deployment's Unified CM publisher (discovery.unified_cm, its AXL
// account) with getUser then getUserProfileProvision, and remembers the answer for mra_policy.cache_ttl;
// concurrent look-ups of one user share one AXL exchange.
class MraAccessDirectory {
  public:
    using Callback = std::function<void(Result<UserAccess>)>;
    explicit MraAccessDirectory(CWorker& w);
    ~MraAccessDirectory();
    // `cb` may run before lookup() returns (a cached answer) or later on this worker's loop.
    void lookup(std::string_view user, std::string_view deployment, Callback cb);
    // Counts a refusal: edgepair_mra_policy_refused_total{service,policy}.
    void count_refusal(MraService s, MraPolicy p);

  private:
    void start(const std::string& key, std::string user, std::string deployment);
    void finish(const std::string& key, Result<UserAccess> r);

    CWorker& w_;
    struct Entry {
        UserAccess access;
        uint64_t expires_ms = 0;
    };
    std::unordered_map<std::string, Entry> cache_;
    std::unordered_map<std::string, std::vector<Callback>> pending_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::edge_c
