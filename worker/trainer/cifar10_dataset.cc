#include "worker/trainer/cifar10_dataset.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace det::trainer {
namespace {

namespace fs = std::filesystem;

// The number of records in `path`, after checking that it is there and
// holds whole records.
absl::StatusOr<int64_t> CountRecords(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        path,
        ": no such CIFAR-10 file (run scripts/fetch-data.sh, or set "
        "data.dir or DET_DATA_DIR to the cifar-10-batches-bin folder)"));
  }
  const int64_t size = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot read its size: ", ec.message()));
  }
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": empty file at byte offset 0"));
  }
  if (size % kCifarRecordBytes != 0) {
    const int64_t whole = size / kCifarRecordBytes;
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": truncated: ", size, " bytes is not a multiple of the ",
        kCifarRecordBytes, "-byte record; the record at byte offset ",
        whole * kCifarRecordBytes, " is incomplete"));
  }
  return size / kCifarRecordBytes;
}

// Reads the n records of `path` through `buffer` into n labels and n NHWC
// images. Records store planes (CHW); NHWC lets crops and flips index whole
// pixels and gives channels-last batches for free.
absl::Status DecodeFile(const std::string& path, int64_t n,
                        std::vector<uint8_t>& buffer, int64_t* labels,
                        uint8_t* images) {
  const int64_t size = n * kCifarRecordBytes;
  buffer.resize(static_cast<size_t>(size));
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(buffer.data()), size);
  if (!in || in.gcount() != size) {
    return absl::DataLossError(absl::StrCat(
        path, ": read failed at byte offset ", in.gcount(), " of ", size));
  }
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t label = buffer[r * kCifarRecordBytes];
    if (label >= kCifarClasses) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": label ", static_cast<int>(label),
                       " at byte offset ", r * kCifarRecordBytes, " (record ",
                       r, ") is not a CIFAR-10 class (0-9)"));
    }
    labels[r] = label;
  }
  constexpr int64_t kPixels = kCifarImageSize * kCifarImageSize;
  const uint8_t* src = buffer.data();
  at::parallel_for(0, n, 512, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const uint8_t* planes = src + r * kCifarRecordBytes + 1;
      uint8_t* pixels = images + r * kPixels * kCifarChannels;
      for (int64_t p = 0; p < kPixels; ++p) {
        for (int64_t c = 0; c < kCifarChannels; ++c) {
          pixels[p * kCifarChannels + c] = planes[c * kPixels + p];
        }
      }
    }
  });
  return absl::OkStatus();
}

absl::Status ReadInt(const ValueMap& data, const std::string& key, int64_t lo,
                     int64_t* out) {
  auto it = data.find(key);
  if (it == data.end() || it->second.is_null()) return absl::OkStatus();
  const Value& v = it->second;
  if (v.is_int() ||
      (v.is_double() && v.as_number() == std::floor(v.as_number()))) {
    int64_t x = v.is_int() ? v.as_int() : static_cast<int64_t>(v.as_number());
    if (x >= lo) {
      *out = x;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "data.", key, ": expected an integer >= ", lo, ", found ", v.ToJson()));
}

}  // namespace

absl::StatusOr<ImageSet> ReadCifar10Files(
    const std::vector<std::string>& paths) {
  if (paths.empty())
    return absl::InvalidArgumentError("no CIFAR-10 files given");
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (const std::string& p : paths) {
    absl::StatusOr<int64_t> n = CountRecords(p);
    if (!n.ok()) return n.status();
    counts.push_back(*n);
    total += *n;
  }
  // Decoded straight into the whole set's tensors (no per-file tensors to
  // concatenate), through one read buffer of a file's size.
  ImageSet set;
  set.images = torch::empty(
      {total, kCifarImageSize, kCifarImageSize, kCifarChannels}, torch::kUInt8);
  set.labels = torch::empty({total}, torch::kLong);
  std::vector<uint8_t> buffer;
  int64_t offset = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (absl::Status s = DecodeFile(
            paths[i], counts[i], buffer,
            set.labels.data_ptr<int64_t>() + offset,
            set.images.data_ptr<uint8_t>() +
                offset * kCifarImageSize * kCifarImageSize * kCifarChannels);
        !s.ok()) {
      return s;
    }
    offset += counts[i];
  }
  return set;
}

absl::StatusOr<DataOptions> ParseDataOptions(const ValueMap& data) {
  DataOptions o;
  if (auto it = data.find("dir"); it != data.end() && !it->second.is_null()) {
    if (!it->second.is_string() || it->second.as_string().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data.dir: expected a folder path, found ", it->second.ToJson()));
    }
    o.dir = it->second.as_string();
  } else if (const char* env = std::getenv("DET_DATA_DIR"); env && *env) {
    o.dir = env;
  } else {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    std::string cache = (xdg && *xdg)
                            ? std::string(xdg)
                            : absl::StrCat(home ? home : "", "/.cache");
    o.dir = cache + "/det/cifar-10-batches-bin";
  }
  if (absl::Status s = ReadInt(data, "train_limit", 0, &o.train_limit); !s.ok())
    return s;
  if (absl::Status s =
          ReadInt(data, "validation_limit", 0, &o.validation_limit);
      !s.ok())
    return s;
  if (absl::Status s = ReadInt(data, "report_period", 1, &o.report_period);
      !s.ok())
    return s;
  if (absl::Status s =
          ReadInt(data, "validation_batch_size", 1, &o.validation_batch_size);
      !s.ok())
    return s;
  if (auto it = data.find("validation_split");
      it != data.end() && !it->second.is_null()) {
    const Value& v = it->second;
    if (!v.is_number() || !(v.as_number() >= 0 && v.as_number() < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data.validation_split: expected a fraction in [0, 1), found ",
          v.ToJson()));
    }
    o.validation_split = v.as_number();
  }
  if (auto it = data.find("augment");
      it != data.end() && !it->second.is_null()) {
    if (!it->second.is_bool()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data.augment: expected true or false, found ", it->second.ToJson()));
    }
    o.augment = it->second.as_bool();
  }
  return o;
}

absl::StatusOr<Cifar10> LoadCifar10(const DataOptions& options) {
  std::vector<std::string> train_files;
  for (int i = 1; i <= 5; ++i) {
    train_files.push_back(absl::StrCat(options.dir, "/data_batch_", i, ".bin"));
  }
  absl::StatusOr<ImageSet> train = ReadCifar10Files(train_files);
  if (!train.ok()) return train.status();
  Cifar10 out;
  if (options.validation_split > 0) {
    // The last slice: CIFAR-10's files are already shuffled, and a fixed
    // slice keeps the split identical across trials and restarts.
    const int64_t n = train->size();
    const int64_t held =
        static_cast<int64_t>(std::llround(n * options.validation_split));
    if (held < 1 || held >= n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data.validation_split ", options.validation_split, " of ", n,
          " records leaves an empty training or validation set"));
    }
    out.train = {train->images.narrow(0, 0, n - held),
                 train->labels.narrow(0, 0, n - held)};
    out.validation = {train->images.narrow(0, n - held, held),
                      train->labels.narrow(0, n - held, held)};
  } else {
    absl::StatusOr<ImageSet> test =
        ReadCifar10Files({options.dir + "/test_batch.bin"});
    if (!test.ok()) return test.status();
    out.train = *std::move(train);
    out.validation = *std::move(test);
  }
  auto limit = [](ImageSet& set, int64_t n) {
    if (n > 0 && n < set.size()) {
      set.images = set.images.narrow(0, 0, n).clone();  // frees the rest
      set.labels = set.labels.narrow(0, 0, n).clone();
    }
  };
  limit(out.train, options.train_limit);
  limit(out.validation, options.validation_limit);
  if (out.train.size() == 0 || out.validation.size() == 0) {
    return absl::InvalidArgumentError(
        "data.train_limit/validation_limit leave an empty set");
  }
  return out;
}

}  // namespace det::trainer
