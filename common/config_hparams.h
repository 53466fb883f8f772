// Hyperparameter search spaces: parsing the `hyperparameters` section and
// the helpers the searchers share (leaves of nested groups in sorted path
// order, grid axes, building a nested hyperparameter map).
#ifndef DET_COMMON_CONFIG_HPARAMS_H_
#define DET_COMMON_CONFIG_HPARAMS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/value.h"

namespace det {

// A leaf hyperparameter (not a group) and where it sits.
struct HParamLeaf {
  std::string path;                // "optimizer.lr" for nested groups
  std::vector<std::string> names;  // {"optimizer", "lr"}
  const HParamSpec* spec = nullptr;
};

// Every leaf of `specs`, nested groups flattened, sorted by path.
std::vector<HParamLeaf> FlattenHParams(const HParamSpecs& specs);

// The number of values the grid searcher tries for `spec` (a leaf): const 1,
// categorical its vals, int min(count, maxval - minval + 1), double and log
// their count (1 when count is absent).
int64_t GridAxisSize(const HParamSpec& spec);

// The grid's value `index` (0 <= index < GridAxisSize) for a leaf, following
// Determined: int round(min + i*(max-min)/(count-1)), double min + i*step,
// log base^(min + i*step); count 1 gives the midpoint.
Value GridAxisValue(const HParamSpec& spec, int64_t index);

// The product of the grid axes of every leaf (1 with no hyperparameters),
// saturating at INT64_MAX.
int64_t GridSize(const HParamSpecs& specs);

// Builds the nested hyperparameter map for one trial: groups become nested
// maps (empty groups included), each leaf gets leaf_value(path, spec).
ValueMap BuildHParams(
    const HParamSpecs& specs,
    const std::function<Value(const std::string& path, const HParamSpec&)>&
        leaf_value);

}  // namespace det

namespace det::config_internal {

struct YamlNode;
class Checker;

// Parses the `hyperparameters` section at `path` into `out`, reporting
// problems to `checker`. `grid` makes `count` required for int, double and
// log hyperparameters.
void ParseHyperparameters(const YamlNode& node, const std::string& path,
                          bool grid, Checker* checker, HParamSpecs* out);

}  // namespace det::config_internal

#endif  // DET_COMMON_CONFIG_HPARAMS_H_
