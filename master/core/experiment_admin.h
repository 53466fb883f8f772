// Experiment administration, the pure part: what `det experiment set`,
// `label add|remove` and `config` change in an experiment's record and how
// its config reads afterwards. The Master methods that carry them out are
// in experiment_admin.cc too.
//
// The user's YAML (v1::Experiment.config_yaml) is kept as written; the
// changes live in the record's own fields (name, description, labels,
// priority, max_slots), which a (re)loaded master applies over the parsed
// config (ApplyRecordToConfig), and which EffectiveConfigYaml writes back
// into the YAML for display and for forks.
#ifndef DET_MASTER_CORE_EXPERIMENT_ADMIN_H_
#define DET_MASTER_CORE_EXPERIMENT_ADMIN_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "det/v1/api.pb.h"

namespace det::master {

// `labels` with each of `add` appended (once: a label already there stays
// where it is) and each of `remove` taken out (one that is absent is no
// error), as Determined's `det experiment label add|remove` do. Empty
// labels are INVALID_ARGUMENT.
absl::StatusOr<std::vector<std::string>> ApplyLabelChanges(
    const std::vector<std::string>& labels, const std::vector<std::string>& add,
    const std::vector<std::string>& remove);

// Checks a patch against the experiment's config (name not blank,
// priority 1..99, max_slots 0 or at least slots_per_trial) and applies it
// to `x`. INVALID_ARGUMENT naming the field; nothing changes then.
absl::Status ApplyPatch(const v1::PatchExperimentRequest& patch,
                        const ExperimentConfig& config, v1::Experiment* x);

// Overwrites what the record decides in a config parsed from its YAML:
// name, description, labels, resources.priority and, once patched,
// resources.max_slots (0: none).
void ApplyRecordToConfig(const v1::Experiment& x, ExperimentConfig* config);

// The experiment's stored YAML parsed (ParseStoredExperimentConfig);
// DATA_LOSS naming the experiment when it no longer parses. The record's
// changes are not applied: ApplyRecordToConfig does that.
absl::StatusOr<ExperimentConfig> ParseRecordConfig(const v1::Experiment& x);

// The experiment's YAML with the record's changes written in: the YAML as
// stored (comments and all) when nothing changed, else re-emitted with
// the changed fields set. INVALID_ARGUMENT when the stored YAML does not
// parse.
absl::StatusOr<std::string> EffectiveConfigYaml(const v1::Experiment& x);

}  // namespace det::master

#endif  // DET_MASTER_CORE_EXPERIMENT_ADMIN_H_
