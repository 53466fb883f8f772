// Data-parallel training across processes with PyTorch's own distributed
// package (c10d): a TCPStore for the rendezvous (hosted by rank 0) and a
// process group for the collectives: ProcessGroupNCCL when the ranks train on
// GPUs and det-trial was built with NCCL (DET_TRAINER_NCCL), else
// ProcessGroupGloo. Each rank computes gradients on its share of the global
// batch; AverageGradients all-reduces them so every rank takes the same
// optimizer step, as torch.nn.parallel.DistributedDataParallel does.
//
// Tensors may live anywhere: those not on the backend's device (device())
// travel there and back around each collective (Gloo works on CPU tensors;
// NCCL on CUDA tensors).
//
// Threading: one DataParallel per rank, used from that rank's training
// thread only. c10d reports failures as exceptions; this class turns them
// into absl::Status.
#ifndef DET_WORKER_TRAINER_DATA_PARALLEL_H_
#define DET_WORKER_TRAINER_DATA_PARALLEL_H_

#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace det::trainer {

// The collectives' interface: ProcessGroup in libtorch 1.x; from 2.0 the
// process group dispatches to a Backend, which ProcessGroupGloo implements.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

class DataParallel {
 public:
  // Joins the group at `rendezvous` ("host:port"). Rank 0 hosts the
  // TCPStore on that port; others connect to it. Waits at most `timeout`
  // for every rank to arrive. `device` is where this rank trains: a CUDA
  // device selects NCCL in a build with it. FailedPrecondition when the
  // build has no backend for `device` (neither Gloo nor, for CUDA, NCCL).
  static absl::StatusOr<std::unique_ptr<DataParallel>> Join(
      const std::string& rendezvous, int rank, int world_size,
      std::chrono::milliseconds timeout,
      torch::Device device = torch::Device(torch::kCPU));

  // Joins through an existing store (tests host one TCPStore in-process).
  // `gloo_host` is the address this rank's Gloo device binds to.
  static absl::StatusOr<std::unique_ptr<DataParallel>> JoinWithStore(
      c10::intrusive_ptr<c10d::Store> store, const std::string& gloo_host,
      int rank, int world_size, std::chrono::milliseconds timeout);

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // The device whose tensors the backend reduces: CPU for Gloo, the rank's
  // GPU for NCCL.
  torch::Device device() const { return device_; }
  // "gloo" or "nccl", for logs.
  const char* backend() const { return device_.is_cuda() ? "nccl" : "gloo"; }

  // Overwrites `tensors` on every rank with rank 0's values.
  absl::Status Broadcast(std::vector<torch::Tensor> tensors);

  // Sums `tensors` element-wise over ranks, in place (wherever they live).
  absl::Status AllReduceSum(std::vector<torch::Tensor> tensors);

  // Replaces each parameter's gradient by the mean over ranks (parameters
  // without a gradient get a zero one first, so all ranks reduce the same
  // tensors). All gradients travel as one flat buffer.
  absl::Status AverageGradients(const std::vector<torch::Tensor>& params);

 private:
  DataParallel(c10::intrusive_ptr<c10d::Store> store,
               c10::intrusive_ptr<Collectives> group, int rank, int world_size,
               torch::Device device)
      : store_(std::move(store)),
        group_(std::move(group)),
        rank_(rank),
        world_size_(world_size),
        device_(device) {}

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Collectives> group_;
  int rank_;
  int world_size_;
  torch::Device device_;
};

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_DATA_PARALLEL_H_
