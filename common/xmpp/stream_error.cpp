#include "common/xmpp/stream_error.h"

namespace edgepair::xmpp {

std::string_view condition_name(StreamErrorCondition c) {
    switch (c) {
    case StreamErrorCondition::bad_format:
        return "bad-format";
    case StreamErrorCondition::bad_namespace_prefix:
        return "bad-namespace-prefix";
    case StreamErrorCondition::conflict:
        return "conflict";
    case StreamErrorCondition::connection_timeout:
        return "connection-timeout";
    case StreamErrorCondition::host_gone:
        return "host-gone";
    case StreamErrorCondition::host_unknown:
        return "host-unknown";
    case StreamErrorCondition::improper_addressing:
        return "improper-addressing";
    case StreamErrorCondition::internal_server_error:
        return "internal-server-error";
    case StreamErrorCondition::invalid_from:
        return "invalid-from";
    case StreamErrorCondition::invalid_namespace:
        return "invalid-namespace";
    case StreamErrorCondition::invalid_xml:
        return "invalid-xml";
    case StreamErrorCondition::not_authorized:
        return "not-authorized";
    case StreamErrorCondition::not_well_formed:
        return "not-well-formed";
    case StreamErrorCondition::policy_violation:
        return "policy-violation";
    case StreamErrorCondition::remote_connection_failed:
        return "remote-connection-failed";
    case StreamErrorCondition::reset:
        return "reset";
    case StreamErrorCondition::resource_constraint:
        return "resource-constraint";
    case StreamErrorCondition::restricted_xml:
        return "restricted-xml";
    case StreamErrorCondition::see_other_host:
        return "see-other-host";
    case StreamErrorCondition::system_shutdown:
        return "system-shutdown";
    case StreamErrorCondition::undefined_condition:
        return "undefined-condition";
    case StreamErrorCondition::unsupported_encoding:
        return "unsupported-encoding";
    case StreamErrorCondition::unsupported_feature:
        return "unsupported-feature";
    case StreamErrorCondition::unsupported_stanza_type:
        return "unsupported-stanza-type";
    case StreamErrorCondition::unsupported_version:
        return "unsupported-version";
    }
    return "undefined-condition";
}

} // namespace edgepair::xmpp
