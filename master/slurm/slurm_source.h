// The Slurm resource manager: a WorkerSource (master/core/worker_source.h)
// that submits det-worker jobs when queued trials need slots no connected
// worker has, cancels the jobs of workers idle past idle_timeout, and
// reports jobs that Slurm ended (failed, cancelled by someone else, out of
// time) so the master restarts their trials elsewhere at once. Slurm's
// commands run on this object's own thread, never under the master's lock.
#ifndef DET_MASTER_SLURM_SLURM_SOURCE_H_
#define DET_MASTER_SLURM_SLURM_SOURCE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "master/core/worker_source.h"
#include "master/slurm/slurm.h"

namespace det::slurm {

class SlurmWorkerSource : public master::WorkerSource {
 public:
  // `runner` runs sbatch, squeue, sacct and scancel.
  SlurmWorkerSource(SlurmOptions options,
                    std::unique_ptr<CommandRunner> runner);
  ~SlurmWorkerSource() override;  // stops the thread; leaves jobs running

  void Observe(const Demand& demand) override;
  std::vector<Ended> TakeEnded() override;

 private:
  void Loop();
  // One round: submit, note workers, cancel idle ones, poll states.
  void Round(bool poll);

  const SlurmOptions options_;
  std::unique_ptr<CommandRunner> runner_;
  SlurmClient client_;
  SlurmProvisioner provisioner_;  // thread only

  absl::Mutex mu_;
  Demand demand_ ABSL_GUARDED_BY(mu_);
  bool have_demand_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Ended> ended_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace det::slurm

#endif  // DET_MASTER_SLURM_SLURM_SOURCE_H_
