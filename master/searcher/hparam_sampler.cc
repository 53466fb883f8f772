#include "master/searcher/hparam_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/config_hparams.h"

namespace det::searcher {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// SplitMix64's output function: a strong, portable 64-bit mix.
uint64_t Finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Mix(uint64_t z) { return Finalize(z + kGolden); }

uint64_t HashString(const std::string& s) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

double SampleInternal(const HParamSpec& spec, SplitMix64& rng) {
  switch (spec.type) {
    case HParamSpec::Type::kInt: {
      int64_t lo = static_cast<int64_t>(spec.minval);
      int64_t hi = static_cast<int64_t>(spec.maxval);
      uint64_t range = static_cast<uint64_t>(hi - lo) + 1;  // |lo|,|hi| <= 2^53
      return static_cast<double>(lo + static_cast<int64_t>(rng.Below(range)));
    }
    case HParamSpec::Type::kDouble:
    case HParamSpec::Type::kLog:
      return spec.minval + rng.Uniform() * (spec.maxval - spec.minval);
    case HParamSpec::Type::kCategorical:
      return static_cast<double>(rng.Below(spec.vals.size()));
    case HParamSpec::Type::kConst:
    case HParamSpec::Type::kGroup:
      break;
  }
  return 0;
}

uint64_t TrialKey(uint64_t experiment_seed, int64_t request_id) {
  return Mix(Mix(experiment_seed ^ 0x5851f42d4c957f2dULL) +
             static_cast<uint64_t>(request_id));
}

// The value at `names` (a leaf's path) in a nested hyperparameter map, or
// null.
const Value* Find(const ValueMap& hparams,
                  const std::vector<std::string>& names) {
  const ValueMap* map = &hparams;
  const Value* v = nullptr;
  for (const std::string& name : names) {
    if (map == nullptr) return nullptr;
    auto it = map->find(name);
    if (it == map->end()) return nullptr;
    v = &it->second;
    map = v->is_map() ? &v->as_map() : nullptr;
  }
  return v;
}

Value Perturb(const HParamSpec& spec, const Value& old, bool decrease,
              double factor) {
  const double multiplier = decrease ? 1 - factor : 1 + factor;
  switch (spec.type) {
    case HParamSpec::Type::kInt: {
      double scaled = old.as_number() * multiplier;
      scaled = decrease ? std::floor(scaled) : std::ceil(scaled);
      return Value(
          static_cast<int64_t>(std::clamp(scaled, spec.minval, spec.maxval)));
    }
    case HParamSpec::Type::kDouble:
      return Value(
          std::clamp(old.as_number() * multiplier, spec.minval, spec.maxval));
    case HParamSpec::Type::kLog:
      return Value(std::clamp(old.as_number() * multiplier,
                              std::pow(spec.base, spec.minval),
                              std::pow(spec.base, spec.maxval)));
    default:
      return old;  // categorical, const: unchanged
  }
}

}  // namespace

uint64_t SplitMix64::Next() {
  state_ += kGolden;
  return Finalize(state_);
}

uint64_t SplitMix64::Below(uint64_t n) {
  uint64_t limit = std::numeric_limits<uint64_t>::max() -
                   std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % n;
}

uint64_t MixSeed(uint64_t a, uint64_t b) { return Mix(Mix(a) ^ b); }

uint64_t HashPath(const std::string& path) { return HashString(path); }

double SampleLeafInternal(const HParamSpec& spec, const std::string& path,
                          uint64_t experiment_seed, int64_t request_id) {
  SplitMix64 rng(TrialKey(experiment_seed, request_id) ^ HashString(path));
  return SampleInternal(spec, rng);
}

Value LeafValue(const HParamSpec& spec, double internal) {
  switch (spec.type) {
    case HParamSpec::Type::kConst:
      return spec.val;
    case HParamSpec::Type::kInt:
      return Value(static_cast<int64_t>(internal));
    case HParamSpec::Type::kDouble:
      return Value(internal);
    case HParamSpec::Type::kLog:
      return Value(std::pow(spec.base, internal));
    case HParamSpec::Type::kCategorical: {
      size_t i = static_cast<size_t>(internal);
      return i < spec.vals.size() ? spec.vals[i] : Value();
    }
    case HParamSpec::Type::kGroup:
      break;
  }
  return Value();
}

uint64_t TrialSeed(uint64_t experiment_seed, int64_t request_id) {
  return Mix(Mix(experiment_seed) ^ static_cast<uint64_t>(request_id)) >> 32;
}

ValueMap SampleHParams(const HParamSpecs& specs, uint64_t experiment_seed,
                       int64_t request_id) {
  return BuildHParams(
      specs, [&](const std::string& path, const HParamSpec& spec) {
        if (spec.type == HParamSpec::Type::kConst) return spec.val;
        return LeafValue(
            spec, SampleLeafInternal(spec, path, experiment_seed, request_id));
      });
}

ValueMap ExploreHParams(const HParamSpecs& specs, const ValueMap& parent,
                        double resample_probability, double perturb_factor,
                        uint64_t experiment_seed, int64_t request_id) {
  std::map<std::string, Value> chosen;
  uint64_t trial_key = Mix(Mix(experiment_seed ^ 0x2545f4914f6cdd1dULL) +
                           static_cast<uint64_t>(request_id));
  for (const HParamLeaf& leaf : FlattenHParams(specs)) {
    SplitMix64 rng(trial_key ^ HashString(leaf.path));
    const Value* old = Find(parent, leaf.names);
    const bool numeric = leaf.spec->type == HParamSpec::Type::kInt ||
                         leaf.spec->type == HParamSpec::Type::kDouble ||
                         leaf.spec->type == HParamSpec::Type::kLog;
    if (rng.Uniform() < resample_probability || old == nullptr ||
        (numeric && !old->is_number())) {
      chosen[leaf.path] =
          leaf.spec->type == HParamSpec::Type::kConst
              ? leaf.spec->val
              : LeafValue(*leaf.spec, SampleInternal(*leaf.spec, rng));
    } else {
      chosen[leaf.path] =
          Perturb(*leaf.spec, *old, rng.Uniform() < 0.5, perturb_factor);
    }
  }
  return BuildHParams(specs, [&](const std::string& path, const HParamSpec&) {
    return chosen[path];
  });
}

ValueMap GridHParams(const HParamSpecs& specs, int64_t index) {
  // Mixed-radix decoding: the last leaf in sorted order varies fastest.
  std::vector<HParamLeaf> leaves = FlattenHParams(specs);
  std::map<std::string, Value> chosen;
  for (auto it = leaves.rbegin(); it != leaves.rend(); ++it) {
    int64_t size = GridAxisSize(*it->spec);
    chosen[it->path] = GridAxisValue(*it->spec, index % size);
    index /= size;
  }
  return BuildHParams(specs, [&](const std::string& path, const HParamSpec&) {
    return chosen[path];
  });
}

}  // namespace det::searcher
