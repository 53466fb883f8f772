#include "master/core/trial_lengths.h"

#include <algorithm>

namespace det::master {
namespace {

// At most this many min_validation_period points per trial, so a tiny
// period on a long trial cannot make a huge spec.
constexpr int kMaxPeriodicValidations = 10000;

}  // namespace

int64_t RecordsPerEpoch(const ExperimentConfig& config,
                        int64_t default_records) {
  if (config.records_per_epoch > 0) return config.records_per_epoch;
  const Value& limit = Value(config.data)["train_limit"];
  if (limit.is_number() && limit.as_number() > 0) {
    return std::min<int64_t>(static_cast<int64_t>(limit.as_number()),
                             default_records);
  }
  return default_records;
}

LengthConverter LengthConverter::ForTrial(const ExperimentConfig& config,
                                          int64_t records_per_epoch,
                                          const store::TrialRecord& rec) {
  return LengthConverter(config.searcher.max_length.unit, records_per_epoch,
                         GlobalBatchSize(FromProto(rec.trial.hparams())));
}

int64_t LengthConverter::ToBatches(int64_t units) const {
  return det::ToBatches(unit_, units, records_per_epoch_, batch_size_);
}

int64_t LengthConverter::ToBatches(const Length& length) const {
  return det::ToBatches(length.unit, length.value, records_per_epoch_,
                        batch_size_);
}

int64_t LengthConverter::UnitsAt(int64_t batches) const {
  int64_t u = std::max<int64_t>(
      FromBatches(unit_, batches, records_per_epoch_, batch_size_), 0);
  while (ToBatches(u + 1) <= batches) u++;
  while (u > 0 && ToBatches(u) > batches) u--;
  return u;
}

void SetTrialLength(const ExperimentConfig& config, int64_t records_per_epoch,
                    const searcher::ValidateAfter& op,
                    store::TrialRecord* rec) {
  LengthConverter conv =
      LengthConverter::ForTrial(config, records_per_epoch, *rec);
  if (config.searcher.metric_length) {
    // In the reported metric's units: the trial trains until stopped.
    std::set<int64_t> points(op.validation_points.begin(),
                             op.validation_points.end());
    points.insert(op.length);
    rec->trial.set_target_batches(kTrialDecidesLength);
    rec->validation_points.assign(points.begin(), points.end());
    rec->checkpoint_period = config.min_checkpoint_period
                                 ? conv.ToBatches(*config.min_checkpoint_period)
                                 : 0;
    return;
  }
  int64_t target = conv.ToBatches(op.length);
  std::set<int64_t> points;
  for (int64_t u : op.validation_points) {
    int64_t b = conv.ToBatches(u);
    if (b > 0 && b < target) points.insert(b);
  }
  points.insert(target);
  rec->trial.set_target_batches(target);
  rec->validation_points.assign(points.begin(), points.end());
  rec->checkpoint_period = config.min_checkpoint_period
                               ? conv.ToBatches(*config.min_checkpoint_period)
                               : 0;
}

std::map<int64_t, int64_t> UnitsAtBatches(const ExperimentConfig& config,
                                          int64_t records_per_epoch,
                                          const store::TrialRecord& rec) {
  LengthConverter conv =
      LengthConverter::ForTrial(config, records_per_epoch, rec);
  std::map<int64_t, int64_t> out;
  for (int64_t b : rec.validation_points) {
    out[b] = config.searcher.metric_length ? b : conv.UnitsAt(b);
  }
  return out;
}

std::set<int64_t> ValidationBatches(const ExperimentConfig& config,
                                    int64_t records_per_epoch,
                                    const store::TrialRecord& rec) {
  // Points in a reported metric's units mean nothing to the trial: it
  // validates on its own schedule (and every min_validation_period).
  std::set<int64_t> points;
  if (!config.searcher.metric_length) {
    points.insert(rec.validation_points.begin(), rec.validation_points.end());
  }
  if (!config.min_validation_period) return points;
  int64_t period = LengthConverter::ForTrial(config, records_per_epoch, rec)
                       .ToBatches(*config.min_validation_period);
  if (period <= 0) return points;
  int64_t target = rec.trial.target_batches();
  int n = 0;
  for (int64_t b = period; b < target && n < kMaxPeriodicValidations;
       b += period, n++) {
    points.insert(b);
  }
  return points;
}

}  // namespace det::master
