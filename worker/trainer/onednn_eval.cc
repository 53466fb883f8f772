#include "worker/trainer/onednn_eval.h"

#include <ATen/Context.h>

#include <chrono>
#include <cstring>
#include <dnnl.hpp>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace det::trainer {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

// One convolution's shape (square images and kernels, stride 1): the key
// of the timed algorithm choice.
struct ConvShape {
  int64_t batch, in, out, side, kernel, padding;

  int64_t out_side() const { return side + 2 * padding - kernel + 1; }

  bool operator==(const ConvShape& o) const {
    return batch == o.batch && in == o.in && out == o.out && side == o.side &&
           kernel == o.kernel && padding == o.padding;
  }
  template <typename H>
  friend H AbslHashValue(H h, const ConvShape& s) {
    return H::combine(std::move(h), s.batch, s.in, s.out, s.side, s.kernel,
                      s.padding);
  }
};

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

memory::desc Plain(const memory::dims& dims, Tag tag) {
  return memory::desc(dims, Dt::f32, tag);
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
    const dnnl::engine& engine, dnnl::algorithm algorithm, const ConvShape& s) {
  const memory::dim p = s.padding;
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, algorithm,
      Plain({s.batch, s.in, s.side, s.side}, Tag::any),
      Plain({s.out, s.in, s.kernel, s.kernel}, Tag::any),
      Plain({s.out}, Tag::x),
      Plain({s.batch, s.out, s.out_side(), s.out_side()}, Tag::any), {1, 1},
      {p, p}, {p, p});
  try {
    return dnnl::convolution_forward::primitive_desc(desc, WithRelu(), engine);
  } catch (const dnnl::error&) {
    return std::nullopt;
  }
}

// Seconds per run of the convolution alone on zeroed buffers (zeros: no
// denormals, and the work does not depend on the values): the best of 3
// after one warm-up run.
double TimeConv(const dnnl::engine& engine, dnnl::stream& stream,
                const dnnl::convolution_forward::primitive_desc& pd) {
  auto zeroed = [&](const memory::desc& md) {
    memory m(md, engine);
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
dnnl::convolution_forward::primitive_desc PickConv(const dnnl::engine& engine,
                                                   dnnl::stream& stream,
                                                   const ConvShape& shape,
                                                   ConvChoice choice,
                                                   bool* winograd) {
  auto direct = ConvDesc(engine, dnnl::algorithm::convolution_direct, shape);
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
  auto wino = ConvDesc(engine, dnnl::algorithm::convolution_winograd, shape);
  if (!wino) return *direct;
  if (choice == ConvChoice::kWinograd) {
    *winograd = true;
    return *wino;
  }
  std::optional<bool> known = Choices().Find(shape);
  if (!known) {
    known = TimeConv(engine, stream, *wino) < TimeConv(engine, stream, *direct);
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
    std::optional<dnnl::reorder> to_conv_src;  // when formats differ
    memory conv_src;                           // its target
    dnnl::convolution_forward conv;
    memory weights, bias, conv_dst;
    dnnl::pooling_forward pool;
    memory pool_dst;
  };
  // A fully connected layer [batch, in] -> [batch, out], src and dst plain.
  struct Dense {
    dnnl::inner_product_forward::primitive_desc pd;
    dnnl::inner_product_forward layer;
    memory weights, bias;

    void Execute(dnnl::stream& stream, const memory& src,
                 const memory& dst) const {
      layer.execute(stream, {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_WEIGHTS, weights},
                             {DNNL_ARG_BIAS, bias},
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
  // `t` (contiguous, in the layout `user` describes) copied into a new
  // buffer of layout `want`.
  memory Prepared(const torch::Tensor& t, const memory::desc& user,
                  const memory::desc& want);
  Dense MakeDense(int64_t batch, const torch::Tensor& weight,
                  const torch::Tensor& bias, bool relu);

  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  EvalNetWeights w;  // contiguous float copies
  ConvChoice choice = ConvChoice::kTimed;
  absl::flat_hash_map<int64_t, Plan> plans;  // by batch size
};

memory OneDnnEvalNet::Impl::Prepared(const torch::Tensor& t,
                                     const memory::desc& user,
                                     const memory::desc& want) {
  memory from(user, engine, t.data_ptr());
  memory to(want, engine);
  dnnl::reorder(from, to).execute(stream, from, to);
  return to;
}

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
                                                            engine)
              : dnnl::inner_product_forward::primitive_desc(desc, engine);
  d.layer = dnnl::inner_product_forward(d.pd);
  d.weights = Prepared(weight, Plain({out, in}, Tag::oi), d.pd.weights_desc());
  d.bias = Prepared(bias, Plain({out}, Tag::x), d.pd.bias_desc());
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
    const auto pd = PickConv(engine, stream, shape, choice, &b.winograd);
    if (pd.src_desc() != previous) {
      b.conv_src = memory(pd.src_desc(), engine);
      b.to_conv_src.emplace(dnnl::reorder::primitive_desc(
          engine, previous, engine, pd.src_desc()));
    }
    b.conv = dnnl::convolution_forward(pd);
    b.weights = Prepared(
        weight,
        Plain({shape.out, shape.in, shape.kernel, shape.kernel}, Tag::oihw),
        pd.weights_desc());
    b.bias =
        Prepared(w.conv_biases[i], Plain({shape.out}, Tag::x), pd.bias_desc());
    b.conv_dst = memory(pd.dst_desc(), engine);

    side = shape.out_side() / 2;  // floor, as torch's max_pool2d
    channels = shape.out;
    dnnl::pooling_forward::desc pool(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max,
        pd.dst_desc(), Plain({batch, channels, side, side}, Tag::any),
        /*strides=*/{2, 2}, /*kernel=*/{2, 2}, /*padding_l=*/{0, 0},
        /*padding_r=*/{0, 0});
    dnnl::pooling_forward::primitive_desc pool_pd(pool, engine);
    b.pool = dnnl::pooling_forward(pool_pd);
    b.pool_dst = memory(pool_pd.dst_desc(), engine);
    previous = pool_pd.dst_desc();
    plan.blocks.push_back(std::move(b));
  }

  const memory::desc features = Plain({batch, channels, side, side}, Tag::nchw);
  plan.to_features = dnnl::reorder(
      dnnl::reorder::primitive_desc(engine, previous, engine, features));
  plan.features = memory(features, engine);
  TORCH_CHECK(w.fc1_weight.size(1) == channels * side * side, "fc1 expects ",
              w.fc1_weight.size(1), " features, the blocks give ",
              channels * side * side);
  plan.fc1 = MakeDense(batch, w.fc1_weight, w.fc1_bias, /*relu=*/true);
  plan.features_flat =
      memory(plan.fc1.pd.src_desc(), engine, plan.features.get_data_handle());
  plan.hidden = memory(plan.fc1.pd.dst_desc(), engine);
  plan.fc2 = MakeDense(batch, w.fc2_weight, w.fc2_bias, /*relu=*/false);
  plan.logits = plan.fc2.pd.dst_desc();
  stream.wait();  // the weight reorders
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
  const dnnl::engine& engine = impl_->engine;
  dnnl::stream& stream = impl_->stream;
  memory current(plan.input, engine, x.data_ptr());
  for (Impl::Block& b : plan.blocks) {
    if (b.to_conv_src) {
      b.to_conv_src->execute(stream, current, b.conv_src);
      current = b.conv_src;
    }
    b.conv.execute(stream, {{DNNL_ARG_SRC, current},
                            {DNNL_ARG_WEIGHTS, b.weights},
                            {DNNL_ARG_BIAS, b.bias},
                            {DNNL_ARG_DST, b.conv_dst}});
    b.pool.execute(stream,
                   {{DNNL_ARG_SRC, b.conv_dst}, {DNNL_ARG_DST, b.pool_dst}});
    current = b.pool_dst;
  }
  plan.to_features.execute(stream, current, plan.features);
  plan.fc1.Execute(stream, plan.features_flat, plan.hidden);
  torch::Tensor logits = torch::empty(
      {batch, static_cast<int64_t>(plan.logits.dims()[1])}, torch::kFloat);
  plan.fc2.Execute(stream, plan.hidden,
                   memory(plan.logits, engine, logits.data_ptr()));
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
