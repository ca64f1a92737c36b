#pragma once
// Reads of one field of a JSON object that came from a peer (the link's control messages, the snapshot
// document edge-c pushes, edge-c's state file). nlohmann's value() and get<>() are unfit for that: value()
// throws type_error on a field of the wrong JSON type (uncaught on a link callback, the edge dies), and an
// arithmetic get<>() converts silently (70000 -> uint16_t 4464, 4294967296 -> unsigned 0) or with undefined
// behaviour (1e30 -> uint16_t). These never throw: an absent field gives the fallback, a present one of the
// wrong type or out of range is an error that names the field.
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/core/result.h"

namespace edgepair::mra {

// A JSON integer in [0, max]; a float (even 8443.0), a negative number or a string is an error.
Result<uint64_t> json_uint(const nlohmann::json& obj, const char* key, uint64_t fallback,
                           uint64_t max = std::numeric_limits<uint64_t>::max());
Result<std::string> json_string(const nlohmann::json& obj, const char* key, std::string fallback = {});
Result<bool> json_bool(const nlohmann::json& obj, const char* key, bool fallback);

template <std::unsigned_integral T>
Result<T> json_uint_as(const nlohmann::json& obj, const char* key, T fallback) {
    auto v = json_uint(obj, key, fallback, std::numeric_limits<T>::max());
    if (!v) return v.error();
    return T(*v);
}

} // namespace edgepair::mra
