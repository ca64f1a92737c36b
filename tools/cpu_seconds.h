#pragma once
// CPU time of this process (user + system), for the micro-benchmarks in tools/: a figure per CPU-second
// moves less than wall time when other load shares the machine.
#include <sys/resource.h>

namespace edgepair::tools {

inline double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

} // namespace edgepair::tools
