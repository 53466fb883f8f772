#include "worker/trainer/onednn_conv.h"

#include <optional>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "worker/trainer/onednn_common.h"

namespace det::trainer {
namespace {

using onednn::Allocate;
using onednn::As;
using onednn::Buffer;
using onednn::ConvShape;
using onednn::CopyOut;
using onednn::Engine;
using onednn::memory;
using onednn::Stream;
using onednn::Tag;

memory::desc Any(const memory::dims& dims) {
  return onednn::Desc(dims, Tag::any);
}

// The three Winograd primitives for one shape.
struct Primitives {
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc data_pd;
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights::primitive_desc weights_pd;
  dnnl::convolution_backward_weights weights;
};

std::optional<Primitives> Make(const ConvShape& s) {
  const auto alg = dnnl::algorithm::convolution_winograd;
  const memory::dims stride = {1, 1}, pad = {s.padding, s.padding};
  const memory::desc bias = Any({s.out});
  try {
    Primitives p;
    p.fwd_pd = dnnl::convolution_forward::primitive_desc(
        s.bias ? dnnl::convolution_forward::desc(
                     dnnl::prop_kind::forward_training, alg, Any(s.src()),
                     Any(s.weights()), bias, Any(s.dst()), stride, pad, pad)
               : dnnl::convolution_forward::desc(
                     dnnl::prop_kind::forward_training, alg, Any(s.src()),
                     Any(s.weights()), Any(s.dst()), stride, pad, pad),
        Engine());
    p.data_pd = dnnl::convolution_backward_data::primitive_desc(
        dnnl::convolution_backward_data::desc(alg, Any(s.src()),
                                              Any(s.weights()), Any(s.dst()),
                                              stride, pad, pad),
        Engine(), p.fwd_pd);
    p.weights_pd = dnnl::convolution_backward_weights::primitive_desc(
        s.bias ? dnnl::convolution_backward_weights::desc(
                     alg, Any(s.src()), Any(s.weights()), bias, Any(s.dst()),
                     stride, pad, pad)
               : dnnl::convolution_backward_weights::desc(
                     alg, Any(s.src()), Any(s.weights()), Any(s.dst()), stride,
                     pad, pad),
        Engine(), p.fwd_pd);
    p.fwd = dnnl::convolution_forward(p.fwd_pd);
    p.data = dnnl::convolution_backward_data(p.data_pd);
    p.weights = dnnl::convolution_backward_weights(p.weights_pd);
    return p;
  } catch (const dnnl::error&) {
    return std::nullopt;  // no Winograd for this shape (or this CPU)
  }
}

// The primitives for `s`, made once per thread; nullptr where oneDNN has no
// Winograd for the shape.
const Primitives* For(const ConvShape& s) {
  thread_local absl::flat_hash_map<ConvShape, std::optional<Primitives>> cache;
  auto it = cache.find(s);
  if (it == cache.end()) it = cache.emplace(s, Make(s)).first;
  return it->second ? &*it->second : nullptr;
}

// `bias` is an empty tensor for "no bias" (autograd functions take no
// undefined tensors).
ConvShape ShapeOf(const torch::Tensor& x, const torch::Tensor& weight,
                  const torch::Tensor& bias, int64_t padding) {
  return {x.size(0),      x.size(1), weight.size(0),  x.size(2),
          weight.size(2), padding,   bias.numel() > 0};
}

class WinogradConvFunction
    : public torch::autograd::Function<WinogradConvFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& x,
                               const torch::Tensor& weight,
                               const torch::Tensor& bias, int64_t padding) {
    const ConvShape s = ShapeOf(x, weight, bias, padding);
    const Primitives& p = *For(s);
    Buffer src = As(x, p.fwd_pd.src_desc());
    Buffer w = As(weight, p.fwd_pd.weights_desc());
    Buffer dst = Allocate(p.fwd_pd.dst_desc());
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src.mem},
                                            {DNNL_ARG_WEIGHTS, w.mem},
                                            {DNNL_ARG_DST, dst.mem}};
    Buffer b;
    if (s.bias) {
      b = As(bias, p.fwd_pd.bias_desc());
      args[DNNL_ARG_BIAS] = b.mem;
    }
    p.fwd.execute(Stream(), args);
    torch::Tensor y =
        torch::empty({s.batch, s.out, s.out_side(), s.out_side()},
                     x.options().memory_format(x.suggest_memory_format()));
    CopyOut(dst.mem, y);
    Stream().wait();
    ctx->save_for_backward({x, weight});
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["bias"] = s.bias;
    // The reordered input, for the weights' gradient.
    ctx->saved_data["src"] = src.storage;
    return y;
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const int64_t padding = ctx->saved_data["padding"].toInt();
    const ConvShape s{x.size(0),      x.size(1), weight.size(0), x.size(2),
                      weight.size(2), padding,   has_bias};
    const Primitives& p = *For(s);
    torch::Tensor dy = grads[0];
    if (!dy.is_non_overlapping_and_dense()) dy = dy.contiguous();
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      Buffer diff_dst = As(dy, p.data_pd.diff_dst_desc());
      Buffer w = As(weight, p.data_pd.weights_desc());
      Buffer diff_src = Allocate(p.data_pd.diff_src_desc());
      p.data.execute(Stream(), {{DNNL_ARG_DIFF_DST, diff_dst.mem},
                                {DNNL_ARG_WEIGHTS, w.mem},
                                {DNNL_ARG_DIFF_SRC, diff_src.mem}});
      dx = torch::empty_like(x);
      CopyOut(diff_src.mem, dx);
    }
    if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
      // The forward's input as the forward had it (reordered, or x itself)
      // when the layouts agree, else anew.
      const torch::Tensor src_storage = ctx->saved_data["src"].toTensor();
      Buffer src =
          p.weights_pd.src_desc() == p.fwd_pd.src_desc()
              ? Buffer{src_storage, memory(p.fwd_pd.src_desc(), Engine(),
                                           src_storage.data_ptr())}
              : As(x, p.weights_pd.src_desc());
      Buffer diff_dst = As(dy, p.weights_pd.diff_dst_desc());
      Buffer diff_w = Allocate(p.weights_pd.diff_weights_desc());
      std::unordered_map<int, memory> args = {
          {DNNL_ARG_SRC, src.mem},
          {DNNL_ARG_DIFF_DST, diff_dst.mem},
          {DNNL_ARG_DIFF_WEIGHTS, diff_w.mem}};
      Buffer diff_b;
      if (has_bias) {
        diff_b = Allocate(p.weights_pd.diff_bias_desc());
        args[DNNL_ARG_DIFF_BIAS] = diff_b.mem;
      }
      p.weights.execute(Stream(), args);
      dw = torch::empty_like(weight);
      CopyOut(diff_w.mem, dw);
      if (has_bias) {
        db = torch::empty({s.out}, weight.options());
        CopyOut(diff_b.mem, db);
      }
    }
    Stream().wait();
    return {dx, dw, db, torch::Tensor()};
  }
};

}  // namespace

bool WinogradSuits(int64_t in_channels, int64_t kernel) {
  if (kernel != 3 || in_channels < 32) return false;
  // Whether this CPU has oneDNN's Winograd at all (AVX-512): one probe.
  static const bool available =
      Make({16, 32, 32, 8, 3, 1, /*bias=*/true}).has_value();
  return available;
}

std::optional<torch::Tensor> WinogradConv2d(const torch::Tensor& x,
                                            const torch::Tensor& weight,
                                            const torch::Tensor& bias,
                                            int64_t padding) {
  if (!x.is_cpu() || x.scalar_type() != torch::kFloat || x.dim() != 4 ||
      x.size(2) != x.size(3) || weight.scalar_type() != torch::kFloat) {
    return std::nullopt;
  }
  const torch::Tensor b =
      bias.defined() ? bias : torch::empty({0}, weight.options());
  if (For(ShapeOf(x, weight, b, padding)) == nullptr) return std::nullopt;
  return WinogradConvFunction::apply(x, weight, b, padding);
}

}  // namespace det::trainer
