#pragma once
// What the MRA proxy (edge-c, with edge-e in front) lets a client put into a message that reaches Unified
// CM (issue #14 items 8-10). Pure decisions on a parsed message, so they are unit-tested apart from the
// connections that carry it.
#include "common/sip/message.h"
#include "common/sip/uri.h"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::sip {

// The Proxy-Require option tags the pair implements: none. A client that requires a proxy extension
// gets 420 Bad Extension listing them in Unsupported (RFC 3261 16.3 step 5 / 20.29).
const std::vector<std::string_view>& mra_supported_proxy_extensions();

// The distinct Contact URIs one client flow has used, so a rewritten Contact (the flow's token plus an
// "epc" index) can be turned back into the URI the client expects on requests and REGISTER responses.
// Bounded: a flow that keeps inventing Contacts is refused instead of growing the table, and a Contact is
// never passed through unrewritten.
class ContactTable {
  public:
    static constexpr size_t kDefaultCapacity = 16;
    explicit ContactTable(size_t capacity = kDefaultCapacity) : cap_(capacity) {}

    // The index of `uri`, added when new; nullopt once the table is full and `uri` is not in it.
    std::optional<size_t> index_of(const std::string& uri);
    // The URI at `epc` (an "epc" parameter value); nullptr when it is not a valid index.
    const std::string* lookup(std::string_view epc) const;
    bool empty() const { return uris_.empty(); }
    size_t size() const { return uris_.size(); }

  private:
    size_t cap_;
    std::vector<std::string> uris_;
};

// The Contact edge-c writes for a client's Contact (REGISTER and dialog-forming requests and responses).
// Confirmed (Cisco TechNote 217244, a Unified CM registration dump): Expressway-C keeps the user part (the
// Jabber device's UUID) and records the client's address in an `orig-hostport=<ip:port>` URI parameter:
//   <sip:<device uuid>@<Expressway-C>:5060;transport=tcp;orig-hostport=<client ip:port>>
// Assumption: how Expressway names the flow in that URI is not public; edgepair carries its flow token in
// the `ep-flow` parameter and the index of the client's Contact in `epc`. The older edgepair form (token
// as the user part, the client's user part lost) is kept behind this one switch.
enum class ContactForm : uint8_t { expressway, token_user };
inline constexpr ContactForm kContactForm = ContactForm::expressway;
inline constexpr std::string_view kFlowParam = "ep-flow";
inline constexpr std::string_view kOrigHostportParam = "orig-hostport";

// `base` is edge-c's own URI (scheme, host, port, transport) without a user part; `client_hostport` the
// client's "ip:port" as edge-e saw it.
Uri mra_contact(const Uri& client_contact, Uri base, std::string_view flow_token, size_t epc,
                std::string_view client_hostport);
// The flow token a URI edge-c wrote carries, wherever kContactForm (or a Record-Route / Path, which
// always carry it as the user part) put it; nullopt when it carries none.
std::optional<std::string_view> mra_flow_token(const Uri& u);

enum class ContactVerdict : uint8_t {
    ok,        // every Contact URI ("*" aside) rewritten
    malformed, // answer 400
    too_many,  // the flow's table is full: answer 403, nothing is forwarded
};

// Rewrites every Contact URI of `m` ("*" excepted) to `make(index, original)`, where index comes from
// `table`.
// On any verdict but ok the message must not be forwarded (it may be half rewritten).
ContactVerdict rewrite_client_contacts(Message& m, ContactTable& table,
                                       const std::function<Uri(size_t, const Uri&)>& make);

struct RouteVerdict {
    bool ok = true;
    std::string foreign; // the first Route URI refused, for the log
    size_t popped = 0;   // Route elements naming the edge, removed from the top
};

// A request from a client may only route through the edge and Unified CM: the topmost Route elements that
// name the edge (`is_edge`: our Record-Route / Path URIs, edge-e's own name) are removed (RFC 3261 16.4),
// then every remaining element must name a Unified CM node (`is_node`) or the edge again (the other leg of
// a call between two MRA clients), as the route sets Unified CM records do. `is_edge` must check the host
// and port too, not only a token in the user part: a client can copy a token it saw into a URI of its own.
// Otherwise the request is refused with 403 (ok false), so a client can never make the registrar forward to
// an internal host of its choosing. A malformed Route is refused the same way.
RouteVerdict apply_client_route_policy(Message& m, const std::function<bool(const Uri&)>& is_edge,
                                       const std::function<bool(const Uri&)>& is_node);

} // namespace edgepair::sip
