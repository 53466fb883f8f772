#include "examples/fake_trial/fake_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace det::fake {
namespace {

absl::Status Number(const ValueMap& hp, const char* name, double lo, double hi,
                    double* out) {
  auto it = hp.find(name);
  if (it == hp.end()) return absl::OkStatus();
  if (!it->second.is_number()) {
    return absl::InvalidArgumentError(absl::StrCat("hyperparameter ", name,
                                                   " must be a number, got ",
                                                   it->second.ToJson()));
  }
  const double v = it->second.as_number();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hyperparameter ", name, " = ", v, " is outside [", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status Integer(const ValueMap& hp, const char* name, int64_t lo,
                     int64_t hi, int64_t* out) {
  double v = static_cast<double>(*out);
  absl::Status s =
      Number(hp, name, static_cast<double>(lo), static_cast<double>(hi), &v);
  if (!s.ok()) return s;
  if (v != std::floor(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hyperparameter ", name, " must be an integer, got ", v));
  }
  *out = static_cast<int64_t>(v);
  return absl::OkStatus();
}

absl::Status Bool(const ValueMap& hp, const char* name, bool* out) {
  auto it = hp.find(name);
  if (it == hp.end()) return absl::OkStatus();
  if (!it->second.is_bool()) {
    return absl::InvalidArgumentError(
        absl::StrCat("hyperparameter ", name, " must be true or false, got ",
                     it->second.ToJson()));
  }
  *out = it->second.as_bool();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FakeHParams> ParseHParams(const ValueMap& hp) {
  FakeHParams out;
  for (absl::Status s : {
           Number(hp, "x", -100, 100, &out.x),
           Number(hp, "y", -100, 100, &out.y),
           Integer(hp, "sleep_ms", 0, 3600 * 1000, &out.sleep_ms),
           Integer(hp, "report_every", 1, 1 << 30, &out.report_every),
           Integer(hp, "fail_on_run", -1, 1 << 30, &out.fail_on_run),
           Integer(hp, "crash_on_run", -1, 1 << 30, &out.crash_on_run),
           Integer(hp, "fail_at_step", 0, int64_t{1} << 40, &out.fail_at_step),
           Bool(hp, "invalid", &out.invalid),
           Bool(hp, "ignore_stop", &out.ignore_stop),
           Bool(hp, "checkpoint_at_end", &out.checkpoint_at_end),
           Bool(hp, "bad_output", &out.bad_output),
       }) {
    if (!s.ok()) return s;
  }
  if (out.invalid) {
    return absl::InvalidArgumentError(
        "hyperparameter invalid = true: rejecting these hyperparameters as "
        "asked");
  }
  return out;
}

double ValidationAccuracy(const FakeHParams& hp, int64_t steps) {
  const double shape =
      0.8 - (hp.x - 0.3) * (hp.x - 0.3) - 0.5 * (hp.y - 0.6) * (hp.y - 0.6);
  const double progress = 0.15 * (1.0 - 100.0 / (100.0 + steps));
  return std::clamp(shape + progress, 0.0, 1.0);
}

std::map<std::string, double> TrainingMetrics(const FakeHParams& hp,
                                              int64_t steps) {
  const double acc = ValidationAccuracy(hp, steps);
  return {{"loss", 1.0 - acc + 0.05}, {"accuracy", std::min(1.0, acc + 0.02)}};
}

std::map<std::string, double> ValidationMetrics(const FakeHParams& hp,
                                                int64_t steps) {
  const double acc = ValidationAccuracy(hp, steps);
  return {{"validation_accuracy", acc},
          {"validation_loss", 1.0 - acc},
          {"validation_error", 1.0 - acc}};
}

}  // namespace det::fake
