// NewSearchMethod: each searcher of the config as a TournamentSearch (see
// tournament_search.h for why one engine serves them all), except pbt, whose
// rounds are a search of their own (pbt_search.h).
#include "master/searcher/searcher.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config_hparams.h"
#include "master/searcher/asha_brackets.h"
#include "master/searcher/pbt_search.h"
#include "master/searcher/tournament_search.h"

namespace det::searcher {

std::string ToString(const Operation& op) {
  if (const auto* c = std::get_if<Create>(&op)) {
    return absl::StrCat("Create{id=", c->request_id, ", seed=", c->seed,
                        c->warm_start_from != 0
                            ? absl::StrCat(", from=", c->warm_start_from)
                            : "",
                        ", hparams=", Value(c->hparams).ToJson(), "}");
  }
  if (const auto* v = std::get_if<ValidateAfter>(&op)) {
    return absl::StrCat("ValidateAfter{id=", v->request_id,
                        ", length=", v->length, ", points=[",
                        absl::StrJoin(v->validation_points, ","), "]}");
  }
  if (const auto* c = std::get_if<Close>(&op)) {
    return absl::StrCat("Close{id=", c->request_id, "}");
  }
  const auto& s = std::get<Shutdown>(op);
  return absl::StrCat("Shutdown{failure=", s.failure ? "true" : "false", "}");
}

absl::StatusOr<std::unique_ptr<SearchMethod>> NewSearchMethod(
    const ExperimentConfig& config) {
  const SearcherConfig& s = config.searcher;
  if (s.max_length.value <= 0) {
    return absl::InvalidArgumentError(
        "searcher.max_length must be positive (was the config validated?)");
  }
  if (s.name == SearcherName::kPbt) {
    if (s.pbt.population_size <= 0 || s.pbt.num_rounds <= 0) {
      return absl::InvalidArgumentError(
          "pbt needs population_size > 0 and num_rounds > 0");
    }
    PbtOptions p;
    p.pbt = s.pbt;
    p.length_per_round = s.max_length.value;
    p.smaller_is_better = s.smaller_is_better;
    p.hparams = config.hyperparameters;
    p.experiment_seed = config.experiment_seed;
    return std::unique_ptr<SearchMethod>(new PbtSearch(std::move(p)));
  }
  TournamentOptions o;
  o.method = SearcherNameString(s.name);
  o.max_length = s.max_length.value;
  o.divisor = s.divisor;
  o.smaller_is_better = s.smaller_is_better;
  o.hparams = config.hyperparameters;
  o.experiment_seed = config.experiment_seed;
  // searcher.sampler: random and adaptive_asha only (the config refuses it
  // elsewhere; single and grid never sample by results).
  if (s.name == SearcherName::kRandom ||
      s.name == SearcherName::kAdaptiveAsha) {
    o.sampler = s.sampler;
    o.tpe = s.tpe;
  }
  // Resampling can only help when some hyperparameter is not const.
  o.replace_invalid = false;
  for (const HParamLeaf& leaf : FlattenHParams(config.hyperparameters)) {
    if (leaf.spec->type != HParamSpec::Type::kConst) o.replace_invalid = true;
  }

  // A bracket with one rung never stops anything.
  auto one_bracket = [&](int64_t trials) {
    AshaBracket b;
    b.num_rungs = 1;
    b.max_trials = trials;
    b.max_concurrent_trials =
        s.max_concurrent_trials == 0
            ? trials
            : std::min<int64_t>(s.max_concurrent_trials, trials);
    b.rung_lengths = {s.max_length.value};
    return b;
  };
  switch (s.name) {
    case SearcherName::kSingle:
      o.brackets = {one_bracket(1)};
      break;
    case SearcherName::kGrid: {
      int64_t size = GridSize(config.hyperparameters);
      if (size <= 0) {
        return absl::InvalidArgumentError("the grid has no points");
      }
      o.grid = true;
      o.replace_invalid = false;
      o.brackets = {one_bracket(size)};
      break;
    }
    case SearcherName::kRandom:
      if (s.max_trials <= 0) {
        return absl::InvalidArgumentError(
            "searcher.max_trials must be positive for random search");
      }
      o.brackets = {one_bracket(s.max_trials)};
      break;
    case SearcherName::kAdaptiveAsha:
      if (s.max_trials <= 0 || s.divisor <= 1) {
        return absl::InvalidArgumentError(
            "adaptive_asha needs max_trials > 0 and divisor > 1");
      }
      o.brackets = PlanAshaBrackets(s);
      break;
    case SearcherName::kPbt:
      break;  // above
  }
  return std::unique_ptr<SearchMethod>(new TournamentSearch(std::move(o)));
}

}  // namespace det::searcher
