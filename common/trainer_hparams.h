// The built-in trainer's hyperparameters: parsed from the trial's
// hyperparameter map (det::ValueMap) and checked, so that a bad value ends
// the trial as an invalid-hyperparameter exit with a message naming it.
// Here in common, free of libtorch, because the config check uses the same
// rules: a search space whose values det-trial would refuse is an error when
// the experiment is created, not a failed trial later.
//
// Names starting with an underscore are ignored: they let users carry
// bookkeeping values (e.g. "_note") through a search without upsetting the
// trainer. Any other name the trainer does not know is an error, so a typo
// ("learning_rat") cannot silently train with the default.
#ifndef DET_COMMON_TRAINER_HPARAMS_H_
#define DET_COMMON_TRAINER_HPARAMS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/value.h"

namespace det::trainer {

enum class OptimizerKind { kSgd, kAdam };
enum class LrSchedule { kConstant, kCosine, kStep };
enum class Activation { kRelu, kTanh, kGelu };

// What the built-in trainer trains, chosen by the config's data section:
// CIFAR-10 images through the CNN (the default), or JSON records
// (data.format: jsonl) through a multilayer perceptron. Each task knows its
// own hyperparameter names; the optimizer and schedule ones are shared.
enum class Task { kCifar10, kRecords };

// The task the "data" section selects: kRecords when data.format is
// "jsonl", else kCifar10.
Task TaskForData(const ValueMap& data);

// The validation metrics the built-in trainer reports for this data:
// validation_loss, validation_accuracy, validation_error for CIFAR-10 and
// records classification; validation_loss, validation_rmse, validation_mae
// for records regression (data.task: regression).
std::vector<std::string> BuiltinValidationMetrics(const ValueMap& data);

struct HParams {
  double learning_rate = 0.01;
  int64_t global_batch_size = 64;
  int64_t n_filters1 = 32;
  int64_t n_filters2 = 64;
  int64_t kernel_size = 3;
  int64_t hidden_units = 512;
  double dropout = 0.5;
  int64_t conv_layers = 2;
  bool batch_norm = false;
  // The records task's MLP: hidden_layers x [linear(hidden_units) -> batch
  // norm (optional) -> activation -> dropout]; 0 layers is a linear model.
  int64_t hidden_layers = 2;
  Activation activation = Activation::kRelu;
  OptimizerKind optimizer = OptimizerKind::kSgd;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  LrSchedule lr_schedule = LrSchedule::kConstant;
  // kStep: multiply the rate by lr_gamma every lr_step_size batches
  // (0: a third of the trial's target length).
  int64_t lr_step_size = 0;
  double lr_gamma = 0.1;
};

// Parses and range-checks `hparams`. Missing names take the defaults above.
// Returns InvalidArgument naming the hyperparameter, the value found and
// the accepted range for unknown names, wrong types and out-of-range values.
// `task` says which names are known (CNN-only names are unknown to the
// records task and the other way round).
absl::StatusOr<HParams> ParseHParams(const ValueMap& hparams,
                                     Task task = Task::kCifar10);

// The names ParseHParams accepts for `task`, sorted (for messages and docs).
const std::vector<std::string>& KnownHParamNames(Task task = Task::kCifar10);

// Reads one value into `h` as ParseHParams does (type and range; not the
// checks across names, such as nesterov needing sgd with momentum).
// InvalidArgument, with ParseHParams's message, when it is refused or
// `name` is unknown.
absl::Status ReadHParam(const std::string& name, const Value& value, HParams* h,
                        Task task = Task::kCifar10);

// A trial's global batch is split evenly over its slots (one rank each):
// InvalidArgument when `global_batch_size` does not divide by `slots`.
absl::Status CheckBatchSplit(int64_t global_batch_size, int64_t slots);

}  // namespace det::trainer

#endif  // DET_COMMON_TRAINER_HPARAMS_H_
