// The seed-corpus tool of a fuzz target, built from the same source without libFuzzer:
//   fuzz_X_seeds SEED_DIR [WORK_DIR...]
// empties SEED_DIR and each WORK_DIR, writes the target's seeds() into SEED_DIR as seed-N, and replays every seed
// through LLVMFuzzerTestOneInput (a regression run that needs no fuzzer). ctest runs it before the bounded fuzz run.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "fuzz_input.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR [WORK_DIR...]\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    fs::remove_all(argv[i], ec);
    if (!fs::create_directories(argv[i], ec) || ec) {
      std::fprintf(stderr, "cannot create %s: %s\n", argv[i], ec.message().c_str());
      return 1;
    }
  }
  const auto seeds = mqfuzz::seeds();
  for (std::size_t n = 0; n < seeds.size(); ++n) {
    const fs::path file = fs::path(argv[1]) / ("seed-" + std::to_string(n));
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(seeds[n].data()), static_cast<std::streamsize>(seeds[n].size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", file.c_str());
      return 1;
    }
    LLVMFuzzerTestOneInput(seeds[n].data(), seeds[n].size());
  }
  std::printf("wrote and replayed %zu seeds into %s\n", seeds.size(), argv[1]);
  return 0;
}
