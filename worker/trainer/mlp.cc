#include "worker/trainer/mlp.h"

#include "absl/strings/str_cat.h"

namespace det::trainer {

MlpImpl::MlpImpl(const HParams& hp, int64_t inputs, int64_t outputs)
    : activation_(hp.activation) {
  namespace nn = torch::nn;
  int64_t in = inputs;
  for (int64_t i = 0; i < hp.hidden_layers; ++i) {
    hidden_.push_back(register_module(
        absl::StrCat("fc", i + 1),
        // Batch norm's shift replaces the bias.
        nn::Linear(
            nn::LinearOptions(in, hp.hidden_units).bias(!hp.batch_norm))));
    if (hp.batch_norm) {
      norms_.push_back(register_module(absl::StrCat("bn", i + 1),
                                       nn::BatchNorm1d(hp.hidden_units)));
    }
    in = hp.hidden_units;
  }
  dropout_ = register_module("dropout", nn::Dropout(hp.dropout));
  out_ = register_module("out", nn::Linear(in, outputs));
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < hidden_.size(); ++i) {
    x = hidden_[i]->forward(x);
    if (!norms_.empty()) x = norms_[i]->forward(x);
    switch (activation_) {
      case Activation::kRelu:
        x = torch::relu(x);
        break;
      case Activation::kTanh:
        x = torch::tanh(x);
        break;
      case Activation::kGelu:
        x = torch::gelu(x);
        break;
    }
    x = dropout_->forward(x);
  }
  return out_->forward(x);
}

}  // namespace det::trainer
