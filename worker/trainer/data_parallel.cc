#include "worker/trainer/data_parallel.h"

#include <cstdlib>
#include <exception>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef DET_TRAINER_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef DET_TRAINER_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace det::trainer {
namespace {

absl::Status FromException(const std::string& what, const std::exception& e) {
  return absl::UnavailableError(absl::StrCat(what, ": ", e.what()));
}

absl::Status Wait(c10::intrusive_ptr<c10d::Work> work, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    return FromException(what, e);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Join(
    const std::string& rendezvous, int rank, int world_size,
    std::chrono::milliseconds timeout, torch::Device device) {
  const size_t colon = rendezvous.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(rendezvous.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rendezvous '", rendezvous, "': expected host:port of rank 0's store"));
  }
  const std::string host = rendezvous.substr(0, colon);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<uint16_t>(port);
    opts.isServer = rank == 0;
    opts.numWorkers = world_size;
    opts.waitWorkers = true;
    opts.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(host, opts);
  } catch (const std::exception& e) {
    return FromException(
        absl::StrCat("rank ", rank, ": rendezvous at ", rendezvous), e);
  }
#ifdef DET_TRAINER_NCCL
  if (device.is_cuda()) {
    try {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>("det", store);
      auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          prefixed, rank, world_size, options);
      return std::unique_ptr<DataParallel>(
          new DataParallel(store, group, rank, world_size, device));
    } catch (const std::exception& e) {
      return FromException(
          absl::StrCat("rank ", rank, ": joining the NCCL group of ",
                       world_size),
          e);
    }
  }
#endif
  // Gloo (CPU tensors; a GPU rank's tensors travel to the CPU and back).
  // Its device must bind an address the other ranks reach: loopback when
  // the whole group is on this machine, else this host's address (or the
  // interface the operator names, as with PyTorch).
  std::string gloo_host;
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      ifname && *ifname) {
    gloo_host = std::string("if:") + ifname;
  } else if (host == "127.0.0.1" || host == "localhost" || host == "::1") {
    gloo_host = "127.0.0.1";
  }
  return JoinWithStore(store, gloo_host, rank, world_size, timeout);
}

#ifndef DET_TRAINER_GLOO
absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::JoinWithStore(
    c10::intrusive_ptr<c10d::Store>, const std::string&, int, int world_size,
    std::chrono::milliseconds) {
  return absl::FailedPreconditionError(absl::StrCat(
      "data-parallel training over ", world_size,
      " slots needs c10d's Gloo backend (or, for GPU slots, NCCL), and this "
      "det-trial was built without them (DET_TRAINER_GLOO=OFF: the libtorch "
      "it was built against has no Gloo headers; DET_TRAINER_NCCL=OFF or a "
      "CPU slot); use slots_per_trial 1 or such a build"));
}
#else
absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::JoinWithStore(
    c10::intrusive_ptr<c10d::Store> store, const std::string& gloo_host,
    int rank, int world_size, std::chrono::milliseconds timeout) {
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (gloo_host.rfind("if:", 0) == 0) {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(
              gloo_host.substr(3)));
    } else if (!gloo_host.empty()) {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(gloo_host));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 1;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("det", store);
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        prefixed, rank, world_size, options);
    return std::unique_ptr<DataParallel>(new DataParallel(
        store, group, rank, world_size, torch::Device(torch::kCPU)));
  } catch (const std::exception& e) {
    return FromException(
        absl::StrCat("rank ", rank, ": joining the Gloo group of ", world_size),
        e);
  }
}
#endif  // DET_TRAINER_GLOO

absl::Status DataParallel::Broadcast(std::vector<torch::Tensor> tensors) {
  // One flat buffer: a single collective instead of one per tensor.
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat = {
      torch::cat([&] {
        std::vector<torch::Tensor> parts;
        for (auto& t : tensors)
          parts.push_back(t.detach().reshape({-1}).to(torch::kFloat));
        return parts;
      }())
          .to(device_)};
  c10d::BroadcastOptions opts;
  opts.rootRank = 0;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = group_->broadcast(flat, opts);
  } catch (const std::exception& e) {
    return FromException("broadcast", e);
  }
  if (absl::Status s = Wait(work, "broadcast"); !s.ok()) return s;
  int64_t offset = 0;
  for (auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(flat[0].narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
  return absl::OkStatus();
}

absl::Status DataParallel::AllReduceSum(std::vector<torch::Tensor> tensors) {
  // Tensors elsewhere than the backend's device are reduced as copies there.
  std::vector<torch::Tensor> here;
  for (const torch::Tensor& t : tensors) here.push_back(t.to(device_));
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = group_->allreduce(here);
  } catch (const std::exception& e) {
    return FromException("allreduce", e);
  }
  if (absl::Status s = Wait(work, "allreduce"); !s.ok()) return s;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!here[i].is_same(tensors[i])) tensors[i].copy_(here[i]);
  }
  return absl::OkStatus();
}

absl::Status DataParallel::AverageGradients(
    const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad().reshape({-1}));
  }
  std::vector<torch::Tensor> flat = {torch::cat(grads)};
  if (absl::Status s = AllReduceSum(flat); !s.ok()) return s;
  // Gloo has no AVG reduction; DDP likewise divides the summed bucket.
  // (All on the gradients' device: AllReduceSum brought the sum back.)
  flat[0].div_(world_size_);
  int64_t offset = 0;
  for (const torch::Tensor& p : params) {
    const int64_t n = p.numel();
    p.grad().copy_(flat[0].narrow(0, offset, n).view_as(p.grad()));
    offset += n;
  }
  return absl::OkStatus();
}

}  // namespace det::trainer
