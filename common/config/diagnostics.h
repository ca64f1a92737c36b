#pragma once
// Configuration diagnostics: every problem found while loading or validating a config file is collected
// (never thrown, never stopped at the first) so `--check` shows the operator the whole list at once.
// One printed form everywhere: `file:line: key.path: message` (line omitted when unknown).
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::config {

struct Diagnostic {
    std::string file; // as given by the operator (or the referenced file, e.g. the auth database)
    int line = 0;     // 1-based; 0 = no line
    std::string key;  // dotted key path, e.g. "tls.certificates[1].key"; may be empty
    std::string message;
    bool warning = false;

    // `file:line: key: message`, with "warning: " before the message for warnings.
    std::string str() const;
};

struct Diagnostics {
    std::vector<Diagnostic> errors;
    std::vector<Diagnostic> warnings;

    bool ok() const { return errors.empty(); }
    void error(std::string file, int line, std::string key, std::string message);
    void warn(std::string file, int line, std::string key, std::string message);
    // Orders each list by file then line (stable), the order an operator reads the file in.
    void sort();
    // One diagnostic per line, no trailing newline.
    std::string errors_text() const;
    std::string warnings_text() const;
};

// Where each key of a loaded config came from, so the validation pass (which runs on typed structs, after
// parsing) can still point at the right line.
struct SourceMap {
    std::string file; // path as given
    std::string dir;  // directory relative paths are resolved against
    std::map<std::string, int, std::less<>> lines;

    // Line of `key`, or of its closest recorded parent ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a"); 0 if none.
    int line_of(std::string_view key) const;
};

} // namespace edgepair::config
