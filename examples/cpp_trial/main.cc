// A trial written outside det's tree, against the installed SDK: fits
// y = 3x + 1 by SGD on synthetic data and reports its losses through the
// trial API. Hyperparameters: learning_rate (default 0.05), batch_size
// (default 16). It trains spec.target_batches() batches, validates at each
// of spec.validation_points() and at the end, and stops early when the
// searcher (ASHA) or the user asks. No checkpoints: a restart starts over.
// --exit-after=N: train at most N batches whatever the searcher says (for a
// searcher that gives no length, e.g. `single` without max_length/max_time).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "worker/trial_api/trial_context.h"

namespace {

double HParam(const det::v1::TrialSpec& spec, const std::string& name,
              double fallback) {
  const auto& fields = spec.hparams().fields();
  auto it = fields.find(name);
  return it == fields.end() ? fallback : it->second.number_value();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t limit = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--exit-after=", 13) == 0) {
      limit = std::atoll(argv[i] + 13);
    }
  }
  det::v1::TrialSpec standalone;  // when run by hand: 200 batches, printed
  standalone.set_target_batches(200);
  auto ctx_or = det::TrialContext::FromEnvironment(standalone);
  if (!ctx_or.ok()) {
    std::fprintf(stderr, "cpp_trial: %s\n", ctx_or.status().ToString().c_str());
    return det::kExitError;
  }
  det::TrialContext& ctx = **ctx_or;
  const det::v1::TrialSpec& spec = ctx.spec();
  const double lr = HParam(spec, "learning_rate", 0.05);
  const int batch = static_cast<int>(HParam(spec, "batch_size", 16));
  if (lr <= 0 || batch < 1) {
    std::fprintf(stderr,
                 "cpp_trial: need learning_rate > 0, batch_size >= 1\n");
    return det::kExitInvalidHP;
  }

  std::mt19937 rng(static_cast<unsigned>(spec.seed()));
  std::uniform_real_distribution<double> xs(-1, 1);
  std::normal_distribution<double> noise(0, 0.1);
  auto sample = [&](double* x, double* y) {
    *x = xs(rng);
    *y = 3 * *x + 1 + noise(rng);
  };
  double w = 0, b = 0;
  auto validation_loss = [&] {
    std::mt19937 vrng(7);  // the same 256 points every time
    std::uniform_real_distribution<double> vx(-1, 1);
    double sum = 0;
    for (int i = 0; i < 256; ++i) {
      double x = vx(vrng), err = w * x + b - (3 * x + 1);
      sum += err * err;
    }
    return sum / 256;
  };

  int next_point = 0;
  int64_t steps = 0, validated = -1;
  const int64_t target = limit > 0
                             ? std::min<int64_t>(limit, spec.target_batches())
                             : spec.target_batches();
  for (; steps < target && !ctx.ShouldStop();) {
    double gw = 0, gb = 0, loss = 0;
    for (int i = 0; i < batch; ++i) {
      double x, y;
      sample(&x, &y);
      double err = w * x + b - y;
      gw += 2 * err * x / batch;
      gb += 2 * err / batch;
      loss += err * err / batch;
    }
    w -= lr * gw;
    b -= lr * gb;
    ++steps;
    if (steps % 10 == 0) {
      (void)ctx.ReportTrainingMetrics(steps, {{"loss", loss}});
    }
    while (next_point < spec.validation_points_size() &&
           spec.validation_points(next_point) <= steps) {
      if (spec.validation_points(next_point++) == steps) {
        validated = steps;
        if (auto s = ctx.ReportValidationMetrics(
                steps, {{"validation_loss", validation_loss()}});
            !s.ok()) {
          std::fprintf(stderr, "cpp_trial: %s\n", s.ToString().c_str());
          return det::kExitError;
        }
      }
    }
  }
  if (validated != steps) {  // and at the end
    if (auto s = ctx.ReportValidationMetrics(
            steps, {{"validation_loss", validation_loss()}});
        !s.ok()) {
      std::fprintf(stderr, "cpp_trial: %s\n", s.ToString().c_str());
      return det::kExitError;
    }
  }
  std::printf("cpp_trial: w=%.3f b=%.3f after %lld batches\n", w, b,
              static_cast<long long>(steps));
  return det::kExitOk;
}
