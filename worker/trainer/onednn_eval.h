// FrozenCnn's evaluation forward on the CPU, run as oneDNN primitives
// directly instead of through libtorch's operators, for what those do not
// expose:
//   - the convolution algorithm: oneDNN's Winograd convolution (F(4x4, 3x3))
//     computes a 3x3 layer with 32 or more input channels in about half the
//     time of the direct one on AVX-512 machines. Each layer takes whichever
//     of the two ran faster on this machine for its shape (timed once per
//     process, as cuDNN's benchmark mode does), or the direct one under
//     deterministic algorithms (DET_DETERMINISTIC=1), so that repeated runs
//     agree bit for bit;
//   - ReLU fused into the convolution and into the hidden fully connected
//     layer as post-ops (ReLU before the max pooling: the two commute);
//   - the fully connected layers as oneDNN inner products (brgemm), about
//     1.3x OpenBLAS's sgemm on the seed model's 4096x512 layer.
// Activations stay in oneDNN's blocked layouts from the first convolution to
// the last pooling; the features are reordered once to NCHW, the order
// flatten() gives, before the fully connected layers. Winograd's transforms
// round differently from the direct sum: outputs agree to about 1e-6
// relative.
//
// Built only with DET_TRAINER_ONEDNN (Debian's libdnnl-dev: the oneDNN that
// libtorch itself links); FrozenCnn uses libtorch's operators otherwise.
//
// Threading: not thread-safe (plans are made per batch size on first use);
// one instance per validation, used from one thread. oneDNN runs on
// libtorch's OpenMP threads.
#ifndef DET_WORKER_TRAINER_ONEDNN_EVAL_H_
#define DET_WORKER_TRAINER_ONEDNN_EVAL_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace det::trainer {

// The network's parameters, float tensors on the CPU.
struct EvalNetWeights {
  // Block i: convolution (weight [out, in, k, k], bias [out]), stride 1,
  // `padding` on each side; ReLU; 2x2 max pooling, stride 2.
  std::vector<torch::Tensor> conv_weights, conv_biases;
  int64_t padding = 0;
  // Then flatten -> fc1 ([hidden, features]) -> ReLU -> fc2 ([classes,
  // hidden]).
  torch::Tensor fc1_weight, fc1_bias, fc2_weight, fc2_bias;
};

// How each convolution's algorithm is chosen.
enum class ConvChoice {
  kTimed,     // the faster of Winograd and direct here (direct when
              // deterministic algorithms are asked for)
  kDirect,    // always direct
  kWinograd,  // Winograd wherever oneDNN has it for the shape (tests)
};

class OneDnnEvalNet {
 public:
  explicit OneDnnEvalNet(const EvalNetWeights& weights,
                         ConvChoice choice = ConvChoice::kTimed);
  ~OneDnnEvalNet();
  OneDnnEvalNet(const OneDnnEvalNet&) = delete;
  OneDnnEvalNet& operator=(const OneDnnEvalNet&) = delete;

  // x: float [B, C, H, W] on the CPU -> logits, float [B, classes].
  torch::Tensor Forward(const torch::Tensor& x);

  // The algorithm each convolution used at batch size `batch` ("winograd"
  // or "direct"), once Forward has run at that size; empty before.
  std::vector<const char*> Algorithms(int64_t batch) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_ONEDNN_EVAL_H_
