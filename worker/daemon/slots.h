// What this worker offers: one slot per NVIDIA GPU when there are GPUs,
// else CPU slots that each get a share of the cores. GPUs are found without
// CUDA libraries: /proc/driver/nvidia/gpus (the kernel driver) first, then
// `nvidia-smi -L`.
#ifndef DET_WORKER_DAEMON_SLOTS_H_
#define DET_WORKER_DAEMON_SLOTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "det/v1/common.pb.h"

namespace det::worker {

// GPU model names in PCI bus order (the order CUDA uses with
// CUDA_DEVICE_ORDER=PCI_BUS_ID); empty when there are none.
std::vector<std::string> DetectGpus();

// Model names from `nvidia-smi -L` output ("GPU 0: NAME (UUID: ...)").
std::vector<std::string> ParseNvidiaSmiList(const std::string& text);

// Model name from a /proc/driver/nvidia/gpus/*/information file ("Model:
// NAME" line); empty when absent.
std::string ParseNvidiaProcInformation(const std::string& text);

// The slots to offer. `requested` 0 means automatic: every GPU, else one CPU
// slot. With GPUs and `requested` > 0: the first `requested` GPUs; when
// there are fewer GPUs than that, `requested` CPU slots instead, with a
// note saying so in *note (scripts written for CPU machines keep working on
// a machine with one GPU). `cpu_only` ignores GPUs. Slot ids are 0..n-1; for
// GPU slots the id is also the CUDA device index. Fails only for a negative
// `requested`.
absl::StatusOr<std::vector<v1::Slot>> MakeSlots(
    int requested, bool cpu_only, const std::vector<std::string>& gpus,
    std::string* note = nullptr);

// Cores this process may run on (its CPU affinity), at least 1.
int UsableCores();

// Threads for a process holding `held` of `total` CPU slots: its share of
// the cores, at least 1.
int ThreadsFor(int held, int total, int cores);

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_SLOTS_H_
