// The seed's convolutional network for CIFAR-10:
//   conv_layers x [conv(kernel_size, same padding) -> batch norm (optional)
//                  -> ReLU -> 2x2 max-pool]
//   -> flatten -> FC(hidden_units) -> ReLU -> dropout -> FC(10).
// Block 1 has n_filters1 filters, block 2 n_filters2, and each further block
// doubles the previous width.
#ifndef DET_WORKER_TRAINER_MODEL_H_
#define DET_WORKER_TRAINER_MODEL_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "common/trainer_hparams.h"

namespace det::trainer {

// Output channels of each conv block.
std::vector<int64_t> ConvWidths(const HParams& hp);

class CnnImpl : public torch::nn::Module {
 public:
  explicit CnnImpl(const HParams& hp);

  // x: float [B, 3, 32, 32] (any memory format) -> logits [B, 10].
  // In eval mode batch norm is folded into the convolution before it (the
  // same function, one pass over the activations fewer).
  torch::Tensor forward(torch::Tensor x);

 private:
  friend class FrozenCnn;

  // Convolution i of the training forward: through oneDNN's Winograd where
  // it suits the layer (onednn_conv.h), else libtorch's.
  torch::Tensor Conv(size_t i, const torch::Tensor& x);

  // Convolution i's weight and bias with eval-mode batch norm folded in
  // (the convolution's own when there is no batch norm).
  std::pair<torch::Tensor, torch::Tensor> EvalConv(size_t i) const;

  int64_t padding_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<bool> winograd_;                 // per convolution: WinogradSuits
  std::vector<torch::nn::BatchNorm2d> norms_;  // empty without batch norm
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(Cnn);

class OneDnnEvalNet;

// The model frozen for evaluation: a snapshot of its parameters taken once
// per validation, not once per batch. Batch norm is folded into the
// convolutions. On the CPU, in a build with oneDNN (DET_TRAINER_ONEDNN), the
// whole forward runs as oneDNN primitives (onednn_eval.h: Winograd where it
// is faster, ReLU fused, activations in oneDNN's blocked layouts between
// layers); elsewhere through libtorch's operators. Computes what
// CnnImpl::forward computes in eval mode, to float32 rounding (Winograd's
// included: about 1e-6 relative). Must be rebuilt after the model's
// parameters change; call it inside torch::InferenceMode or NoGradGuard.
// Not thread-safe: forward caches oneDNN plans per batch size.
class FrozenCnn {
 public:
  explicit FrozenCnn(const CnnImpl& model);
  ~FrozenCnn();
  FrozenCnn(const FrozenCnn&) = delete;
  FrozenCnn& operator=(const FrozenCnn&) = delete;

  // x: float [B, 3, 32, 32] on the model's device -> logits [B, 10].
  torch::Tensor forward(const torch::Tensor& x) const;

  // Whether the forward runs through OneDnnEvalNet.
  bool uses_onednn() const { return onednn_ != nullptr; }

 private:
  int64_t padding_;
  std::vector<torch::Tensor> conv_weights_, conv_biases_;
  // Shared, not unique: its deleter is bound where it is made, so a build
  // without oneDNN (no OneDnnEvalNet at all) links no destructor for it.
  std::shared_ptr<OneDnnEvalNet> onednn_;
  torch::Tensor fc1_weight_, fc1_bias_, fc2_weight_, fc2_bias_;
};

// Multiply-adds x 2 of one forward pass for one 32x32 image (convolutions
// and fully connected layers; activations and pooling are negligible).
// Training costs about three times this (forward, two backward products).
double ForwardFlopsPerImage(const HParams& hp);

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_MODEL_H_
