// Hyperparameter values for trials: random samples and grid points, both
// pure functions of their inputs so that a search is reproducible from its
// config and a restored searcher needs no generator state.
#ifndef DET_MASTER_SEARCHER_HPARAM_SAMPLER_H_
#define DET_MASTER_SEARCHER_HPARAM_SAMPLER_H_

#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/value.h"

namespace det::searcher {

// SplitMix64: tiny, fast, and the same on every platform (unlike the
// standard library's distributions).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n), n >= 1, without modulo bias.
  uint64_t Below(uint64_t n);

 private:
  uint64_t state_;
};

// A strong 64-bit mix of two words (order matters), for deriving streams.
uint64_t MixSeed(uint64_t a, uint64_t b);
// FNV-1a of a leaf's path: the key of its own stream.
uint64_t HashPath(const std::string& path);

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

// A sampled leaf (int, double, log, categorical) in the form the TPE
// models: int and double their value, log its exponent, categorical the
// index into vals. SampleHParams's draw for that leaf, exactly.
double SampleLeafInternal(const HParamSpec& spec, const std::string& path,
                          uint64_t experiment_seed, int64_t request_id);
// The hyperparameter value of an internal form: int the integer, log
// base^x, categorical vals[x]; const its value.
Value LeafValue(const HParamSpec& spec, double internal);

// Grid point `index` (0 <= index < GridSize(specs)): the Cartesian product of
// the leaves' axes in sorted path order, the first leaf varying slowest.
ValueMap GridHParams(const HParamSpecs& specs, int64_t index);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_HPARAM_SAMPLER_H_
