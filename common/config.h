// The experiment configuration: a typed, validated view of the YAML a user
// submits, field-compatible with Determined's experiment configuration and
// with Determined's defaults.
#ifndef DET_COMMON_CONFIG_H_
#define DET_COMMON_CONFIG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/length.h"
#include "common/value.h"

namespace det {

// One hyperparameter's search space. A nested group is a map of specs.
struct HParamSpec {
  enum class Type { kConst, kInt, kDouble, kLog, kCategorical, kGroup };
  Type type = Type::kConst;
  Value val;                      // kConst
  double minval = 0, maxval = 0;  // kInt, kDouble, kLog (log: exponents)
  double base = 10;               // kLog
  std::optional<int64_t> count;   // kInt, kDouble, kLog; required by grid
  ValueList vals;                 // kCategorical
  std::map<std::string, HParamSpec> group;  // kGroup, sorted by name
};
using HParamSpecs = std::map<std::string, HParamSpec>;

enum class SearcherName { kSingle, kGrid, kRandom, kAdaptiveAsha, kPbt };
enum class AshaMode { kStandard, kAggressive, kConservative };

// "single", "grid", "random", "adaptive_asha", "pbt" (as written in configs).
const char* SearcherNameString(SearcherName name);
// "standard", "aggressive", "conservative".
const char* AshaModeString(AshaMode mode);

// One problem found in a config: where, and what.
struct ConfigError {
  std::string path;  // e.g. "searcher.max_length.batches"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based
  std::string message;
  std::string ToString() const;  // "line 4, column 3: searcher.metric: ..."
};

// Population-based training (searcher.name: pbt), Determined's fields. Its
// length_per_round is SearcherConfig::max_length: each det trial trains one
// round (see master/searcher/pbt_search.h).
struct PbtConfig {
  int64_t population_size = 0;
  int64_t num_rounds = 0;
  double truncate_fraction = 0;     // replace_function, 0..0.5
  double resample_probability = 0;  // explore_function, 0..1
  double perturb_factor = 0;        // explore_function, 0..1
};

// searcher.sampler: how random and adaptive_asha draw a new trial's
// hyperparameters. kTpe: a Tree-structured Parzen Estimator fitted on the
// results so far (master/searcher/tpe.h, docs/searchers.md).
enum class SamplerName { kRandom, kTpe };
// "random", "tpe".
const char* SamplerNameString(SamplerName name);

// searcher.tpe: the estimator's parameters, named and defaulted as Optuna's
// TPESampler (univariate unless `multivariate`).
struct TpeConfig {
  int64_t n_startup_trials = 10;  // results at a rung before TPE is used
  int64_t n_ei_candidates = 24;   // samples of l(x) scored by l(x)/g(x)
  // The "good" group: min(ceil(gamma * n), gamma_max) of n results.
  double gamma = 0.1;
  int64_t gamma_max = 25;
  double prior_weight = 1.0;
  bool consider_magic_clip = true;
  bool consider_endpoints = false;
  bool multivariate = false;
  // Running trials count among the "bad" group (Optuna's constant_liar).
  bool constant_liar = false;
  // det's own: a suggestion that equals a trial already created (running or
  // done) is replaced by the best-scoring new candidate, then by more
  // candidates, then by a random new point; a repeat only once every point
  // of an all-discrete space has been tried. Optuna has no such option.
  bool avoid_duplicates = true;
};

struct SearcherConfig {
  SearcherName name = SearcherName::kSingle;
  std::string metric;
  bool smaller_is_better = true;
  // How long each trial trains at most. Written as Determined 0.38's
  // `time_metric` + `max_time`, or as `max_length` ({batches: N}, or a bare
  // integer, which counts batches). A time_metric of batches, epochs or
  // records becomes this length.
  Length max_length;
  // As written (empty when absent). Another name than batches, epochs or
  // records is a metric the trial reports (see metric_length).
  std::string time_metric;
  int64_t max_time = 0;
  // time_metric is a metric the trial reports (not batches, epochs or
  // records): lengths, rungs and max_length (max_time) count in its units,
  // read from each validation report; the master stops a trial once the
  // searcher has nothing more for it.
  bool metric_length = false;
  // No length for the searcher to give (single, grid or random with the
  // user's entrypoint and no max_length/max_time):
  // the trial trains as long as it decides. max_length is then
  // kTrialDecidesLength batches, so the searcher's arithmetic still holds.
  bool trial_decides_length = false;
  int64_t max_trials = 0;              // random, adaptive_asha
  int64_t max_concurrent_trials = 16;  // 0 = no limit
  AshaMode mode = AshaMode::kStandard;
  double divisor = 4;
  int64_t max_rungs = 5;
  std::vector<int64_t> bracket_rungs;  // optional explicit rung counts
  bool stop_once = false;
  PbtConfig pbt;                               // pbt
  SamplerName sampler = SamplerName::kRandom;  // random, adaptive_asha
  TpeConfig tpe;                               // sampler == kTpe
  // Determined's warm start: every trial of the experiment starts from a
  // checkpoint's weights, its step count at 0. source_trial_id names a
  // trial whose latest checkpoint that is (the master resolves it when it
  // creates the experiment); 0 = none. source_checkpoint_uuid names the
  // checkpoint itself; empty when absent, and cleared (with a warning) when
  // source_trial_id is given too, which wins as in Determined.
  int64_t source_trial_id = 0;
  std::string source_checkpoint_uuid;
};

// max_length.value when the trial decides its length (target_batches it
// receives: in effect, no limit).
inline constexpr int64_t kTrialDecidesLength = 1000000000000;

struct ResourcesConfig {
  int64_t slots_per_trial = 1;
  std::optional<int64_t> max_slots;
  int64_t priority = 42;  // 1..99, lower runs first
};

struct CheckpointStorageConfig {
  std::string type = "shared_fs";
  std::string
      host_path;  // default: $HOME/.det/checkpoints (resolved by master)
  std::string storage_path;  // optional subdirectory of host_path
  // type directory: the folder itself, the same path on every machine
  // (Determined's container_path; det runs no containers).
  std::string container_path;
  int64_t save_trial_best = 1;
  int64_t save_trial_latest = 1;
  int64_t save_experiment_best = 0;
};

struct ExperimentConfig {
  std::string name;
  std::string description;
  std::vector<std::string> labels;
  HParamSpecs hyperparameters;
  SearcherConfig searcher;
  ResourcesConfig resources;
  int64_t max_restarts = 5;
  std::optional<Length> min_validation_period;
  std::optional<Length> min_checkpoint_period;
  // 0 = the training set's size (50,000 for CIFAR-10, less with train_limit).
  int64_t records_per_epoch = 0;
  CheckpointStorageConfig checkpoint_storage;
  // reproducibility.experiment_seed (0..2^31-1, as Determined). When the
  // config has none, the master picks one and keeps it with the searcher's
  // snapshot (the YAML is stored as written), so that a restarted master's
  // searcher samples the same trials.
  uint64_t experiment_seed = 0;
  bool has_experiment_seed = false;
  ValueMap data;  // free-form, for the trainer
  // Empty = built-in det-trial. A list in the YAML is joined with spaces. A
  // Determined Python class reference ("model_def:CIFARTrial") is mapped to
  // the built-in trainer, with a warning.
  std::string entrypoint;
  // environment.environment_variables, "KEY=VALUE" each, in order: set in
  // the trial's environment by the worker (before its own DET_* variables,
  // which win). A {cpu: [...], cuda: [...]} form gives one list for CPU
  // slots and one for GPU slots; a plain list or map is both.
  std::vector<std::string> environment_variables;       // CPU slots
  std::vector<std::string> environment_variables_cuda;  // GPU slots

  // Legal but probably unintended settings, and Determined fields accepted
  // for compatibility that have no effect here (path, position, message).
  // Not part of the configuration itself: for the user's eyes.
  std::vector<ConfigError> warnings;
};

// Parsing limits, to refuse hostile input early.
struct ParseLimits {
  size_t max_bytes = 1 << 20;  // 1 MiB of YAML
  int max_depth = 32;
  size_t max_nodes = 100000;  // counts alias expansions too
};

// Parses and validates YAML text. On failure the status is
// INVALID_ARGUMENT and its message lists every problem found, one per line,
// each "line L, column C: path: message". `errors`, when given, receives
// them as structured values too.
absl::StatusOr<ExperimentConfig> ParseExperimentConfig(
    const std::string& yaml, std::vector<ConfigError>* errors = nullptr,
    const ParseLimits& limits = {});

// A config the master stored when it accepted the experiment, as
// ParseExperimentConfig parses it less the checks only a new experiment
// gets: the built-in trainer's hyperparameter values, which experiments
// stored before that check existed may break. A master must reload every
// experiment it once accepted (their trials fail one by one, as before).
absl::StatusOr<ExperimentConfig> ParseStoredExperimentConfig(
    const std::string& yaml);

// Reads a config file for ParseExperimentConfig, refusing by its size (from
// stat, before reading a byte) files larger than limits.max_bytes, and
// anything that is not a regular file.
absl::StatusOr<std::string> ReadExperimentConfigFile(
    const std::string& path, const ParseLimits& limits = {});

// Applies "key.path=value" overrides (as from `det experiment create
// --config searcher.max_trials=4`) to YAML text, returning new YAML text.
// The value is parsed as YAML (a scalar, or a flow list/map such as
// "{batches: 100}"); missing maps along the path are created. Comments and
// layout of the input are not preserved. The input is held to `limits`.
absl::StatusOr<std::string> ApplyConfigOverrides(
    const std::string& yaml, const std::vector<std::string>& overrides,
    const ParseLimits& limits = {});

// The global batch size from hparams (global_batch_size), default 64 when
// absent or not a positive integer (an integral double counts).
int64_t GlobalBatchSize(const ValueMap& hparams);

}  // namespace det

#endif  // DET_COMMON_CONFIG_H_
