#include "worker/trainer/onednn_eval.h"

#include <ATen/Context.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "worker/trainer/onednn_common.h"

namespace det::trainer {
namespace {

using onednn::As;
using onednn::Buffer;
using onednn::ConvShape;
using onednn::Engine;
using onednn::memory;
using onednn::Stream;
using onednn::Tag;

memory::desc Plain(const memory::dims& dims, Tag tag) {
  return onednn::Desc(dims, tag);
}

// Whether Winograd won for a shape, decided once per process.
class AlgorithmChoices {
 public:
  std::optional<bool> Find(const ConvShape& shape) {
    absl::MutexLock lock(&mu_);
    auto it = winograd_.find(shape);
    if (it == winograd_.end()) return std::nullopt;
    return it->second;
  }
  void Record(const ConvShape& shape, bool winograd) {
    absl::MutexLock lock(&mu_);
    winograd_.emplace(shape, winograd);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<ConvShape, bool> winograd_ ABSL_GUARDED_BY(mu_);
};

AlgorithmChoices& Choices() {
  static auto* const choices = new AlgorithmChoices;  // never destroyed
  return *choices;
}

dnnl::primitive_attr WithRelu() {
  dnnl::post_ops relu;
  relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(relu);
  return attr;
}

// The convolution with its ReLU post-op, or nullopt where oneDNN has no
// implementation of `algorithm` for the shape (Winograd: 3x3 kernels on
// AVX-512 machines only).
std::optional<dnnl::convolution_forward::primitive_desc> ConvDesc(
    dnnl::algorithm algorithm, const ConvShape& s) {
  const memory::dim p = s.padding;
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, algorithm, Plain(s.src(), Tag::any),
      Plain(s.weights(), Tag::any), Plain({s.out}, Tag::x),
      Plain(s.dst(), Tag::any), {1, 1}, {p, p}, {p, p});
  try {
    return dnnl::convolution_forward::primitive_desc(desc, WithRelu(),
                                                     Engine());
  } catch (const dnnl::error&) {
    return std::nullopt;
  }
}

// Seconds per run of the convolution alone on zeroed buffers (zeros: no
// denormals, and the work does not depend on the values): the best of 3
// after one warm-up run.
double TimeConv(const dnnl::convolution_forward::primitive_desc& pd) {
  dnnl::stream& stream = Stream();
  auto zeroed = [&](const memory::desc& md) {
    memory m(md, Engine());
    std::memset(m.get_data_handle(), 0, md.get_size());
    return m;
  };
  dnnl::convolution_forward conv(pd);
  const std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, zeroed(pd.src_desc())},
      {DNNL_ARG_WEIGHTS, zeroed(pd.weights_desc())},
      {DNNL_ARG_BIAS, zeroed(pd.bias_desc())},
      {DNNL_ARG_DST, zeroed(pd.dst_desc())}};
  double best = 0;
  for (int i = 0; i < 4; ++i) {
    const auto start = std::chrono::steady_clock::now();
    conv.execute(stream, args);
    stream.wait();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (i == 1 || (i > 1 && s < best)) best = s;
  }
  return best;
}

// The convolution `choice` asks for; *winograd says which one it is.
dnnl::convolution_forward::primitive_desc PickConv(const ConvShape& shape,
                                                   ConvChoice choice,
                                                   bool* winograd) {
  auto direct = ConvDesc(dnnl::algorithm::convolution_direct, shape);
  if (!direct) {
    throw std::runtime_error("oneDNN has no direct convolution for this shape");
  }
  *winograd = false;
  // The timed choice could differ between runs: never under deterministic
  // algorithms.
  if (choice == ConvChoice::kDirect ||
      (choice == ConvChoice::kTimed &&
       at::globalContext().deterministicAlgorithms())) {
    return *direct;
  }
  auto wino = ConvDesc(dnnl::algorithm::convolution_winograd, shape);
  if (!wino) return *direct;
  if (choice == ConvChoice::kWinograd) {
    *winograd = true;
    return *wino;
  }
  std::optional<bool> known = Choices().Find(shape);
  if (!known) {
    known = TimeConv(*wino) < TimeConv(*direct);
    Choices().Record(shape, *known);
  }
  *winograd = *known;
  return *winograd ? *wino : *direct;
}

}  // namespace

struct OneDnnEvalNet::Impl {
  // One convolution block's primitives and buffers.
  struct Block {
    bool winograd = false;
    dnnl::reorder to_conv_src;  // when formats differ (else empty)
    memory conv_src;            // its target
    dnnl::convolution_forward conv;
    Buffer weights, bias;  // in the convolution's formats
    memory conv_dst;
    dnnl::pooling_forward pool;
    memory pool_dst;
  };
  // A fully connected layer [batch, in] -> [batch, out], src and dst plain.
  struct Dense {
    dnnl::inner_product_forward::primitive_desc pd;
    dnnl::inner_product_forward layer;
    Buffer weights, bias;

    void Execute(const memory& src, const memory& dst) const {
      layer.execute(Stream(), {{DNNL_ARG_SRC, src},
                               {DNNL_ARG_WEIGHTS, weights.mem},
                               {DNNL_ARG_BIAS, bias.mem},
                               {DNNL_ARG_DST, dst}});
    }
  };
  // Everything for one batch size.
  struct Plan {
    memory::desc input;  // NCHW: the caller's tensor
    std::vector<Block> blocks;
    dnnl::reorder to_features;  // last pooling's output -> NCHW
    memory features;            // [B, C, h, w], NCHW
    memory features_flat;       // the same buffer as [B, C*h*w]: flatten(1)
    Dense fc1, fc2;
    memory hidden;
    memory::desc logits;  // [B, classes]: the returned tensor
  };

  Plan MakePlan(int64_t batch, int64_t channels, int64_t side);
  Dense MakeDense(int64_t batch, const torch::Tensor& weight,
                  const torch::Tensor& bias, bool relu);

  EvalNetWeights w;  // contiguous float copies
  ConvChoice choice = ConvChoice::kTimed;
  absl::flat_hash_map<int64_t, Plan> plans;  // by batch size
};

OneDnnEvalNet::Impl::Dense OneDnnEvalNet::Impl::MakeDense(
    int64_t batch, const torch::Tensor& weight, const torch::Tensor& bias,
    bool relu) {
  const int64_t out = weight.size(0), in = weight.size(1);
  dnnl::inner_product_forward::desc desc(
      dnnl::prop_kind::forward_inference, Plain({batch, in}, Tag::nc),
      Plain({out, in}, Tag::any), Plain({out}, Tag::x),
      Plain({batch, out}, Tag::nc));
  Dense d;
  d.pd = relu ? dnnl::inner_product_forward::primitive_desc(desc, WithRelu(),
                                                            Engine())
              : dnnl::inner_product_forward::primitive_desc(desc, Engine());
  d.layer = dnnl::inner_product_forward(d.pd);
  d.weights = As(weight, d.pd.weights_desc());
  d.bias = As(bias, d.pd.bias_desc());
  return d;
}

OneDnnEvalNet::Impl::Plan OneDnnEvalNet::Impl::MakePlan(int64_t batch,
                                                        int64_t channels,
                                                        int64_t side) {
  Plan plan;
  plan.input = Plain({batch, channels, side, side}, Tag::nchw);
  memory::desc previous = plan.input;
  for (size_t i = 0; i < w.conv_weights.size(); ++i) {
    const torch::Tensor& weight = w.conv_weights[i];
    TORCH_CHECK(weight.size(1) == channels, "block ", i + 1, " expects ",
                weight.size(1), " input channels, got ", channels);
    const ConvShape shape{batch, channels,       weight.size(0),
                          side,  weight.size(2), w.padding};
    Block b;
    const auto pd = PickConv(shape, choice, &b.winograd);
    if (pd.src_desc() != previous) {
      b.conv_src = memory(pd.src_desc(), Engine());
      b.to_conv_src = dnnl::reorder(dnnl::reorder::primitive_desc(
          Engine(), previous, Engine(), pd.src_desc()));
    }
    b.conv = dnnl::convolution_forward(pd);
    // The weights and bias in the convolution's own formats, once.
    b.weights = As(weight, pd.weights_desc());
    b.bias = As(w.conv_biases[i], pd.bias_desc());
    b.conv_dst = memory(pd.dst_desc(), Engine());

    side = shape.out_side() / 2;  // floor, as torch's max_pool2d
    channels = shape.out;
    dnnl::pooling_forward::desc pool(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max,
        pd.dst_desc(), Plain({batch, channels, side, side}, Tag::any),
        /*strides=*/{2, 2}, /*kernel=*/{2, 2}, /*padding_l=*/{0, 0},
        /*padding_r=*/{0, 0});
    dnnl::pooling_forward::primitive_desc pool_pd(pool, Engine());
    b.pool = dnnl::pooling_forward(pool_pd);
    b.pool_dst = memory(pool_pd.dst_desc(), Engine());
    previous = pool_pd.dst_desc();
    plan.blocks.push_back(std::move(b));
  }

  const memory::desc features = Plain({batch, channels, side, side}, Tag::nchw);
  plan.to_features = dnnl::reorder(
      dnnl::reorder::primitive_desc(Engine(), previous, Engine(), features));
  plan.features = memory(features, Engine());
  TORCH_CHECK(w.fc1_weight.size(1) == channels * side * side, "fc1 expects ",
              w.fc1_weight.size(1), " features, the blocks give ",
              channels * side * side);
  plan.fc1 = MakeDense(batch, w.fc1_weight, w.fc1_bias, /*relu=*/true);
  plan.features_flat =
      memory(plan.fc1.pd.src_desc(), Engine(), plan.features.get_data_handle());
  plan.hidden = memory(plan.fc1.pd.dst_desc(), Engine());
  plan.fc2 = MakeDense(batch, w.fc2_weight, w.fc2_bias, /*relu=*/false);
  plan.logits = plan.fc2.pd.dst_desc();
  Stream().wait();  // the weight reorders
  return plan;
}

OneDnnEvalNet::OneDnnEvalNet(const EvalNetWeights& weights, ConvChoice choice)
    : impl_(std::make_unique<Impl>()) {
  impl_->choice = choice;
  auto copy = [](const torch::Tensor& t, int64_t dim, const char* what) {
    TORCH_CHECK(t.defined() && t.is_cpu() && t.dim() == dim, what,
                ": expected a ", dim, "-d CPU tensor");
    return t.to(torch::kFloat).contiguous();
  };
  const EvalNetWeights& in = weights;
  EvalNetWeights& w = impl_->w;
  TORCH_CHECK(in.conv_weights.size() == in.conv_biases.size(),
              "as many convolution biases as weights expected");
  for (size_t i = 0; i < in.conv_weights.size(); ++i) {
    w.conv_weights.push_back(copy(in.conv_weights[i], 4, "convolution weight"));
    TORCH_CHECK(w.conv_weights[i].size(2) == w.conv_weights[i].size(3),
                "square convolution kernels expected");
    w.conv_biases.push_back(copy(in.conv_biases[i], 1, "convolution bias"));
  }
  w.padding = in.padding;
  w.fc1_weight = copy(in.fc1_weight, 2, "fc1 weight");
  w.fc1_bias = copy(in.fc1_bias, 1, "fc1 bias");
  w.fc2_weight = copy(in.fc2_weight, 2, "fc2 weight");
  w.fc2_bias = copy(in.fc2_bias, 1, "fc2 bias");
}

OneDnnEvalNet::~OneDnnEvalNet() = default;

torch::Tensor OneDnnEvalNet::Forward(const torch::Tensor& input) {
  TORCH_CHECK(
      input.is_cpu() && input.dim() == 4 && input.size(2) == input.size(3),
      "expected a square CPU image batch [B, C, H, W]");
  const torch::Tensor x = input.to(torch::kFloat).contiguous();
  const int64_t batch = x.size(0);
  auto it = impl_->plans.find(batch);
  if (it == impl_->plans.end()) {
    it = impl_->plans
             .emplace(batch, impl_->MakePlan(batch, x.size(1), x.size(2)))
             .first;
  }
  Impl::Plan& plan = it->second;
  TORCH_CHECK(
      x.size(1) == plan.input.dims()[1] && x.size(2) == plan.input.dims()[2],
      "image shape changed between batches");
  dnnl::stream& stream = Stream();
  memory current(plan.input, Engine(), x.data_ptr());
  for (Impl::Block& b : plan.blocks) {
    if (b.to_conv_src) {
      b.to_conv_src.execute(stream, current, b.conv_src);
      current = b.conv_src;
    }
    b.conv.execute(stream, {{DNNL_ARG_SRC, current},
                            {DNNL_ARG_WEIGHTS, b.weights.mem},
                            {DNNL_ARG_BIAS, b.bias.mem},
                            {DNNL_ARG_DST, b.conv_dst}});
    b.pool.execute(stream,
                   {{DNNL_ARG_SRC, b.conv_dst}, {DNNL_ARG_DST, b.pool_dst}});
    current = b.pool_dst;
  }
  plan.to_features.execute(stream, current, plan.features);
  plan.fc1.Execute(plan.features_flat, plan.hidden);
  torch::Tensor logits = torch::empty(
      {batch, static_cast<int64_t>(plan.logits.dims()[1])}, torch::kFloat);
  plan.fc2.Execute(plan.hidden,
                   memory(plan.logits, Engine(), logits.data_ptr()));
  stream.wait();
  return logits;
}

std::vector<const char*> OneDnnEvalNet::Algorithms(int64_t batch) const {
  std::vector<const char*> names;
  auto it = impl_->plans.find(batch);
  if (it == impl_->plans.end()) return names;
  for (const Impl::Block& b : it->second.blocks) {
    names.push_back(b.winograd ? "winograd" : "direct");
  }
  return names;
}

}  // namespace det::trainer
