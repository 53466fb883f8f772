// The shape of an adaptive_asha search, computed from the config alone
// (DESIGN section 4, Determined's formulas): how many brackets, their rung
// counts, trials, concurrency and rung lengths. Shared by the searcher and
// `det preview-search`.
#ifndef DET_MASTER_SEARCHER_ASHA_BRACKETS_H_
#define DET_MASTER_SEARCHER_ASHA_BRACKETS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace det::searcher {

struct AshaBracket {
  int num_rungs = 0;
  int64_t max_trials = 0;
  int64_t max_concurrent_trials = 0;  // >= 1
  // Rung i of n: max(floor(max_length / divisor^(n-i-1)), 1) units in
  // total; ascending, the last is max_length.
  std::vector<int64_t> rung_lengths;
};

// The largest k with divisor^k <= x (x >= 1, divisor > 1), at most `cap`.
// Exact for integer powers, where floor(log(x)/log(d)) in floating point
// can come out one short (log(1000)/log(10) = 2.9999999999999996).
int64_t FloorLog(double divisor, double x, int64_t cap);

// The brackets of a validated adaptive_asha searcher config, most
// aggressive (most rungs) first:
//   maxRungs = min(max_rungs, floor(log_d(max_length))+1,
//                  floor(log_d(max_trials))+1);
//   aggressive [maxRungs]; standard [(maxRungs-1)/2+1 .. maxRungs];
//   conservative [1 .. maxRungs]; or bracket_rungs when given;
//   weights d^(n-1)/n, trials max(floor(w/sum(w)*max_trials), 1), the rest to
//   the first; max_concurrent_trials split evenly (at least one each, the
//   remainder to the first; 0 = Determined's default of
//   max(trials of the last bracket, floor(d)) per bracket).
// When there would be more brackets than max_trials, the least aggressive
// ones are dropped, and when "at least one each" overshoots, the largest
// brackets give trials back, so the total is exactly max_trials; `notes`
// (optional) says so, and notes when brackets raise the concurrency above
// max_concurrent_trials.
std::vector<AshaBracket> PlanAshaBrackets(
    const SearcherConfig& config, std::vector<std::string>* notes = nullptr);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_ASHA_BRACKETS_H_
