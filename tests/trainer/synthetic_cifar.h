// Small CIFAR-10-format files for trainer tests, written into a TempDir
// (tests/testing/temp_dir.h).
#ifndef DET_TESTS_TRAINER_SYNTHETIC_CIFAR_H_
#define DET_TESTS_TRAINER_SYNTHETIC_CIFAR_H_

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace det::trainer::testing {

// The bytes of one record: label, then pixel (c, y, x) = Pixel(seed, c, y, x).
inline uint8_t Pixel(int record, int c, int y, int x) {
  return static_cast<uint8_t>((record * 131 + c * 61 + y * 7 + x * 3) & 0xff);
}

inline std::string Records(int first, int n, int label_offset = 0) {
  std::string out;
  for (int r = first; r < first + n; ++r) {
    out.push_back(static_cast<char>((r + label_offset) % 10));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          out.push_back(static_cast<char>(Pixel(r, c, y, x)));
  }
  return out;
}

using ::det::test::TempDir;

// Writes the six CIFAR-10 files with `per_file` records each (records are
// numbered across files so every image differs).
inline void WriteCifarSet(const TempDir& dir, int per_file) {
  for (int i = 1; i <= 5; ++i) {
    dir.Write("data_batch_" + std::to_string(i) + ".bin",
              Records((i - 1) * per_file, per_file));
  }
  dir.Write("test_batch.bin", Records(5 * per_file, per_file));
}

}  // namespace det::trainer::testing

#endif  // DET_TESTS_TRAINER_SYNTHETIC_CIFAR_H_
