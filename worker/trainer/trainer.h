// The training loop of det-trial: data, model, optimizer, loop, evaluation
// and checkpoints in one place, independent of how the trial reports (the
// callbacks) so it is testable without a worker.
//
// Two tasks share the loop: CIFAR-10 images through the CNN (cross-entropy;
// metrics loss, accuracy), and JSON records through the MLP (regression:
// mean squared error of the standardised label, metrics rmse and mae in
// the label's units; classification: cross-entropy, accuracy). Records
// checkpoints also hold the schema (records_schema.json) that encoded them.
//
// Lengths are in batches of global_batch_size. Training metrics are
// reported every data.report_period batches (and at each validation point),
// validation metrics at each validation point and at the end, checkpoints
// every checkpoint_period batches, when stopping and at the end.
//
// Determinism: given the seed, the hyperparameters and the thread count, a
// run is reproducible, and a run restored from a checkpoint continues
// exactly as the uninterrupted run would have (epoch order derives from the
// seed, the augmentation and dropout generators are checkpointed).
//
// Data parallel (world_size > 1): every rank builds the same global batch
// and trains on its contiguous share; gradients are averaged across ranks.
// Only rank 0 writes checkpoints and calls the metric callbacks; all ranks
// must be created with the same options.
#ifndef DET_WORKER_TRAINER_TRAINER_H_
#define DET_WORKER_TRAINER_TRAINER_H_

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/trainer_hparams.h"
#include "worker/trainer/batches.h"
#include "worker/trainer/checkpoint_files.h"
#include "worker/trainer/cifar10_dataset.h"
#include "worker/trainer/data_parallel.h"
#include "worker/trainer/mlp.h"
#include "worker/trainer/model.h"
#include "worker/trainer/records_dataset.h"

namespace det::trainer {

struct TrainerOptions {
  HParams hparams;
  DataOptions data;
  uint64_t seed = 0;
  int64_t target_batches = 0;
  // Validate when steps_completed reaches each of these, and at the end.
  std::vector<int64_t> validation_points;
  int64_t checkpoint_period = 0;  // 0: only when stopping or finishing
  std::string checkpoint_dir;     // empty: no checkpoints
  std::string restore_uuid;       // empty: start fresh
  // A warm start (<dir>/<uuid> of another trial's checkpoint), used when
  // there is no restore_uuid: the model's weights (and batch-norm
  // statistics) are loaded; the optimizer, the schedule, the data order and
  // the step count start fresh (at 0), as a new trial's would, so the
  // experiment's own hyperparameters (learning rate, optimizer) apply.
  std::string warm_start_path;
  torch::Device device = torch::kCPU;
  // Not owned; null for a single process. Must outlive the Trainer.
  DataParallel* parallel = nullptr;
};

using Metrics = std::map<std::string, double>;

// A JSON-records task's sets as tensors: features float [N, F]; targets
// float [N] in the label's units (regression) or int64 [N] class indices.
struct RecordsTensors {
  records::Schema schema;
  torch::Tensor train_x, train_y, validation_x, validation_y;
  int64_t train_size() const { return train_x.defined() ? train_x.size(0) : 0; }
};
RecordsTensors ToTensors(records::RecordsData data);

// The schema saved in checkpoint <checkpoint_dir>/<uuid>/ (verified against
// its manifest first), for a resumed records run to encode its data with.
absl::StatusOr<records::Schema> ReadCheckpointSchema(
    const std::string& checkpoint_dir, const std::string& uuid);

struct TrainerCallbacks {
  std::function<absl::Status(int64_t steps, const Metrics&)> training_metrics;
  std::function<absl::Status(int64_t steps, const Metrics&)> validation_metrics;
  std::function<absl::Status(const CheckpointInfo&)> checkpoint;
  // Polled after every batch; true means checkpoint and return kStopped.
  std::function<bool()> should_stop;
};

enum class RunOutcome { kCompleted, kStopped };

class Trainer {
 public:
  // Builds the model and optimizer over `data` (shared, not copied) and
  // restores options.restore_uuid when given. In data-parallel mode rank 0's
  // initial weights are broadcast to the others.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(TrainerOptions options,
                                                         Cifar10 data);
  // The same for JSON records: the MLP over `data`'s features.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(TrainerOptions options,
                                                         RecordsTensors data);

  // Trains until target_batches or until should_stop says so.
  absl::StatusOr<RunOutcome> Run(const TrainerCallbacks& callbacks);

  // One optimizer step on the next global batch; adds this rank's share's
  // loss sum and number of correct predictions (for regression: sum of
  // squared errors in the label's units) and sample count.
  absl::Status TrainStep(double* loss_sum, int64_t* correct, int64_t* samples);

  // Loss and accuracy (regression: rmse and mae) over the validation set
  // (sharded across ranks).
  absl::StatusOr<Metrics> Validate();

  // Writes a checkpoint of the current state (rank 0; others return an
  // empty info). Requires a checkpoint_dir.
  absl::StatusOr<CheckpointInfo> SaveCheckpoint();

  int64_t steps_completed() const { return steps_completed_; }
  Cnn& model() { return model_; }  // CIFAR-10 only
  Mlp& mlp() { return mlp_; }      // JSON records only
  // The learning rate the schedule gives for batch `step` (0-based).
  double LearningRateAt(int64_t step) const;

 private:
  Trainer(TrainerOptions options, Cifar10 data, RecordsTensors records);
  static absl::StatusOr<std::unique_ptr<Trainer>> CreateFor(
      std::unique_ptr<Trainer> t);
  // The model being trained: the CNN or the MLP.
  torch::nn::Module& module();
  bool regression() const {
    return records_task_ &&
           records_.schema.task == records::PredictionTask::kRegression;
  }
  // The batch's loss (mean) and its second sum: correct predictions, or for
  // regression squared errors in the label's units.
  std::pair<torch::Tensor, torch::Tensor> LossAndSum(const torch::Tensor& out,
                                                     const torch::Tensor& y);
  // TrainStep without reading anything back: `sums` gets {loss sum, correct}
  // of this rank's share as a device tensor (no wait for a GPU).
  absl::Status TrainStepOnDevice(torch::Tensor* sums);
  absl::Status Restore(const std::string& uuid);
  absl::Status WarmStart(const std::string& path);
  void SetLearningRate(double lr);

  TrainerOptions options_;
  const bool records_task_;
  Cifar10 data_;            // CIFAR-10
  RecordsTensors records_;  // JSON records
  Cnn model_{nullptr};      // CIFAR-10
  Mlp mlp_{nullptr};        // JSON records
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  SampleStream stream_;
  at::Generator augment_gen_;
  int64_t steps_completed_ = 0;
  int rank_ = 0;
  int world_size_ = 1;
};

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_TRAINER_H_
