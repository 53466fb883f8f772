// A trainable 3x3 convolution on the CPU whose forward and both backward
// passes run as oneDNN's Winograd primitives (F(4x4, 3x3)), which libtorch
// 1.13 does not expose (bench/results/trainer.md has the measurements).
// Tensors cross over in libtorch's layouts; each call reorders into and out
// of oneDNN's blocked ones. Winograd rounds differently from the direct sum
// (~1e-6 relative) but deterministically, so a resumed run still repeats a
// straight one; which layers use it (WinogradSuits) is a fixed rule.
//
// Built only with DET_TRAINER_ONEDNN.
#ifndef DET_WORKER_TRAINER_ONEDNN_CONV_H_
#define DET_WORKER_TRAINER_ONEDNN_CONV_H_

#include <torch/torch.h>

#include <cstdint>
#include <optional>

namespace det::trainer {

// Whether a stride-1 `kernel` x `kernel` convolution with `in_channels`
// inputs, same padding, on CPU float tensors, trains through
// WinogradConv2d: 3x3 kernels with at least 32 input channels (measured:
// faster from 32 channels on; at 16 it was slower), where this CPU has
// oneDNN's Winograd (AVX-512).
bool WinogradSuits(int64_t in_channels, int64_t kernel);

// y = conv2d(x, weight, bias, stride 1, padding), differentiable in all
// three (bias may be undefined: no bias); x: float [B, C, H, W] on the CPU.
// nullopt where oneDNN has no Winograd for the shape (the caller then uses
// libtorch's convolution): decided once per shape and thread.
std::optional<torch::Tensor> WinogradConv2d(const torch::Tensor& x,
                                            const torch::Tensor& weight,
                                            const torch::Tensor& bias,
                                            int64_t padding);

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_ONEDNN_CONV_H_
