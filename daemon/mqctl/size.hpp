// Byte sizes on mqctl's command line and in its output: mqd's own parser and formatters (daemon/mqd/units.hpp),
// so a size that works in mqd.conf works here too.
#pragma once

#include "units.hpp"

namespace mqctl {

using mqd::format_size;
using mqd::format_size_approx;
using mqd::parse_size;

}  // namespace mqctl
