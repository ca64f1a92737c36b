#pragma once
// A small RFC 4180 reader for the allow-list rules and tests files: quoted fields, doubled quotes inside
// them, line breaks inside quotes, CRLF / LF / CR record ends. Two leniencies that the guide's own example
// needs or that spreadsheet exports produce: blanks before an opening quote or after a closing one are
// ignored (the guide's rules example has `GET,, "First Rule"`), blank lines are skipped, and a UTF-8 BOM is
// dropped.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/result.h"

namespace edgepair::mra {

struct CsvRecord {
    std::size_t line = 0; // 1-based line on which the record starts
    std::vector<std::string> fields;
};

// Errors read "line L, column C: message" (C is the 1-based byte column).
Result<std::vector<CsvRecord>> parse_csv(std::string_view text);

// The field as it must be written for parse_csv to read it back unchanged.
std::string csv_field(std::string_view value);

} // namespace edgepair::mra
