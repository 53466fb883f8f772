// Parsing `searcher.sampler` and `searcher.tpe` (random and adaptive_asha):
// kept apart from the rest of the searcher section.
#ifndef DET_COMMON_CONFIG_SAMPLER_H_
#define DET_COMMON_CONFIG_SAMPLER_H_

#include "common/config.h"
#include "common/config_checker.h"
#include "common/config_yaml.h"

namespace det::config_internal {

// Reads `sampler` (random | tpe) and `tpe` from the searcher map `searcher`
// into `out`, reporting problems with their field paths. Whether the fields
// apply to the searcher at all is checked by the caller.
void ParseSearcherSampler(const YamlNode& searcher, Checker* c,
                          SearcherConfig* out);

// Warnings once the whole config is read: a TPE search with nothing to
// model (every hyperparameter const), or with n_startup_trials not below
// max_trials (every trial a random draw).
void CheckSearcherSampler(const YamlNode& root, const ExperimentConfig& cfg,
                          Checker* c);

}  // namespace det::config_internal

#endif  // DET_COMMON_CONFIG_SAMPLER_H_
