// The JSON-records task's model, a multilayer perceptron:
//   hidden_layers x [linear(hidden_units) -> batch norm (optional)
//                    -> activation -> dropout] -> linear(outputs).
// With 0 hidden layers it is a linear model of the features.
#ifndef DET_WORKER_TRAINER_MLP_H_
#define DET_WORKER_TRAINER_MLP_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "common/trainer_hparams.h"

namespace det::trainer {

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const HParams& hp, int64_t inputs, int64_t outputs);

  // x: float [B, inputs] -> [B, outputs]. Batch norm and dropout follow the
  // module's train/eval mode.
  torch::Tensor forward(torch::Tensor x);

 private:
  Activation activation_;
  std::vector<torch::nn::Linear> hidden_;
  std::vector<torch::nn::BatchNorm1d> norms_;  // empty without batch norm
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_MLP_H_
