// Turning decoded CIFAR-10 images into training and validation batches, all
// as batched tensor operations: shuffling, random crop with zero padding,
// horizontal flip and per-channel normalisation.
//
// Reproducibility: the order of epoch e is a permutation drawn from a
// generator seeded by (seed, e), so the data position of a run is just the
// number of samples consumed; augmentation draws from a generator whose
// state the trainer checkpoints.
#ifndef DET_WORKER_TRAINER_BATCHES_H_
#define DET_WORKER_TRAINER_BATCHES_H_

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>

namespace det::trainer {

// A 64-bit mix of two values (splitmix64), for deriving independent seeds.
uint64_t MixSeed(uint64_t a, uint64_t b);

// The per-channel mean and standard deviation of CIFAR-10's training set
// (pixel values scaled to [0, 1]).
inline constexpr float kCifarMean[3] = {0.4914f, 0.4822f, 0.4465f};
inline constexpr float kCifarStd[3] = {0.2470f, 0.2435f, 0.2616f};

// uint8 [B, H, W, 3] -> float [B, 3, H, W] in channels-last memory layout,
// (x / 255 - mean) / std per channel.
torch::Tensor NormalizeImages(const torch::Tensor& nhwc_u8);

// Crops each image of a uint8 [B, H, W, C] batch out of a copy padded with
// `pad` zero pixels on every side, at offsets (dy[i], dx[i]) in [0, 2*pad],
// mirrored left-right where flip[i] is true. Returns [B, H, W, C].
torch::Tensor CropAndFlip(const torch::Tensor& nhwc_u8, const torch::Tensor& dy,
                          const torch::Tensor& dx, const torch::Tensor& flip,
                          int64_t pad);

// CropAndFlip with offsets and flips drawn from `gen` (pad 4, the usual
// CIFAR-10 recipe).
torch::Tensor RandomCropAndFlip(const torch::Tensor& nhwc_u8,
                                at::Generator& gen, int64_t pad = 4);

// An endless stream of sample indices: epoch after epoch, each epoch a fresh
// permutation of [0, n). Stateless: Take(start, count) is the same whenever
// it is asked.
class SampleStream {
 public:
  SampleStream(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}

  // Indices of stream positions [start, start + count), int64 [count].
  torch::Tensor Take(int64_t start, int64_t count);

 private:
  torch::Tensor Epoch(int64_t epoch);

  int64_t n_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  torch::Tensor cached_;
};

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_BATCHES_H_
