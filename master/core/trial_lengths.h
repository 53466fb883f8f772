// Lengths: the searcher speaks in its own units (batches, records or
// epochs, as searcher.max_length says, or a metric the trial reports:
// searcher.time_metric); trials train in batches. This file
// is the one place that converts between them, both ways, so a trial's
// target, its validation points and what a validation at some batch means
// to the searcher always agree. Pure: no state, no locking.
#ifndef DET_MASTER_CORE_TRIAL_LENGTHS_H_
#define DET_MASTER_CORE_TRIAL_LENGTHS_H_

#include <cstdint>
#include <map>
#include <set>

#include "common/config.h"
#include "common/length.h"
#include "master/searcher/searcher.h"
#include "master/store/store.h"

namespace det::master {

// Records per epoch for an experiment: the config's, else the data
// section's train_limit when smaller than `default_records`, else
// `default_records` (CIFAR-10's training set unless the master says).
int64_t RecordsPerEpoch(const ExperimentConfig& config,
                        int64_t default_records);

// Converts lengths for one trial (its global batch size).
class LengthConverter {
 public:
  LengthConverter(Unit unit, int64_t records_per_epoch, int64_t batch_size)
      : unit_(unit),
        records_per_epoch_(records_per_epoch),
        batch_size_(batch_size) {}
  // For the trial of `rec` (its hyperparameters' global_batch_size), in the
  // searcher's unit.
  static LengthConverter ForTrial(const ExperimentConfig& config,
                                  int64_t records_per_epoch,
                                  const store::TrialRecord& rec);

  // Batches needed to train `units` of the searcher's unit.
  int64_t ToBatches(int64_t units) const;
  // The searcher length that `batches` stands for: the largest length whose
  // batches do not exceed it, so a rung is entered once its length has
  // been trained.
  int64_t UnitsAt(int64_t batches) const;
  // Batches for a length in another unit (min_validation_period, ...).
  int64_t ToBatches(const Length& length) const;

 private:
  Unit unit_;
  int64_t records_per_epoch_;
  int64_t batch_size_;
};

// Records the searcher's length for the trial: target_batches, the
// searcher's validation points in batches (ascending, the final one
// included) and the checkpoint period.
void SetTrialLength(const ExperimentConfig& config, int64_t records_per_epoch,
                    const searcher::ValidateAfter& op, store::TrialRecord* rec);

// For each of the record's validation points (batches), the searcher length
// it stands for (LengthConverter::UnitsAt); with a reported time_metric the
// points are in its units already.
std::map<int64_t, int64_t> UnitsAtBatches(const ExperimentConfig& config,
                                          int64_t records_per_epoch,
                                          const store::TrialRecord& rec);

// Where the trial validates: the searcher's points (unless they count a
// reported metric) plus every min_validation_period (at most 10,000 of
// those), below its target.
std::set<int64_t> ValidationBatches(const ExperimentConfig& config,
                                    int64_t records_per_epoch,
                                    const store::TrialRecord& rec);

}  // namespace det::master

#endif  // DET_MASTER_CORE_TRIAL_LENGTHS_H_
