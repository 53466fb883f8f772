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
#include <vector>

#include "worker/trainer/hparams.h"

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
  int64_t padding_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::BatchNorm2d> norms_;  // empty without batch norm
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(Cnn);

// Multiply-adds x 2 of one forward pass for one 32x32 image (convolutions
// and fully connected layers; activations and pooling are negligible).
// Training costs about three times this (forward, two backward products).
double ForwardFlopsPerImage(const HParams& hp);

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_MODEL_H_
