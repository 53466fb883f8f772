#include "worker/trainer/model.h"

#include "worker/trainer/cifar10_dataset.h"

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

CnnImpl::CnnImpl(const HParams& hp) {
  namespace nn = torch::nn;
  nn::Sequential features;
  int64_t in = kCifarChannels;
  for (int64_t out : ConvWidths(hp)) {
    features->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, hp.kernel_size)
                                       .padding(hp.kernel_size / 2)
                                       // Batch norm's shift replaces the bias.
                                       .bias(!hp.batch_norm)));
    if (hp.batch_norm) features->push_back(nn::BatchNorm2d(out));
    features->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
    features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    in = out;
  }
  const int64_t side = FinalSide(hp);
  features_ = register_module("features", features);
  fc1_ = register_module("fc1", nn::Linear(in * side * side, hp.hidden_units));
  dropout_ = register_module("dropout", nn::Dropout(hp.dropout));
  fc2_ = register_module("fc2", nn::Linear(hp.hidden_units, kCifarClasses));
}

torch::Tensor CnnImpl::forward(torch::Tensor x) {
  x = features_->forward(x);
  x = torch::relu(fc1_->forward(x.flatten(1)));
  return fc2_->forward(dropout_->forward(x));
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
