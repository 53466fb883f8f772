#include "worker/trainer/batches.h"

#include <ATen/CPUGeneratorImpl.h>

namespace det::trainer {

uint64_t MixSeed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

torch::Tensor NormalizeImages(const torch::Tensor& nhwc_u8) {
  // One fused multiply-add per pixel: x * (1 / (255 std)) - mean / std.
  // The two 3-element constants are kept on the images' device: copying
  // them there on every batch would make each batch wait for the GPU.
  struct Constants {
    torch::Device device = torch::kCPU;
    torch::Tensor scale, shift;
  };
  thread_local Constants c;
  const torch::Device device = nhwc_u8.device();
  if (!c.scale.defined() || c.device != device) {
    torch::Tensor scale = torch::empty({3}), shift = torch::empty({3});
    for (int i = 0; i < 3; ++i) {
      scale[i] = 1.0f / (255.0f * kCifarStd[i]);
      shift[i] = -kCifarMean[i] / kCifarStd[i];
    }
    c = Constants{device, scale.to(device), shift.to(device)};
  }
  torch::Tensor x = torch::addcmul(c.shift, nhwc_u8.to(torch::kFloat), c.scale);
  // NHWC storage viewed as NCHW is exactly the channels-last layout.
  return x.permute({0, 3, 1, 2});
}

torch::Tensor CropAndFlip(const torch::Tensor& nhwc_u8, const torch::Tensor& dy,
                          const torch::Tensor& dx, const torch::Tensor& flip,
                          int64_t pad) {
  const int64_t b = nhwc_u8.size(0), h = nhwc_u8.size(1), w = nhwc_u8.size(2);
  torch::Tensor padded =
      torch::constant_pad_nd(nhwc_u8, {0, 0, pad, pad, pad, pad}, 0);
  // Index tensors live with the images (CPU or GPU).
  const auto longs =
      torch::TensorOptions(torch::kLong).device(nhwc_u8.device());
  torch::Tensor ar_h = torch::arange(h, longs);
  torch::Tensor ar_w = torch::arange(w, longs);
  torch::Tensor rows = dy.view({b, 1}) + ar_h.view({1, h});
  torch::Tensor cols = torch::where(
      flip.view({b, 1}), dx.view({b, 1}) + (w - 1 - ar_w).view({1, w}),
      dx.view({b, 1}) + ar_w.view({1, w}));
  using torch::indexing::Slice;
  return padded.index({torch::arange(b, longs).view({b, 1, 1}),
                       rows.view({b, h, 1}), cols.view({b, 1, w}), Slice()});
}

torch::Tensor RandomCropAndFlip(const torch::Tensor& nhwc_u8,
                                at::Generator& gen, int64_t pad) {
  const int64_t b = nhwc_u8.size(0);
  torch::Tensor dy = torch::randint(0, 2 * pad + 1, {b}, gen, torch::kLong);
  torch::Tensor dx = torch::randint(0, 2 * pad + 1, {b}, gen, torch::kLong);
  torch::Tensor flip =
      torch::randint(0, 2, {b}, gen, torch::kLong).to(torch::kBool);
  return CropAndFlip(nhwc_u8, dy, dx, flip, pad);
}

torch::Tensor SampleStream::Epoch(int64_t epoch) {
  if (epoch != cached_epoch_) {
    at::Generator gen =
        at::make_generator<at::CPUGeneratorImpl>(MixSeed(seed_, epoch));
    cached_ = torch::randperm(n_, gen, torch::kLong);
    cached_epoch_ = epoch;
  }
  return cached_;
}

torch::Tensor SampleStream::Take(int64_t start, int64_t count) {
  std::vector<torch::Tensor> parts;
  while (count > 0) {
    const int64_t epoch = start / n_, offset = start % n_;
    const int64_t take = std::min(count, n_ - offset);
    parts.push_back(Epoch(epoch).narrow(0, offset, take));
    start += take;
    count -= take;
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

}  // namespace det::trainer
