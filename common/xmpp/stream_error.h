#pragma once
// RFC 6120 4.9.3 stream error conditions.
#include <cstdint>
#include <string_view>

namespace edgepair::xmpp {

enum class StreamErrorCondition : uint8_t {
    bad_format,
    bad_namespace_prefix,
    conflict,
    connection_timeout,
    host_gone,
    host_unknown,
    improper_addressing,
    internal_server_error,
    invalid_from,
    invalid_namespace,
    invalid_xml,
    not_authorized,
    not_well_formed,
    policy_violation,
    remote_connection_failed,
    reset,
    resource_constraint,
    restricted_xml,
    see_other_host,
    system_shutdown,
    undefined_condition,
    unsupported_encoding,
    unsupported_feature,
    unsupported_stanza_type,
    unsupported_version,
};

// The element name ("not-well-formed"); also the stable metric label.
std::string_view condition_name(StreamErrorCondition c);

inline constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";
inline constexpr std::string_view kStreamErrorNs = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view kClientNs = "jabber:client";

} // namespace edgepair::xmpp
