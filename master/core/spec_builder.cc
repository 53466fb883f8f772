#include "master/core/spec_builder.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace det::master {
namespace {

int64_t BatchSize(const store::TrialRecord& rec) {
  return GlobalBatchSize(FromProto(rec.trial.hparams()));
}

// At most this many min_validation_period points per trial, so a tiny
// period on a long trial cannot make a huge spec.
constexpr int kMaxPeriodicValidations = 10000;

}  // namespace

std::string SeqKey(const std::string& worker_id,
                   const std::string& incarnation) {
  return absl::StrCat(worker_id, "/", incarnation);
}

std::string HostOfPeer(const std::string& peer) {
  std::string p = peer;
  for (const char* prefix : {"ipv4:", "ipv6:"}) {
    if (p.rfind(prefix, 0) == 0) p = p.substr(std::string(prefix).size());
  }
  if (!p.empty() && p.front() == '[') {
    size_t close = p.find(']');
    return close == std::string::npos ? p : p.substr(1, close - 1);
  }
  size_t colon = p.rfind(':');
  return colon == std::string::npos ? p : p.substr(0, colon);
}

int RendezvousPort(int64_t trial_id, int32_t run_id) {
  return 20000 + static_cast<int>((trial_id * 7919 + run_id * 104729) % 20000);
}

std::string CheckpointDir(const ExperimentConfig& config,
                          const std::string& default_root) {
  const CheckpointStorageConfig& cs = config.checkpoint_storage;
  std::string dir = cs.host_path.empty() ? default_root : cs.host_path;
  if (!cs.storage_path.empty()) {
    if (cs.storage_path.front() == '/') return cs.storage_path;
    dir = absl::StrCat(dir, "/", cs.storage_path);
  }
  return dir;
}

void SetTrialLength(const ExperimentConfig& config, int64_t records_per_epoch,
                    const searcher::ValidateAfter& op,
                    store::TrialRecord* rec) {
  Unit unit = config.searcher.max_length.unit;
  int64_t bs = BatchSize(*rec);
  int64_t target = ToBatches(unit, op.length, records_per_epoch, bs);
  std::set<int64_t> points;
  for (int64_t u : op.validation_points) {
    int64_t b = ToBatches(unit, u, records_per_epoch, bs);
    if (b > 0 && b < target) points.insert(b);
  }
  points.insert(target);
  rec->trial.set_target_batches(target);
  rec->validation_points.assign(points.begin(), points.end());
  rec->checkpoint_period = 0;
  if (config.min_checkpoint_period) {
    rec->checkpoint_period =
        ToBatches(config.min_checkpoint_period->unit,
                  config.min_checkpoint_period->value, records_per_epoch, bs);
  }
}

std::map<int64_t, int64_t> UnitsAtBatches(const ExperimentConfig& config,
                                          int64_t records_per_epoch,
                                          const store::TrialRecord& rec) {
  Unit unit = config.searcher.max_length.unit;
  int64_t bs = BatchSize(rec);
  std::map<int64_t, int64_t> out;
  for (int64_t b : rec.validation_points) {
    int64_t u =
        std::max<int64_t>(FromBatches(unit, b, records_per_epoch, bs), 0);
    while (ToBatches(unit, u + 1, records_per_epoch, bs) <= b) u++;
    while (u > 0 && ToBatches(unit, u, records_per_epoch, bs) > b) u--;
    out[b] = u;
  }
  return out;
}

void BuildSpec(const store::ExperimentRecord& exp,
               const ExperimentConfig& config, const store::TrialRecord& rec,
               const std::string& checkpoint_dir, int64_t records_per_epoch,
               v1::TrialSpec* spec) {
  const v1::Trial& t = rec.trial;
  spec->set_experiment_id(exp.experiment.id());
  spec->set_trial_id(t.id());
  spec->set_run_id(rec.run_id);
  *spec->mutable_hparams() = t.hparams();
  spec->set_seed(t.seed());
  spec->set_target_batches(t.target_batches());
  std::set<int64_t> points(rec.validation_points.begin(),
                           rec.validation_points.end());
  if (config.min_validation_period) {
    int64_t period = ToBatches(config.min_validation_period->unit,
                               config.min_validation_period->value,
                               records_per_epoch, BatchSize(rec));
    if (period > 0) {
      int n = 0;
      for (int64_t b = period;
           b < t.target_batches() && n < kMaxPeriodicValidations;
           b += period, n++) {
        points.insert(b);
      }
    }
  }
  for (int64_t b : points) spec->add_validation_points(b);
  spec->set_checkpoint_period(rec.checkpoint_period);
  spec->set_checkpoint_dir(checkpoint_dir);
  spec->set_restore_uuid(t.latest_checkpoint().uuid());
  ToProto(config.data, spec->mutable_data());
  spec->set_records_per_epoch(records_per_epoch);
  spec->set_entrypoint(config.entrypoint);
  spec->set_context(exp.context);
  spec->set_world_size(static_cast<int32_t>(config.resources.slots_per_trial));
}

}  // namespace det::master
