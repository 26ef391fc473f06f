// Latency summaries from every recorded sample (no bucketing: the samples are sorted, so each percentile is exact,
// nearest-rank), printed in the HdrHistogram spirit: p50, p90, p99, p99.9, p99.99 and max, in nanoseconds.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mqbench {

struct Summary {
  std::size_t samples = 0;
  std::uint64_t min = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
  double mean = 0;
};

// Nearest-rank percentile of sorted samples; q in (0, 1].
inline std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// Sorts `samples` in place.
inline Summary summarize(std::vector<std::uint64_t>& samples) {
  Summary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.samples = samples.size();
  s.min = samples.front();
  s.max = samples.back();
  s.p50 = percentile(samples, 0.50);
  s.p90 = percentile(samples, 0.90);
  s.p99 = percentile(samples, 0.99);
  s.p999 = percentile(samples, 0.999);
  s.p9999 = percentile(samples, 0.9999);
  long double sum = 0;
  for (const auto v : samples) sum += v;
  s.mean = static_cast<double>(sum / samples.size());
  return s;
}

}  // namespace mqbench
