// Pure helpers that turn an experiment's config and a trial's record into
// what a worker needs: lengths in batches, validation points, the
// TrialSpec. No state, no locking.
#ifndef DET_MASTER_CORE_SPEC_BUILDER_H_
#define DET_MASTER_CORE_SPEC_BUILDER_H_

#include <cstdint>
#include <map>
#include <string>

#include "common/config.h"
#include "det/v1/common.pb.h"
#include "master/searcher/searcher.h"
#include "master/store/store.h"

namespace det::master {

// Key under which a worker process's last processed seq is stored.
std::string SeqKey(const std::string& worker_id,
                   const std::string& incarnation);

// The host part of a gRPC peer string ("ipv4:10.0.0.5:41234" -> "10.0.0.5",
// "ipv6:[::1]:41234" -> "::1"), for addresses other workers can reach.
std::string HostOfPeer(const std::string& peer);

// A rendezvous port for a multi-slot trial's run, spread over 20000-39999
// so that successive runs of one trial use different ports.
int RendezvousPort(int64_t trial_id, int32_t run_id);

// checkpoint_storage.host_path (or `default_root` when empty) joined with
// storage_path.
std::string CheckpointDir(const ExperimentConfig& config,
                          const std::string& default_root);

// Records the searcher's length for the trial: target_batches, the
// searcher's validation points in batches (ascending, the final one
// included) and the checkpoint period.
void SetTrialLength(const ExperimentConfig& config, int64_t records_per_epoch,
                    const searcher::ValidateAfter& op, store::TrialRecord* rec);

// For each of the record's validation points (batches), the searcher's
// length in units that it stands for: the largest length whose batches do
// not exceed it, so a rung is entered once its length has been trained.
std::map<int64_t, int64_t> UnitsAtBatches(const ExperimentConfig& config,
                                          int64_t records_per_epoch,
                                          const store::TrialRecord& rec);

// The spec for the trial's next run. Validation points are the searcher's
// plus every min_validation_period.
void BuildSpec(const store::ExperimentRecord& exp,
               const ExperimentConfig& config, const store::TrialRecord& rec,
               const std::string& checkpoint_dir, int64_t records_per_epoch,
               v1::TrialSpec* spec);

}  // namespace det::master

#endif  // DET_MASTER_CORE_SPEC_BUILDER_H_
