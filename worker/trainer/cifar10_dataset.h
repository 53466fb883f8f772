// CIFAR-10 in its official binary layout (data_batch_1..5.bin,
// test_batch.bin): records of 1 label byte followed by 3072 pixel bytes
// (1024 red, 1024 green, 1024 blue, row-major 32x32).
//
// Each file is checked before use (present, non-empty, a whole number of
// records, labels 0-9); errors name the file and the byte offset at fault.
// A set is decoded once into one uint8 tensor so batches are cut from it with
// tensor ops, never per-image C++ loops.
#ifndef DET_WORKER_TRAINER_CIFAR10_DATASET_H_
#define DET_WORKER_TRAINER_CIFAR10_DATASET_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/value.h"

namespace det::trainer {

inline constexpr int64_t kCifarImageSize = 32;
inline constexpr int64_t kCifarChannels = 3;
inline constexpr int64_t kCifarClasses = 10;
inline constexpr int64_t kCifarRecordBytes =
    1 + kCifarChannels * kCifarImageSize * kCifarImageSize;  // 3073

// A decoded set of images.
struct ImageSet {
  torch::Tensor images;  // uint8 [N, 32, 32, 3] (NHWC, contiguous)
  torch::Tensor labels;  // int64 [N], values 0-9
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// Reads and checks the given files, in order, into one set.
absl::StatusOr<ImageSet> ReadCifar10Files(
    const std::vector<std::string>& paths);

// What the "data" section of a trial's config says about the data.
struct DataOptions {
  std::string dir;          // resolved: data.dir, DET_DATA_DIR, or cache
  int64_t train_limit = 0;  // use only the first N training records (0: all)
  int64_t validation_limit = 0;  // likewise for validation
  // > 0: validate on this last fraction of the training files instead of
  // test_batch.bin.
  double validation_split = 0;
  bool augment = true;         // random crop (4-pixel padding) + flip
  int64_t report_period = 50;  // training metrics every N batches
  // Small enough that activations stay in cache (measured: 64-128 run
  // twice as fast as 1000).
  int64_t validation_batch_size = 128;
};

// Reads the "data" map. Recognised keys: dir, train_limit, validation_limit,
// validation_split, augment, report_period, validation_batch_size; unknown
// keys are ignored (the section is shared with custom entrypoints).
// The directory falls back to $DET_DATA_DIR, then
// ${XDG_CACHE_HOME:-$HOME/.cache}/det/cifar-10-batches-bin, where
// scripts/fetch-data.sh puts it.
absl::StatusOr<DataOptions> ParseDataOptions(const ValueMap& data);

struct Cifar10 {
  ImageSet train;
  ImageSet validation;
};

// Loads the training and validation sets as `options` says.
absl::StatusOr<Cifar10> LoadCifar10(const DataOptions& options);

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_CIFAR10_DATASET_H_
