#include "master/searcher/preview.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config_hparams.h"
#include "master/searcher/asha_brackets.h"

namespace det::searcher {
namespace {

int64_t SaturatingMul(int64_t a, int64_t b) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) {
    return std::numeric_limits<int64_t>::max();
  }
  return a * b;
}

// Left-aligned columns separated by two spaces.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// searcher.sampler: tpe. Trials are created at the start (up to the
// concurrency) and then one per trial that ends, and a trial ends only
// after a result (or a failure), so before the n-th result at most
// n - 1 + concurrency trials exist.
void PlanTpe(const SearcherConfig& s, SearchPlan* plan) {
  if (s.sampler != SamplerName::kTpe ||
      (s.name != SearcherName::kRandom &&
       s.name != SearcherName::kAdaptiveAsha)) {
    return;
  }
  plan->sampler = "tpe";
  plan->tpe = s.tpe;
  const int64_t startup = std::max<int64_t>(s.tpe.n_startup_trials, 1);
  plan->tpe_random_trials = std::min(
      plan->num_trials, s.tpe.n_startup_trials == 0
                            ? 0
                            : startup - 1 + plan->max_concurrent_trials);
  for (const PlanBracket& b : plan->brackets) {
    if (!b.rungs.empty() && (plan->tpe_first_rung == 0 ||
                             b.rungs[0].length < plan->tpe_first_rung)) {
      plan->tpe_first_rung = b.rungs[0].length;
    }
  }
  if (s.tpe.n_startup_trials >= plan->num_trials) {
    plan->notes.push_back(
        absl::StrCat("searcher.tpe.n_startup_trials (", s.tpe.n_startup_trials,
                     ") is not below the number of trials (", plan->num_trials,
                     "): every trial is a random draw"));
  }
}

}  // namespace

absl::StatusOr<SearchPlan> PlanSearch(const ExperimentConfig& config) {
  const SearcherConfig& s = config.searcher;
  if (s.max_length.value <= 0) {
    return absl::InvalidArgumentError("searcher.max_length must be positive");
  }
  SearchPlan plan;
  plan.searcher = SearcherNameString(s.name);
  plan.metric = s.metric;
  plan.smaller_is_better = s.smaller_is_better;
  plan.unit = s.max_length.unit;
  if (s.metric_length) plan.metric_unit = s.time_metric;
  plan.max_length = s.max_length.value;
  plan.trial_decides_length = s.trial_decides_length;
  auto limit = [&](int64_t trials) {
    return s.max_concurrent_trials == 0
               ? trials
               : std::min<int64_t>(s.max_concurrent_trials, trials);
  };
  switch (s.name) {
    case SearcherName::kSingle:
      plan.num_trials = 1;
      plan.max_concurrent_trials = 1;
      break;
    case SearcherName::kGrid:
      plan.num_trials = GridSize(config.hyperparameters);
      plan.max_concurrent_trials = limit(plan.num_trials);
      for (const HParamLeaf& leaf : FlattenHParams(config.hyperparameters)) {
        plan.grid_axes[leaf.path] = GridAxisSize(*leaf.spec);
      }
      break;
    case SearcherName::kRandom:
      if (s.max_trials <= 0) {
        return absl::InvalidArgumentError(
            "searcher.max_trials must be positive");
      }
      plan.num_trials = s.max_trials;
      plan.max_concurrent_trials = limit(plan.num_trials);
      break;
    case SearcherName::kAdaptiveAsha: {
      if (s.max_trials <= 0 || s.divisor <= 1) {
        return absl::InvalidArgumentError(
            "adaptive_asha needs max_trials > 0 and divisor > 1");
      }
      int64_t expected = 0;
      for (const AshaBracket& b : PlanAshaBrackets(s, &plan.notes)) {
        PlanBracket pb;
        pb.num_rungs = b.num_rungs;
        pb.trials = b.max_trials;
        pb.max_concurrent_trials =
            std::min(b.max_concurrent_trials, b.max_trials);
        int64_t reaching = b.max_trials;
        int64_t previous_length = 0;
        for (size_t i = 0; i < b.rung_lengths.size(); ++i) {
          if (i > 0) {
            reaching = std::max<int64_t>(
                static_cast<int64_t>(static_cast<double>(reaching) / s.divisor),
                1);
          }
          pb.rungs.push_back(PlanRung{b.rung_lengths[i], reaching});
          expected +=
              SaturatingMul(reaching, b.rung_lengths[i] - previous_length);
          previous_length = b.rung_lengths[i];
        }
        plan.num_trials += pb.trials;
        plan.max_concurrent_trials += pb.max_concurrent_trials;
        plan.brackets.push_back(std::move(pb));
      }
      plan.expected_length = expected;
      break;
    }
    case SearcherName::kPbt: {
      const PbtConfig& pbt = s.pbt;
      if (pbt.population_size <= 0 || pbt.num_rounds <= 0) {
        return absl::InvalidArgumentError(
            "pbt needs population_size > 0 and num_rounds > 0");
      }
      plan.population_size = pbt.population_size;
      plan.num_rounds = pbt.num_rounds;
      // As the searcher computes it (PbtSearch::NumTruncate).
      plan.replaced_per_round = std::min(
          static_cast<int64_t>(pbt.truncate_fraction *
                               static_cast<double>(pbt.population_size)),
          pbt.population_size / 2);
      plan.num_trials = SaturatingMul(pbt.population_size, pbt.num_rounds);
      plan.max_concurrent_trials = pbt.population_size;
      // Rounds 2.. are all alike: round 1 and round 2 stand for them all.
      plan.rounds.push_back(
          PlanRound{1, pbt.population_size, 0, 0, s.max_length.value});
      if (pbt.num_rounds > 1) {
        plan.rounds.push_back(PlanRound{
            2, pbt.population_size,
            pbt.population_size - plan.replaced_per_round,
            plan.replaced_per_round, SaturatingMul(2, s.max_length.value)});
      }
      if (plan.replaced_per_round == 0) {
        plan.notes.push_back(
            "truncate_fraction x population_size rounds down to 0: no member "
            "is ever replaced, each only continues from its own checkpoint");
      }
      break;
    }
  }
  PlanTpe(s, &plan);
  plan.total_length = SaturatingMul(plan.num_trials, plan.max_length);
  if (s.name != SearcherName::kAdaptiveAsha) {
    plan.expected_length = plan.total_length;
  }
  return plan;
}

std::string FormatPlan(const SearchPlan& plan) {
  const std::string unit =
      plan.metric_unit.empty() ? UnitName(plan.unit) : plan.metric_unit;
  std::string out = absl::StrCat(
      "Searcher: ", plan.searcher, ", optimising ", plan.metric, " (",
      plan.smaller_is_better ? "smaller" : "larger", " is better)\n",
      "Trials: ", plan.num_trials, ", at most ", plan.max_concurrent_trials,
      " at a time, ",
      plan.trial_decides_length
          ? "each training as long as it decides (the searcher gives no length)"
          : absl::StrCat("each trained for up to ", plan.max_length, " ", unit),
      "\n");
  if (plan.searcher == "adaptive_asha") {
    absl::StrAppend(&out, "Training: about ", plan.expected_length, " ", unit,
                    " in total with early stopping (at most ",
                    plan.total_length, " if nothing is stopped)\n\n");
    std::vector<std::vector<std::string>> rows = {
        {"Bracket", "Rungs", "Trials", "Concurrent",
         absl::StrCat("Rung lengths in ", unit, " (trials reaching them)")}};
    for (size_t i = 0; i < plan.brackets.size(); ++i) {
      const PlanBracket& b = plan.brackets[i];
      std::vector<std::string> rungs;
      for (const PlanRung& r : b.rungs) {
        rungs.push_back(absl::StrCat(r.length, " (", r.trials, ")"));
      }
      rows.push_back({absl::StrCat(i + 1), absl::StrCat(b.num_rungs),
                      absl::StrCat(b.trials),
                      absl::StrCat(b.max_concurrent_trials),
                      absl::StrJoin(rungs, ", ")});
    }
    absl::StrAppend(&out, FormatTable(rows));
  } else if (plan.searcher == "pbt") {
    const int64_t last = SaturatingMul(plan.num_rounds, plan.max_length);
    absl::StrAppend(&out, "Population: ", plan.population_size, " in ",
                    plan.num_rounds, " round", plan.num_rounds == 1 ? "" : "s",
                    " of ", plan.max_length, " ", unit, " (", last, " ", unit,
                    " for a member that survives them all)\n");
    if (plan.num_rounds > 1) {
      absl::StrAppend(
          &out, "After each round: the worst ", plan.replaced_per_round,
          " are replaced by copies of the best ", plan.replaced_per_round,
          " with explored hyperparameters, the others go on. One trial per "
          "member per round; each after round 1 starts from a checkpoint of "
          "the round before, its steps counted from 0\n");
    }
    absl::StrAppend(&out, "Training: ", plan.total_length, " ", unit,
                    " in total\n\n");
    std::vector<std::vector<std::string>> rows = {
        {"Round", "Trials", "Continuing", "Copies",
         absl::StrCat("Trained by its end, in ", unit)}};
    for (const PlanRound& r : plan.rounds) {
      const bool many = r.round == 2 && plan.num_rounds > 2;
      rows.push_back(
          {many ? absl::StrCat("2..", plan.num_rounds) : absl::StrCat(r.round),
           absl::StrCat(r.trials, many ? " each" : ""),
           absl::StrCat(r.continuing), absl::StrCat(r.copies),
           many ? absl::StrCat(r.trained_length, "..", last)
                : absl::StrCat(r.trained_length)});
    }
    absl::StrAppend(&out, FormatTable(rows));
  } else {
    if (!plan.trial_decides_length) {
      absl::StrAppend(&out, "Training: ", plan.total_length, " ", unit,
                      " in total\n");
    }
    if (plan.searcher == "grid") {
      std::vector<std::vector<std::string>> rows = {
          {"Hyperparameter", "Values"}};
      for (const auto& [name, count] : plan.grid_axes) {
        rows.push_back({name, absl::StrCat(count)});
      }
      absl::StrAppend(&out, "\n", FormatTable(rows));
    }
  }
  if (plan.sampler == "tpe") {
    const TpeConfig& t = plan.tpe;
    absl::StrAppend(
        &out, plan.brackets.empty() ? "" : "\n", "Sampler: tpe (",
        t.multivariate ? "multivariate" : "univariate", "; n_startup_trials ",
        t.n_startup_trials, ", n_ei_candidates ", t.n_ei_candidates, ", gamma ",
        t.gamma, " up to ", t.gamma_max,
        t.constant_liar ? ", constant liar" : "", ")\n",
        "  random draws until ", t.n_startup_trials, " trials have a result",
        plan.tpe_first_rung > 0
            ? absl::StrCat(" (the first at ", plan.tpe_first_rung, " ", unit,
                           ")")
            : "",
        ": up to ", plan.tpe_random_trials, " of the ", plan.num_trials,
        " trials;\n  the others (at least ",
        plan.num_trials - plan.tpe_random_trials,
        ") from the estimator, fitted on the longest rung with enough "
        "results\n");
  }
  for (const std::string& note : plan.notes) {
    absl::StrAppend(&out, "Note: ", note, "\n");
  }
  return out;
}

}  // namespace det::searcher
