// A source of workers beyond those started by hand: a resource manager
// (Slurm: master/slurm/slurm_source.h) that starts workers when queued
// trials need slots and stops them when idle. The master tells it what it
// needs and hears back which of its workers ended without a clean exit.
// Implementations do their slow work (sbatch, squeue) on their own thread:
// both calls are made under the master's lock and must return at once.
#ifndef DET_MASTER_CORE_WORKER_SOURCE_H_
#define DET_MASTER_CORE_WORKER_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace det::master {

class WorkerSource {
 public:
  struct Demand {
    // Slots that queued trials ask for and connected workers cannot give.
    int64_t unplaceable_slots = 0;
    // Connected workers, idle (no trial holds a slot) or not.
    std::map<std::string, bool> idle;
    absl::Time now;
  };
  struct Ended {
    std::string worker_id;
    std::string message;  // for the experiments whose trials it ran
  };
  virtual ~WorkerSource() = default;
  // After every scheduling pass of the ticker.
  virtual void Observe(const Demand& demand) = 0;
  // Workers whose jobs ended on their own (failed, cancelled by someone
  // else, out of time) since the last call: the master declares them lost
  // now rather than after agent_timeout.
  virtual std::vector<Ended> TakeEnded() = 0;
};

}  // namespace det::master

#endif  // DET_MASTER_CORE_WORKER_SOURCE_H_
