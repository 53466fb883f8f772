#include "worker/trainer/model.h"

#include "absl/strings/str_cat.h"
#include "worker/trainer/cifar10_dataset.h"
#include "worker/trainer/onednn_conv.h"
#include "worker/trainer/onednn_eval.h"

namespace det::trainer {
namespace {

int64_t FinalSide(const HParams& hp) {
  return kCifarImageSize >> hp.conv_layers;
}

}  // namespace

std::vector<int64_t> ConvWidths(const HParams& hp) {
  std::vector<int64_t> widths;
  for (int64_t i = 0; i < hp.conv_layers; ++i) {
    if (i == 0) {
      widths.push_back(hp.n_filters1);
    } else if (i == 1) {
      widths.push_back(hp.n_filters2);
    } else {
      widths.push_back(widths.back() * 2);
    }
  }
  return widths;
}

CnnImpl::CnnImpl(const HParams& hp) : padding_(hp.kernel_size / 2) {
  namespace nn = torch::nn;
  int64_t in = kCifarChannels;
  const std::vector<int64_t> widths = ConvWidths(hp);
  for (size_t i = 0; i < widths.size(); ++i) {
    const int64_t out = widths[i];
    convs_.push_back(
        register_module(absl::StrCat("conv", i + 1),
                        nn::Conv2d(nn::Conv2dOptions(in, out, hp.kernel_size)
                                       .padding(padding_)
                                       // Batch norm's shift replaces the bias.
                                       .bias(!hp.batch_norm))));
#ifdef DET_TRAINER_ONEDNN
    winograd_.push_back(WinogradSuits(in, hp.kernel_size));
#else
    winograd_.push_back(false);
#endif
    if (hp.batch_norm) {
      norms_.push_back(
          register_module(absl::StrCat("bn", i + 1), nn::BatchNorm2d(out)));
    }
    in = out;
  }
  const int64_t side = FinalSide(hp);
  fc1_ = register_module("fc1", nn::Linear(in * side * side, hp.hidden_units));
  dropout_ = register_module("dropout", nn::Dropout(hp.dropout));
  fc2_ = register_module("fc2", nn::Linear(hp.hidden_units, kCifarClasses));
}

torch::Tensor CnnImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < convs_.size(); ++i) {
    if (norms_.empty()) {
      x = is_training() ? Conv(i, x) : convs_[i]->forward(x);
    } else if (is_training()) {
      x = norms_[i]->forward(Conv(i, x));
    } else {
      auto [weight, bias] = EvalConv(i);
      x = torch::conv2d(x, weight, bias, /*stride=*/1, padding_);
    }
    // Pooling before the ReLU computes the same values and gradients as the
    // textbook order (max and ReLU commute) with a quarter of the ReLU work.
    x = torch::max_pool2d(x, 2);
    x.relu_();
  }
  x = torch::relu(fc1_->forward(x.flatten(1)));
  return fc2_->forward(dropout_->forward(x));
}

torch::Tensor CnnImpl::Conv(size_t i, const torch::Tensor& x) {
#ifdef DET_TRAINER_ONEDNN
  if (winograd_[i]) {
    std::optional<torch::Tensor> y =
        WinogradConv2d(x, convs_[i]->weight, convs_[i]->bias, padding_);
    if (y) return *y;
  }
#endif
  return convs_[i]->forward(x);
}

std::pair<torch::Tensor, torch::Tensor> CnnImpl::EvalConv(size_t i) const {
  if (norms_.empty()) return {convs_[i]->weight, convs_[i]->bias};
  // y = gamma (conv(x) - mean) / sqrt(var + eps) + beta
  //   = conv'(x) with weights scaled per output channel and a bias.
  const auto& bn = norms_[i];
  torch::Tensor scale =
      bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  return {convs_[i]->weight * scale.view({-1, 1, 1, 1}),
          bn->bias - bn->running_mean * scale};
}

FrozenCnn::FrozenCnn(const CnnImpl& model)
    : padding_(model.padding_),
      fc1_weight_(model.fc1_->weight.detach()),
      fc1_bias_(model.fc1_->bias.detach()),
      fc2_weight_(model.fc2_->weight.detach()),
      fc2_bias_(model.fc2_->bias.detach()) {
  for (size_t i = 0; i < model.convs_.size(); ++i) {
    auto [weight, bias] = model.EvalConv(i);
    conv_weights_.push_back(weight.detach());
    conv_biases_.push_back(bias.detach());
  }
#ifdef DET_TRAINER_ONEDNN
  if (fc1_weight_.device().is_cpu()) {
    onednn_ = std::make_shared<OneDnnEvalNet>(
        EvalNetWeights{conv_weights_, conv_biases_, padding_, fc1_weight_,
                       fc1_bias_, fc2_weight_, fc2_bias_});
  }
#endif
}

FrozenCnn::~FrozenCnn() = default;

torch::Tensor FrozenCnn::forward(const torch::Tensor& input) const {
#ifdef DET_TRAINER_ONEDNN
  if (onednn_ != nullptr) return onednn_->Forward(input);
#endif
  torch::Tensor x = input;
  for (size_t i = 0; i < conv_weights_.size(); ++i) {
    x = torch::conv2d(x, conv_weights_[i], conv_biases_[i], /*stride=*/1,
                      padding_);
    x = torch::max_pool2d(x, 2);  // pool before ReLU as in CnnImpl::forward
    x.relu_();
  }
  x = torch::relu(torch::linear(x.flatten(1), fc1_weight_, fc1_bias_));
  return torch::linear(x, fc2_weight_, fc2_bias_);  // dropout: identity
}

double ForwardFlopsPerImage(const HParams& hp) {
  double flops = 0;
  int64_t in = kCifarChannels, side = kCifarImageSize;
  for (int64_t out : ConvWidths(hp)) {
    flops += 2.0 * side * side * out * in * hp.kernel_size * hp.kernel_size;
    in = out;
    side /= 2;
  }
  flops += 2.0 * in * side * side * hp.hidden_units;
  flops += 2.0 * hp.hidden_units * kCifarClasses;
  return flops;
}

}  // namespace det::trainer
