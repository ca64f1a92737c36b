#include "common/cluster/key_scan.h"

#include <memory>
#include <vector>

namespace edgepair::cluster {

namespace {

struct ScanState {
    RedisConn* conn;
    KeyScan s;
    std::string cursor = "0";
    unsigned pages = 0;
};

void page(const std::shared_ptr<ScanState>& st) {
    if (st->s.wanted && !st->s.wanted()) return;
    st->conn->command({"SCAN", st->cursor, "MATCH", st->s.pattern, "COUNT", std::to_string(st->s.count)},
                      [st](const Reply* r) {
                          if (!r || r->is_error() || (st->s.wanted && !st->s.wanted())) return;
                          if (r->type != Reply::Type::Array || r->elements.size() != 2) return;
                          st->cursor = r->elements[0].str;
                          auto keys = std::make_shared<std::vector<std::string>>();
                          for (const auto& k : r->elements[1].elements)
                              keys->push_back(k.str);
                          auto next = [st] {
                              const bool last = st->cursor == "0";
                              if (last || ++st->pages >= st->s.max_pages) {
                                  if (st->s.done) st->s.done(!last);
                                  return;
                              }
                              page(st);
                          };
                          if (keys->empty()) return next();
                          std::vector<std::string> argv{"MGET"};
                          argv.insert(argv.end(), keys->begin(), keys->end());
                          st->conn->command(argv, [st, keys, next](const Reply* v) {
                              if (!v || v->is_error() || (st->s.wanted && !st->s.wanted())) return;
                              for (size_t i = 0; i < keys->size() && i < v->elements.size(); ++i)
                                  if (v->elements[i].type == Reply::Type::String && st->s.each)
                                      st->s.each((*keys)[i], v->elements[i].str);
                              next();
                          });
                      });
}

} // namespace

void scan_keys(RedisConn& conn, KeyScan scan) {
    page(std::make_shared<ScanState>(ScanState{&conn, std::move(scan)}));
}

} // namespace edgepair::cluster
