#include "common/xmpp/writer.h"

namespace edgepair::xmpp {

std::string escape_xml(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        default:
            out += c;
            break;
        }
    }
    return out;
}

std::string stream_header(const ServerHeader& h) {
    std::string out = "<?xml version='1.0'?><stream:stream xmlns='";
    out += kClientNs;
    out += "' xmlns:stream='";
    out += kStreamsNs;
    out += "' id='" + escape_xml(h.id) + "' from='" + escape_xml(h.from) + "'";
    if (!h.to.empty()) out += " to='" + escape_xml(h.to) + "'";
    out += " version='1.0'";
    if (!h.lang.empty()) out += " xml:lang='" + escape_xml(h.lang) + "'";
    out += ">";
    return out;
}

std::string features_starttls_required() {
    return "<stream:features><starttls xmlns='" + std::string(kTlsNs) +
           "'><required/></starttls></stream:features>";
}

std::string starttls_proceed() {
    return "<proceed xmlns='" + std::string(kTlsNs) + "'/>";
}

std::string starttls_failure() {
    return "<failure xmlns='" + std::string(kTlsNs) + "'/></stream:stream>";
}

std::string stream_close() {
    return "</stream:stream>";
}

std::string stream_error(StreamErrorCondition c, std::string_view text, std::string_view lang) {
    std::string out = "<stream:error><";
    out += condition_name(c);
    out += " xmlns='";
    out += kStreamErrorNs;
    out += "'/>";
    if (!text.empty()) {
        out += "<text xmlns='";
        out += kStreamErrorNs;
        out += "'";
        if (!lang.empty()) out += " xml:lang='" + escape_xml(lang) + "'";
        out += ">" + escape_xml(text) + "</text>";
    }
    out += "</stream:error></stream:stream>";
    return out;
}

std::string ServerStreamWriter::open() {
    sent_ = true;
    return stream_header(header_);
}

std::string ServerStreamWriter::features() {
    std::string out = sent_ ? std::string() : open();
    return out + features_starttls_required();
}

std::string ServerStreamWriter::error(StreamErrorCondition c, std::string_view text) {
    std::string out = sent_ ? std::string() : open();
    return out + stream_error(c, text, header_.lang);
}

void ServerStreamWriter::restart(std::string new_id) {
    header_.id = std::move(new_id);
    sent_ = false;
}

} // namespace edgepair::xmpp
