#include "master/searcher/asha_brackets.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"

namespace det::searcher {

int64_t FloorLog(double divisor, double x, int64_t cap) {
  int64_t k = 0;
  double power = divisor;
  // The relative slack absorbs rounding in the repeated products.
  while (k < cap && power <= x * (1 + 1e-12)) {
    ++k;
    power *= divisor;
  }
  return k;
}

std::vector<AshaBracket> PlanAshaBrackets(const SearcherConfig& config,
                                          std::vector<std::string>* notes) {
  const double d = config.divisor;
  const int64_t max_trials = std::max<int64_t>(config.max_trials, 1);
  const int64_t max_length = std::max<int64_t>(config.max_length.value, 1);

  std::vector<int64_t> rungs(config.bracket_rungs.begin(),
                             config.bracket_rungs.end());
  if (rungs.empty()) {
    int64_t max_rungs = std::max<int64_t>(config.max_rungs, 1);
    max_rungs = std::min(
        max_rungs, FloorLog(d, static_cast<double>(max_length), max_rungs) + 1);
    max_rungs = std::min(
        max_rungs, FloorLog(d, static_cast<double>(max_trials), max_rungs) + 1);
    int64_t lowest = 1;
    switch (config.mode) {
      case AshaMode::kAggressive:
        lowest = max_rungs;
        break;
      case AshaMode::kStandard:
        lowest = (max_rungs - 1) / 2 + 1;
        break;
      case AshaMode::kConservative:
        lowest = 1;
        break;
    }
    for (int64_t n = lowest; n <= max_rungs; ++n) rungs.push_back(n);
  }
  // Brackets that stop more trials early go first.
  std::sort(rungs.begin(), rungs.end(), std::greater<int64_t>());
  if (static_cast<int64_t>(rungs.size()) > max_trials) {
    if (notes != nullptr) {
      notes->push_back(absl::StrCat(
          "only ", max_trials, " of ", rungs.size(),
          " brackets are used: each bracket needs at least one trial"));
    }
    rungs.resize(static_cast<size_t>(max_trials));
  }

  const size_t num = rungs.size();
  std::vector<AshaBracket> brackets(num);
  std::vector<double> weights;
  double total = 0;
  for (int64_t n : rungs) {
    weights.push_back(std::pow(d, static_cast<double>(n - 1)) /
                      static_cast<double>(n));
    total += weights.back();
  }
  int64_t allocated = 0;
  for (size_t i = 0; i < num; ++i) {
    brackets[i].num_rungs = static_cast<int>(rungs[i]);
    brackets[i].max_trials =
        std::max<int64_t>(static_cast<int64_t>(weights[i] / total *
                                               static_cast<double>(max_trials)),
                          1);
    allocated += brackets[i].max_trials;
  }
  brackets[0].max_trials += std::max<int64_t>(max_trials - allocated, 0);
  // "At least one each" can overshoot when weights are very uneven
  // (Determined lets it); take the excess from the largest brackets so
  // max_trials holds. There are at most max_trials brackets, so it fits.
  while (allocated > max_trials) {
    auto largest =
        std::max_element(brackets.begin(), brackets.end(),
                         [](const AshaBracket& a, const AshaBracket& b) {
                           return a.max_trials < b.max_trials;
                         });
    --largest->max_trials;
    --allocated;
  }

  int64_t concurrent = config.max_concurrent_trials;
  if (concurrent == 0) {
    int64_t each =
        std::max<int64_t>(brackets.back().max_trials, static_cast<int64_t>(d));
    for (AshaBracket& b : brackets) b.max_concurrent_trials = each;
  } else {
    if (concurrent < static_cast<int64_t>(num) && notes != nullptr) {
      notes->push_back(absl::StrCat(
          "max_concurrent_trials (", concurrent, ") is less than the ", num,
          " brackets: each bracket runs one trial at a time"));
    }
    concurrent = std::max<int64_t>(concurrent, static_cast<int64_t>(num));
    for (size_t i = 0; i < num; ++i) {
      brackets[i].max_concurrent_trials =
          concurrent / static_cast<int64_t>(num) +
          (static_cast<int64_t>(i) < concurrent % static_cast<int64_t>(num)
               ? 1
               : 0);
    }
  }

  for (AshaBracket& b : brackets) {
    for (int i = 0; i < b.num_rungs; ++i) {
      double rate = std::pow(d, static_cast<double>(b.num_rungs - i - 1));
      b.rung_lengths.push_back(std::max<int64_t>(
          static_cast<int64_t>(static_cast<double>(max_length) / rate), 1));
    }
  }
  return brackets;
}

}  // namespace det::searcher
