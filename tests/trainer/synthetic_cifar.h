// Small CIFAR-10-format files for trainer tests, written into a fresh
// temporary directory that is removed with the object.
#ifndef DET_TESTS_TRAINER_SYNTHETIC_CIFAR_H_
#define DET_TESTS_TRAINER_SYNTHETIC_CIFAR_H_

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

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

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("det-trainer-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string File(const std::string& name) const {
    return (path_ / name).string();
  }
  void Write(const std::string& name, const std::string& bytes) const {
    std::ofstream(File(name), std::ios::binary) << bytes;
  }

 private:
  std::filesystem::path path_;
};

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
