// Placement: what the master sends a worker to start a trial. Pure
// helpers here; Master's queueing and placing (placement.cc) use them.
//
// The master owns each decision about a run: its slots (the scheduler),
// its length (trial_lengths.h), where its checkpoints live and which
// checkpoints it may restore from, newest first. The worker only checks
// the candidates' files and takes the newest intact one.
#ifndef DET_MASTER_CORE_PLACEMENT_H_
#define DET_MASTER_CORE_PLACEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "det/v1/common.pb.h"
#include "master/checkpoints/retention.h"
#include "master/store/store.h"

namespace det::master {

// A rendezvous port for a multi-slot trial's run, spread over 20000-39999
// so that successive runs of one trial use different ports.
int RendezvousPort(int64_t trial_id, int32_t run_id);

// How many checkpoints a restarted run is offered to restore from (and
// garbage collection keeps for every live trial).
inline constexpr size_t kRestoreCandidates = 5;

// Where a run's checkpoints go. type directory: container_path, the same
// path on every machine. shared_fs: the worker's own checkpoint root when
// it gave one (the shared storage mounted elsewhere on that machine), else
// checkpoint_storage.host_path (or `default_root` when empty) joined with
// storage_path.
std::string CheckpointDir(const CheckpointStorageConfig& storage,
                          const std::string& default_root,
                          const std::string& worker_root = "");
inline std::string CheckpointDir(const ExperimentConfig& config,
                                 const std::string& default_root,
                                 const std::string& worker_root = "") {
  return CheckpointDir(config.checkpoint_storage, default_root, worker_root);
}

// A stored checkpoint as the retention rule sees it (no metric attached).
checkpoints::CheckpointInfo CheckpointInfoOf(const v1::Checkpoint& c);

// checkpoints::Newer for stored checkpoints: the order of "latest" that the
// trial's latest_checkpoint, its restore candidates and GC all share.
bool NewerCheckpoint(const v1::Checkpoint& a, const v1::Checkpoint& b);

// The checkpoints a restarted run may restore from: the newest few
// (NewerCheckpoint), newest first (a few are enough to get past a corrupt
// one).
std::vector<v1::Checkpoint> RestoreCandidates(
    std::vector<v1::Checkpoint> checkpoints);

// The spec for the trial's next run, less what differs per worker
// (checkpoint_dir, first_rank, rendezvous).
void BuildSpec(const store::ExperimentRecord& exp,
               const ExperimentConfig& config, const store::TrialRecord& rec,
               int64_t records_per_epoch,
               const std::vector<v1::Checkpoint>& restore_candidates,
               v1::TrialSpec* spec);

}  // namespace det::master

#endif  // DET_MASTER_CORE_PLACEMENT_H_
