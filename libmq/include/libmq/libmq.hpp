// libmq: shared-memory message topics for processes on one host. The one header to include.
// Embedded use: Topic::create / Topic::open, then Producer and Consumer. See README.md and libmq/doc/design.md.
#pragma once

#include "libmq/client.hpp"     // IWYU pragma: export
#include "libmq/consumer.hpp"   // IWYU pragma: export
#include "libmq/error.hpp"      // IWYU pragma: export
#include "libmq/options.hpp"    // IWYU pragma: export
#include "libmq/producer.hpp"   // IWYU pragma: export
#include "libmq/record.hpp"     // IWYU pragma: export
#include "libmq/topic.hpp"      // IWYU pragma: export
