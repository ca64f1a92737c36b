#pragma once
// Reading back what Redis holds under a pattern, as both ends of a cluster do after every (re)connect
// (edge-e's bans and lifts, edge-c's password stamps): SCAN in pages, each page's values with one MGET.
//
// Nothing blocks: every step is a command on the given connection's loop. Bounded: at most max_pages pages
// (a huge or hostile keyspace cannot keep the loop busy for ever). A missing or error reply, or `wanted()`
// turning false (the caller reconnected meanwhile and started a new scan), abandons the scan without calling
// `done`: the next connection scans again.
#include <functional>
#include <string>

#include "common/cluster/redis_conn.h"

namespace edgepair::cluster {

struct KeyScan {
    std::string pattern; // MATCH, e.g. "edgepair:<name>:stamp:*"
    unsigned max_pages = 10'000;
    unsigned count = 500;         // the SCAN COUNT hint, and so about the keys per MGET
    std::function<bool()> wanted; // checked before every step
    // Each key with its value (a key that expired between SCAN and MGET is skipped).
    std::function<void(const std::string& key, const std::string& value)> each;
    // After the last page, or when max_pages was reached (cut_short).
    std::function<void(bool cut_short)> done;
};

// The connection must outlive the scan or abandon its callbacks when destroyed (RedisConn does).
void scan_keys(RedisConn& conn, KeyScan scan);

} // namespace edgepair::cluster
