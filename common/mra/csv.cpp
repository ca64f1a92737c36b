#include "common/mra/csv.h"

namespace edgepair::mra {

namespace {

class Reader {
  public:
    explicit Reader(std::string_view t) : t_(t) {
        if (t_.substr(0, 3) == "\xEF\xBB\xBF") {
            pos_ = 3;
        }
    }

    Result<std::vector<CsvRecord>> run() {
        std::vector<CsvRecord> out;
        while (pos_ < t_.size()) {
            CsvRecord rec;
            rec.line = line_;
            bool blank = true;
            for (;;) {
                std::string field;
                bool quoted = false;
                if (auto r = read_field(field, quoted); !r) {
                    return r.error();
                }
                blank = blank && !quoted && is_blank(field);
                rec.fields.push_back(std::move(field));
                if (pos_ < t_.size() && t_[pos_] == ',') {
                    advance();
                    blank = false;
                    continue;
                }
                break; // end of line or of input
            }
            eat_line_end();
            if (!blank) {
                out.push_back(std::move(rec));
            }
        }
        return out;
    }

  private:
    static bool is_blank(std::string_view s) {
        for (char c : s) {
            if (c != ' ' && c != '\t') {
                return false;
            }
        }
        return true;
    }

    bool at_line_end() const { return pos_ >= t_.size() || t_[pos_] == '\n' || t_[pos_] == '\r'; }

    void advance() {
        ++pos_;
        ++col_;
    }

    void eat_line_end() {
        if (pos_ >= t_.size()) {
            return;
        }
        if (t_[pos_] == '\r') {
            ++pos_;
            if (pos_ < t_.size() && t_[pos_] == '\n') {
                ++pos_;
            }
        } else if (t_[pos_] == '\n') {
            ++pos_;
        }
        ++line_;
        col_ = 1;
    }

    Error error_at(std::size_t line, std::size_t col, std::string_view msg) const {
        return make_error("line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
                          std::string(msg));
    }

    Result<void> read_field(std::string& out, bool& quoted) {
        // Look past blanks for an opening quote; if there is none the blanks belong to the unquoted value.
        std::size_t p = pos_;
        while (p < t_.size() && (t_[p] == ' ' || t_[p] == '\t')) {
            ++p;
        }
        if (p < t_.size() && t_[p] == '"') {
            col_ += p - pos_;
            pos_ = p;
            quoted = true;
            return read_quoted(out);
        }
        while (!at_line_end() && t_[pos_] != ',') {
            if (t_[pos_] == '"') {
                return error_at(line_, col_,
                                "quote inside an unquoted field (enclose the field in quotes and "
                                "double the quote)");
            }
            out.push_back(t_[pos_]);
            advance();
        }
        return {};
    }

    Result<void> read_quoted(std::string& out) {
        const std::size_t open_line = line_, open_col = col_;
        advance(); // the opening quote
        for (;;) {
            if (pos_ >= t_.size()) {
                return error_at(open_line, open_col, "quoted field is not closed");
            }
            const char c = t_[pos_];
            if (c == '"') {
                if (pos_ + 1 < t_.size() && t_[pos_ + 1] == '"') {
                    out.push_back('"');
                    advance();
                    advance();
                    continue;
                }
                advance(); // the closing quote
                break;
            }
            if (c == '\r' || c == '\n') {
                // A line break inside quotes is data; keep it as LF so CRLF and LF files read alike.
                eat_line_end();
                out.push_back('\n');
                continue;
            }
            out.push_back(c);
            advance();
        }
        while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t')) {
            advance();
        }
        if (!at_line_end() && t_[pos_] != ',') {
            return error_at(line_, col_, "unexpected character after a closing quote");
        }
        return {};
    }

    std::string_view t_;
    std::size_t pos_ = 0;
    std::size_t line_ = 1;
    std::size_t col_ = 1;
};

} // namespace

Result<std::vector<CsvRecord>> parse_csv(std::string_view text) {
    return Reader(text).run();
}

std::string csv_field(std::string_view value) {
    // Leading blanks would be taken for the blanks the reader skips before a quote; a leading BOM would be
    // dropped if the field opened the file.
    bool needs = !value.empty() &&
                 (value.front() == ' ' || value.front() == '\t' || value.starts_with("\xEF\xBB\xBF"));
    for (char c : value) {
        if (c == ',' || c == '"' || c == '\n' || c == '\r' || c == ' ') {
            needs = true;
        }
    }
    if (!needs) {
        return std::string(value);
    }
    std::string out = "\"";
    for (char c : value) {
        if (c == '"') {
            out.push_back('"');
        }
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

} // namespace edgepair::mra
