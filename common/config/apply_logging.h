#pragma once
#include "common/config/types.h"

namespace edgepair::config {
// Hands the `log:` section to the process-wide logger (at start and on every reload).
void apply_logging(const LogConfig& log);
} // namespace edgepair::config
