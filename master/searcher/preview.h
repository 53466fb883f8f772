// The plan of a search, without running it: what `det preview-search`
// shows. The CLI and the master convert it to det.v1.PreviewSearchResponse.
#ifndef DET_MASTER_SEARCHER_PREVIEW_H_
#define DET_MASTER_SEARCHER_PREVIEW_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/length.h"

namespace det::searcher {

struct PlanRung {
  int64_t length = 0;  // total units of training to reach it
  // Trials that reach it in successive halving: the bracket's trials, then
  // max(floor(previous / divisor), 1) per rung. Asynchronous ASHA decides
  // with partial information, so a few more may pass early rungs.
  int64_t trials = 0;
};

struct PlanBracket {
  int num_rungs = 0;
  int64_t trials = 0;
  int64_t max_concurrent_trials = 0;
  std::vector<PlanRung> rungs;
};

// pbt: one round of the population.
struct PlanRound {
  int64_t round = 0;       // 1-based
  int64_t trials = 0;      // created for it: one per member
  int64_t continuing = 0;  // members going on with their hyperparameters
  int64_t copies = 0;      // copies of the best, replacing the worst
  // Units a member whose line survives every round has trained by its end.
  int64_t trained_length = 0;
};

struct SearchPlan {
  std::string searcher;  // "single", "grid", "random", "adaptive_asha", "pbt"
  std::string metric;
  bool smaller_is_better = true;
  Unit unit = Unit::kBatches;
  // The reported metric lengths count in (searcher.time_metric), when not
  // batches, epochs or records: then `unit` is meaningless.
  std::string metric_unit;
  int64_t max_length = 0;
  // The trials decide how long they train (searcher.trial_decides_length):
  // max_length and the totals are then no real bound.
  bool trial_decides_length = false;
  int64_t num_trials = 0;             // trials created at most
  int64_t max_concurrent_trials = 0;  // running at once at most, in total
  // Upper bound on units of training over all trials: num_trials x
  // max_length (early stopping can only lower it).
  int64_t total_length = 0;
  // What successive halving would train in total (adaptive_asha; equal to
  // total_length for the others).
  int64_t expected_length = 0;
  std::vector<PlanBracket> brackets;         // adaptive_asha
  std::map<std::string, int64_t> grid_axes;  // grid: leaf path -> values
  // pbt: max_length is length_per_round; each trial trains one round.
  int64_t population_size = 0;
  int64_t num_rounds = 0;
  int64_t replaced_per_round = 0;
  std::vector<PlanRound> rounds;
  std::vector<std::string> notes;  // adjustments worth knowing
  // searcher.sampler: "random" or "tpe" (random and adaptive_asha; the
  // others show "random": single and grid do not sample by results).
  std::string sampler = "random";
  TpeConfig tpe;  // sampler "tpe"
  // TPE: the most trials created before n_startup_trials have a result
  // (random draws): min(num_trials, n_startup_trials +
  // max_concurrent_trials - 1), each new trial waiting for one to end.
  int64_t tpe_random_trials = 0;
  // TPE inside ASHA: the first rung length (the shortest), where the first
  // results come from.
  int64_t tpe_first_rung = 0;
};

// The plan for a validated config. InvalidArgument when the config cannot
// make a search (e.g. max_length not positive).
absl::StatusOr<SearchPlan> PlanSearch(const ExperimentConfig& config);

// A readable summary and table, ending in a newline.
std::string FormatPlan(const SearchPlan& plan);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_PREVIEW_H_
