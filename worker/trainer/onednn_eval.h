// FrozenCnn's evaluation forward on the CPU as oneDNN primitives, for what
// libtorch's operators do not expose: a Winograd or direct algorithm per
// convolution (whichever ran faster here, timed once per process; the
// direct one under DET_DETERMINISTIC=1), ReLU fused as a post-op, and the
// fully connected layers as oneDNN inner products. Activations stay in
// oneDNN's blocked layouts until the last pooling. Outputs agree with
// libtorch's to about 1e-6 relative (bench/results/trainer.md).
//
// Built only with DET_TRAINER_ONEDNN (Debian's libdnnl-dev, the oneDNN that
// libtorch links). Not thread-safe: one instance per validation, one
// thread; oneDNN runs on libtorch's OpenMP threads.
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
