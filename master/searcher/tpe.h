// The Tree-structured Parzen Estimator (Bergstra et al. 2011), with the
// semantics of Optuna's TPESampler: results are split into a "good" group
// (the best min(ceil(gamma * n), gamma_max)) and the rest; each group gets a
// Parzen estimator (a mixture of truncated Gaussians, or of categorical
// kernels, one per result plus a prior over the whole range, the older
// results weighted down past 25); n_ei_candidates samples of the good
// group's estimator l(x) are scored by l(x) / g(x) and the best one wins.
//
// Univariate by default (each dimension its own pair of estimators, its own
// candidates), as Optuna before 5.0; `multivariate` fits one joint mixture
// (one kernel per result over all dimensions).
//
// Pure: the same dimensions, results and seed give the same suggestion, on
// every platform (SplitMix64, no standard-library distributions).
#ifndef DET_MASTER_SEARCHER_TPE_H_
#define DET_MASTER_SEARCHER_TPE_H_

#include <cstdint>
#include <vector>

#include "common/config.h"

namespace det::searcher::tpe {

// One modelled dimension (a sampled hyperparameter leaf).
struct Dimension {
  enum class Kind {
    kContinuous,   // double, or log in its exponent: [low, high]
    kInteger,      // int: the integers low..high (step 1)
    kCategorical,  // an index 0..choices-1
  };
  Kind kind = Kind::kContinuous;
  double low = 0, high = 0;
  int64_t choices = 0;
  // The key of this dimension's random stream (univariate), e.g. the hash of
  // the leaf's path, so that adding a hyperparameter leaves the others'.
  uint64_t stream = 0;
};

// One result: a trial's point (one value per dimension), how far it got
// (`stage`: the length of the longest rung it reached), its metric there
// (smaller is better) and its place in creation order (the request id).
// Results rank by stage (further first), then value: Optuna's order for
// pruned trials (by their last step, then their value) after complete ones.
struct Observation {
  std::vector<double> x;
  double value = 0;
  int64_t order = 0;
  int64_t stage = 0;
};

// A new point: one value per dimension (integers and indices as whole
// numbers). `running` are trials still running (their values unused), which
// join the "bad" group under config.constant_liar. Each group is weighted
// in `order` (older first), as Optuna orders by trial number. Every point
// has dims.size() values.
std::vector<double> Suggest(const std::vector<Dimension>& dims,
                            const std::vector<Observation>& observations,
                            const std::vector<Observation>& running,
                            const TpeConfig& config, uint64_t seed);

// As above, avoiding the points in `tried` (every trial created so far, in
// any order; the result does not depend on their order): when the best
// candidate is one of them, the best new combination of candidates wins
// (univariate: by the sum of the dimensions' scores, best first); when every
// combination is tried, up to 9 more rounds of n_ei_candidates are drawn,
// then a uniformly random new point (RandomNew). Only when none is left
// (an all-discrete space every point of which is tried) does it repeat one.
// With `tried` empty it is the classic suggestion above, draw for draw.
std::vector<double> Suggest(const std::vector<Dimension>& dims,
                            const std::vector<Observation>& observations,
                            const std::vector<Observation>& running,
                            const std::vector<std::vector<double>>& tried,
                            const TpeConfig& config, uint64_t seed);

// A uniformly random point (categorical indices, integers, continuous values
// in [low, high]) not in `tried`, or false when there is none: rejection
// sampling, then, for an all-discrete space of up to 2^20 points, the
// untried points enumerated and one drawn. Degenerate dimensions take low
// (index 0). Deterministic in the seed and the set `tried`.
bool RandomNew(const std::vector<Dimension>& dims,
               const std::vector<std::vector<double>>& tried, uint64_t seed,
               std::vector<double>* point);

// The size of the good group among n results: min(ceil(gamma * n),
// gamma_max), as Optuna's default_gamma (the same floating-point product).
int64_t NumBelow(const TpeConfig& config, int64_t n);

// Optuna's default_weights: 1 for each of n results when n < 25, else a
// ramp from 1/n up to 1 over the oldest n - 25 and 1 for the newest 25.
std::vector<double> DefaultWeights(int64_t n);

// Truncated-normal helpers, exposed for tests. a and b are standardised
// bounds (a < b).
namespace internal {
double LogNdtr(double a);
// log of the standard normal's mass in [a, b].
double LogGaussMass(double a, double b);
// The point x in [a, b] with mass q in [a, x] (relative to [a, b]).
double TruncNormPpf(double q, double a, double b);
// The log density at x of the Parzen estimator of one dimension fitted on
// `values` (oldest first), as Suggest builds it for either group.
double ParzenLogPdf(const Dimension& dim, const std::vector<double>& values,
                    const TpeConfig& config, double x);
}  // namespace internal

}  // namespace det::searcher::tpe

#endif  // DET_MASTER_SEARCHER_TPE_H_
