// Hyperparameter values for trials: random samples and grid points, both
// pure functions of their inputs so that a search is reproducible from its
// config and a restored searcher needs no generator state.
#ifndef DET_MASTER_SEARCHER_HPARAM_SAMPLER_H_
#define DET_MASTER_SEARCHER_HPARAM_SAMPLER_H_

#include <cstdint>

#include "common/config.h"
#include "common/value.h"

namespace det::searcher {

// The seed of trial `request_id`: a 32-bit mix of the experiment seed and the
// request id (torch and most trainers take 32 bits comfortably).
uint64_t TrialSeed(uint64_t experiment_seed, int64_t request_id);

// A random sample of `specs` for trial `request_id`: int uniform inclusive,
// double uniform, log base^uniform(minval, maxval), categorical uniform,
// const its value, groups recursively. Each leaf draws from its own stream
// keyed by its path, so adding a hyperparameter leaves the others' values
// unchanged.
ValueMap SampleHParams(const HParamSpecs& specs, uint64_t experiment_seed,
                       int64_t request_id);

// PBT's explore step for trial `request_id`, copying `parent` (a sample of
// `specs`), as Determined's PBT does it: each leaf, with probability
// resample_probability, takes a fresh random sample (as SampleHParams);
// otherwise it is perturbed: multiplied by 1 - perturb_factor or
// 1 + perturb_factor (even odds) and clamped to its range (int: rounded down
// when decreased, up when increased; log: within base^minval..base^maxval),
// while categorical and const leaves keep the parent's value. A leaf missing
// from `parent` is resampled. Each leaf draws from its own stream keyed by
// the seed, the request id and its path.
ValueMap ExploreHParams(const HParamSpecs& specs, const ValueMap& parent,
                        double resample_probability, double perturb_factor,
                        uint64_t experiment_seed, int64_t request_id);

// Grid point `index` (0 <= index < GridSize(specs)): the Cartesian product of
// the leaves' axes in sorted path order, the first leaf varying slowest.
ValueMap GridHParams(const HParamSpecs& specs, int64_t index);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_HPARAM_SAMPLER_H_
