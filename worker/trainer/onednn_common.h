// What onednn_eval.cc and onednn_conv.cc share: the engine and stream,
// oneDNN memory over libtorch tensors, and a convolution's shape. Internal
// to the trainer; built only with DET_TRAINER_ONEDNN.
#ifndef DET_WORKER_TRAINER_ONEDNN_COMMON_H_
#define DET_WORKER_TRAINER_ONEDNN_COMMON_H_

#include <torch/torch.h>

#include <cstdint>
#include <dnnl.hpp>
#include <utility>

namespace det::trainer::onednn {

using dnnl::memory;
using Tag = memory::format_tag;

// The CPU engine (one per process) and this thread's stream (ranks run as
// threads in tests).
const dnnl::engine& Engine();
dnnl::stream& Stream();

// A float32 layout of `dims` in format `tag` (Tag::any: the primitive's
// choice).
memory::desc Desc(const memory::dims& dims, Tag tag);

// A float tensor's own layout, whatever its strides.
memory::desc Described(const torch::Tensor& t);

// A buffer in some oneDNN layout whose bytes libtorch owns (its allocator
// reuses memory across steps, where fresh allocations would fault pages in
// every time). `storage` keeps `mem`'s bytes alive.
struct Buffer {
  torch::Tensor storage;
  memory mem;
};

Buffer Allocate(const memory::desc& desc);

// Float tensor `t` as memory of layout `want`: the tensor itself when its
// layout already is that, else a reordered copy.
Buffer As(const torch::Tensor& t, const memory::desc& want);

// Copies `from` into float tensor `to` (any strides).
void CopyOut(memory from, const torch::Tensor& to);

// A square convolution with stride 1 (square images): a key for caches.
struct ConvShape {
  int64_t batch, in, out, side, kernel, padding;
  bool bias = true;

  int64_t out_side() const { return side + 2 * padding - kernel + 1; }
  memory::dims src() const { return {batch, in, side, side}; }
  memory::dims weights() const { return {out, in, kernel, kernel}; }
  memory::dims dst() const { return {batch, out, out_side(), out_side()}; }

  bool operator==(const ConvShape& o) const {
    return batch == o.batch && in == o.in && out == o.out && side == o.side &&
           kernel == o.kernel && padding == o.padding && bias == o.bias;
  }
  template <typename H>
  friend H AbslHashValue(H h, const ConvShape& s) {
    return H::combine(std::move(h), s.batch, s.in, s.out, s.side, s.kernel,
                      s.padding, s.bias);
  }
};

}  // namespace det::trainer::onednn

#endif  // DET_WORKER_TRAINER_ONEDNN_COMMON_H_
