#include "master/slurm/slurm_source.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace det::slurm {
namespace {

// How often demand is looked at (submissions, idle workers); job states
// are polled every options.poll_interval.
constexpr absl::Duration kRound = absl::Seconds(1);

}  // namespace

SlurmWorkerSource::SlurmWorkerSource(SlurmOptions options,
                                     std::unique_ptr<CommandRunner> runner)
    : options_(std::move(options)),
      runner_(std::move(runner)),
      client_(runner_.get()),
      provisioner_(options_) {
  thread_ = std::thread([this] { Loop(); });
}

SlurmWorkerSource::~SlurmWorkerSource() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void SlurmWorkerSource::Observe(const Demand& demand) {
  absl::MutexLock l(&mu_);
  demand_ = demand;
  have_demand_ = true;
}

std::vector<master::WorkerSource::Ended> SlurmWorkerSource::TakeEnded() {
  absl::MutexLock l(&mu_);
  std::vector<Ended> out;
  out.swap(ended_);
  return out;
}

void SlurmWorkerSource::Loop() {
  absl::Time last_poll = absl::InfinitePast();
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto stop = [this]()
                      ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), kRound);
      if (stopping_) return;
    }
    absl::Time now = absl::Now();
    bool poll = now - last_poll >= options_.poll_interval;
    if (poll) last_poll = now;
    Round(poll);
  }
}

void SlurmWorkerSource::Round(bool poll) {
  Demand demand;
  {
    absl::MutexLock l(&mu_);
    if (!have_demand_) return;
    demand = demand_;
  }
  const absl::Time now = absl::Now();
  for (const auto& [worker, idle] : demand.idle) {
    provisioner_.WorkerSeen(worker, idle, now);
  }
  const int jobs = provisioner_.JobsToSubmit(
      static_cast<int>(std::min<int64_t>(demand.unplaceable_slots, 1 << 20)));
  for (int i = 0; i < jobs; ++i) {
    absl::StatusOr<std::string> id = client_.Submit(BatchScript(options_));
    if (!id.ok()) {
      std::fprintf(stderr, "master: slurm: sbatch failed: %s\n",
                   std::string(id.status().message()).c_str());
      break;  // tried again next round
    }
    provisioner_.Submitted(*id, now);
    std::fprintf(stderr, "master: slurm: submitted job %s (worker %s)\n",
                 id->c_str(), SlurmProvisioner::WorkerIdFor(*id).c_str());
  }
  for (const std::string& id : provisioner_.IdleJobsToCancel(now)) {
    absl::Status st = client_.Cancel(id);
    std::fprintf(stderr, "master: slurm: cancelling idle job %s%s\n",
                 id.c_str(),
                 st.ok() ? "" : absl::StrCat(": ", st.message()).c_str());
  }
  if (!poll || provisioner_.ActiveJobs().empty()) return;
  auto states = client_.States(provisioner_.ActiveJobs());
  if (!states.ok()) {
    std::fprintf(stderr, "master: slurm: polling jobs: %s\n",
                 std::string(states.status().message()).c_str());
    return;
  }
  std::vector<Ended> ended;
  for (const JobEvent& e : provisioner_.Update(*states)) {
    std::fprintf(stderr, "master: slurm: job %s ended (%s)%s%s\n",
                 e.job_id.c_str(), std::string(JobStateName(e.state)).c_str(),
                 e.expected ? "" : ": ", e.expected ? "" : e.message.c_str());
    if (!e.expected) ended.push_back({e.worker_id, e.message});
  }
  absl::MutexLock l(&mu_);
  for (Ended& e : ended) ended_.push_back(std::move(e));
}

}  // namespace det::slurm
