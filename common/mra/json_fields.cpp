#include "common/mra/json_fields.h"

#include <nlohmann/json.hpp>

namespace edgepair::mra {

namespace {
// The wrong-type error quotes the JSON type, not the value: a peer's value may be megabytes long.
Error wrong_type(const char* key, const nlohmann::json& v, const char* want) {
    return make_error(std::string("field \"") + key + "\" must be " + want + ", not " + v.type_name());
}
} // namespace

Result<uint64_t> json_uint(const nlohmann::json& obj, const char* key, uint64_t fallback, uint64_t max) {
    if (!obj.is_object()) return wrong_type(key, obj, "in an object");
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    // nlohmann stores every non-negative integer it parses as unsigned, so a signed integer is negative.
    if (!it->is_number_unsigned()) return wrong_type(key, *it, "a non-negative integer");
    auto v = it->get<uint64_t>();
    if (v > max)
        return make_error(std::string("field \"") + key + "\" is " + std::to_string(v) +
                          ", above its maximum " + std::to_string(max));
    return v;
}

Result<std::string> json_string(const nlohmann::json& obj, const char* key, std::string fallback) {
    if (!obj.is_object()) return wrong_type(key, obj, "in an object");
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    if (!it->is_string()) return wrong_type(key, *it, "a string");
    return it->get<std::string>();
}

Result<bool> json_bool(const nlohmann::json& obj, const char* key, bool fallback) {
    if (!obj.is_object()) return wrong_type(key, obj, "in an object");
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    if (!it->is_boolean()) return wrong_type(key, *it, "true or false");
    return it->get<bool>();
}

} // namespace edgepair::mra
