#include "common/xmpp/s2s.h"

#include <algorithm>

#include "common/xmpp/writer.h"

namespace edgepair::xmpp {

const char* to_string(S2sSecurity s) {
    switch (s) {
    case S2sSecurity::Required:
        return "required";
    case S2sSecurity::Optional:
        return "optional";
    case S2sSecurity::None:
        return "none";
    }
    return "?";
}

std::string s2s_stream_header(std::string_view from, std::string_view to, std::string_view id) {
    std::string out = "<?xml version='1.0'?><stream:stream xmlns='";
    out += kServerNs;
    out += "' xmlns:db='";
    out += kDialbackNs;
    out += "' xmlns:stream='";
    out += kStreamsNs;
    out += "'";
    if (!id.empty()) out += " id='" + escape_xml(id) + "'";
    if (!from.empty()) out += " from='" + escape_xml(from) + "'";
    if (!to.empty()) out += " to='" + escape_xml(to) + "'";
    out += " version='1.0'>";
    return out;
}

std::string s2s_features(bool starttls, bool required, bool dialback) {
    std::string out = "<stream:features>";
    if (starttls) {
        out += "<starttls xmlns='";
        out += kTlsNs;
        out += required ? "'><required/></starttls>" : "'/>";
    }
    if (dialback) {
        out += "<dialback xmlns='";
        out += kDialbackFeatureNs;
        out += "'/>";
    }
    out += "</stream:features>";
    return out;
}

std::string s2s_refusal(std::string_view from, std::string_view to, std::string_view id,
                        StreamErrorCondition c, std::string_view text) {
    return s2s_stream_header(from, to, id) + stream_error(c, text);
}

std::string add_starttls_feature(std::string_view raw) {
    if (raw.find(kTlsNs) != std::string_view::npos) return std::string(raw);
    size_t lt = raw.find('<');
    size_t gt = raw.find('>');
    if (lt == std::string_view::npos || gt == std::string_view::npos || gt < lt) return std::string(raw);
    size_t name_end = raw.find_first_of(" \t\r\n/>", lt + 1);
    std::string_view qname = raw.substr(lt + 1, name_end - lt - 1);
    std::string feature = "<starttls xmlns='" + std::string(kTlsNs) + "'/>";
    if (gt > 0 && raw[gt - 1] == '/') {
        // <stream:features/>: open it, add ours, close it.
        return std::string(raw.substr(0, gt - 1)) + ">" + feature + "</" + std::string(qname) + ">" +
               std::string(raw.substr(gt + 1));
    }
    return std::string(raw.substr(0, gt + 1)) + feature + std::string(raw.substr(gt + 1));
}

FramerOptions s2s_framer_options(size_t max_stanza_size) {
    FramerOptions o;
    o.max_stanza_size = max_stanza_size;
    o.content_namespace = std::string(kServerNs);
    return o;
}

std::string start_tag_attr(std::string_view raw, std::string_view name) {
    size_t lt = raw.find('<');
    if (lt == std::string_view::npos) return {};
    size_t gt = raw.find('>', lt);
    if (gt == std::string_view::npos) return {};
    std::string_view tag = raw.substr(lt, gt - lt);
    size_t pos = 0;
    // Bounded by the tag's length: every turn moves pos forward.
    while (pos < tag.size()) {
        size_t at = tag.find(name, pos);
        if (at == std::string_view::npos) return {};
        pos = at + name.size();
        // A whole attribute name: whitespace before, optional whitespace and '=' after.
        char before = at > 0 ? tag[at - 1] : '<';
        if (before != ' ' && before != '\t' && before != '\n' && before != '\r') continue;
        size_t i = pos;
        while (i < tag.size() && (tag[i] == ' ' || tag[i] == '\t' || tag[i] == '\n' || tag[i] == '\r'))
            ++i;
        if (i >= tag.size() || tag[i] != '=') continue;
        ++i;
        while (i < tag.size() && (tag[i] == ' ' || tag[i] == '\t' || tag[i] == '\n' || tag[i] == '\r'))
            ++i;
        if (i >= tag.size() || (tag[i] != '\'' && tag[i] != '"')) return {};
        char q = tag[i];
        size_t end = tag.find(q, i + 1);
        if (end == std::string_view::npos) return {};
        return std::string(tag.substr(i + 1, end - i - 1));
    }
    return {};
}

std::string normalise_domain(std::string_view d) {
    if (d.empty() || d.size() > 253) return {};
    std::string out;
    out.reserve(d.size());
    for (char c : d) {
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok) return {};
        out += c;
    }
    if (out.front() == '.' || out.back() == '.' || out.find("..") != std::string::npos) return {};
    return out;
}

namespace {
bool entry_matches(std::string_view entry, std::string_view domain) {
    if (entry.starts_with("*.")) {
        std::string_view suffix = entry.substr(1); // ".example.org"
        return domain.size() > suffix.size() && domain.ends_with(suffix);
    }
    return entry == domain;
}
} // namespace

std::string_view DomainPolicy::refusal(std::string_view domain) const {
    std::string d = normalise_domain(domain);
    if (d.empty()) return "bad_domain";
    for (const auto& e : deny)
        if (entry_matches(e, d)) return "denied";
    if (allow.empty()) return {};
    for (const auto& e : allow)
        if (entry_matches(e, d)) return {};
    return "not_allowed";
}

DialNegotiator::DialNegotiator(S2sSecurity security, size_t max_stanza_size)
    : sec_(security), fr_(s2s_framer_options(max_stanza_size)) {}

std::string DialNegotiator::starttls_request() {
    return "<starttls xmlns='" + std::string(kTlsNs) + "'/>";
}

DialStep DialNegotiator::feed(std::string_view bytes) {
    DialStep step;
    if (phase_ == Phase::Done) return step;
    fr_.feed(bytes);
    while (auto ev = fr_.next()) {
        switch (ev->type) {
        case EventType::stream_open:
            seen_ += ev->header.raw;
            break;
        case EventType::keepalive:
            seen_ += ev->raw;
            break;
        case EventType::stanza:
            if (ev->ns == kStreamsNs && ev->name == "error") {
                phase_ = Phase::Done;
                return {DialStep::Fail, {}, "stream error: " + ev->raw};
            }
            if (phase_ == Phase::Features && ev->ns == kStreamsNs && ev->name == "features") {
                const bool offered = ev->raw.find(kTlsNs) != std::string::npos;
                const bool demanded = offered && ev->raw.find("<required") != std::string::npos;
                if (offered && sec_ != S2sSecurity::None) {
                    phase_ = Phase::Proceed;
                    return {DialStep::SendStarttls, {}, {}};
                }
                phase_ = Phase::Done;
                if (sec_ == S2sSecurity::Required)
                    return {DialStep::Fail, {}, "the server does not offer STARTTLS (TLS is required)"};
                if (demanded) return {DialStep::Fail, {}, "the server requires TLS (security is none)"};
                return {DialStep::Plain, seen_ + ev->raw, {}};
            }
            if (phase_ == Phase::Proceed && ev->ns == kTlsNs && ev->name == "proceed") {
                phase_ = Phase::Done;
                return {DialStep::Handshake, {}, {}};
            }
            if (phase_ == Phase::Proceed && ev->ns == kTlsNs && ev->name == "failure") {
                phase_ = Phase::Done;
                return {DialStep::Fail, {}, "the server refused STARTTLS"};
            }
            phase_ = Phase::Done;
            return {DialStep::Fail, {}, "unexpected <" + ev->name + "/> before stream features"};
        case EventType::starttls:
        case EventType::stream_close:
            phase_ = Phase::Done;
            return {DialStep::Fail, {}, "the server closed the stream during negotiation"};
        case EventType::error:
            phase_ = Phase::Done;
            return {DialStep::Fail, {}, std::string(condition_name(ev->condition)) + ": " + ev->detail};
        }
    }
    return step;
}

} // namespace edgepair::xmpp
