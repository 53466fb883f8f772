// A fresh folder under the system's temporary directory for one test, removed
// with everything in it when the object goes away (also when the test fails
// midway). Shared by the test suites; header-only.
#ifndef DET_TESTS_TESTING_TEMP_DIR_H_
#define DET_TESTS_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace det::test {

class TempDir {
 public:
  // The folder's name starts with `prefix` (a unique suffix follows).
  explicit TempDir(const std::string& prefix = "det-test") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX"))
            .string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror(("mkdtemp " + pattern).c_str());
      std::abort();  // no folder: nothing the test does could be trusted
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // The path of `name` inside the folder.
  std::string File(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }
  // Writes `bytes` to `name` (its folders made as needed); returns its path.
  std::string Write(const std::string& name, const std::string& bytes) const {
    const std::filesystem::path p = std::filesystem::path(path_) / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }

 private:
  std::string path_;
};

}  // namespace det::test

#endif  // DET_TESTS_TESTING_TEMP_DIR_H_
