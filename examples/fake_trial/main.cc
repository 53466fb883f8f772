// det-fake-trial: a trial that "trains" without torch. It speaks the trial
// API like any custom entrypoint (see README.md): reports training and
// validation metrics that are a deterministic function of its
// hyperparameters and steps, writes tiny checkpoints, resumes from them,
// honours ShouldStop, and fails in the ways tests ask it to.
//
// Under a worker everything comes from the environment. By hand:
//   det-fake-trial --hparams='{"x":0.3}' --target=100 --validate=50
//                  [--checkpoint-dir=DIR] [--restore=UUID] [--run-id=N]
// prints its reports as JSON lines.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/value.h"
#include "examples/fake_trial/fake_checkpoint.h"
#include "examples/fake_trial/fake_model.h"
#include "google/protobuf/struct.pb.h"
#include "worker/trial_api/trial_context.h"

namespace {

using det::TrialContext;
namespace fake = det::fake;

int Fail(const std::string& message, int code = det::kExitError) {
  std::fprintf(stderr, "det-fake-trial: %s\n", message.c_str());
  return code;
}

// The spec used when no worker started us.
absl::StatusOr<det::v1::TrialSpec> StandaloneSpec(int argc, char** argv) {
  det::v1::TrialSpec spec;
  spec.set_trial_id(1);
  spec.set_target_batches(100);
  spec.set_checkpoint_dir("checkpoints");
  for (int i = 1; i < argc; ++i) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string& key = kv.first;
    const std::string& val = kv.second;
    int64_t n = 0;
    const bool is_int = absl::SimpleAtoi(val, &n);
    if (key == "--hparams") {
      absl::StatusOr<det::Value> v = det::ParseJson(val);
      if (!v.ok() || !v->is_map()) {
        return absl::InvalidArgumentError(
            "--hparams must be a JSON object, e.g. --hparams='{\"x\":0.3}'");
      }
      det::ToProto(v->as_map(), spec.mutable_hparams());
    } else if (key == "--target" && is_int && n > 0) {
      spec.set_target_batches(n);
    } else if (key == "--validate" && is_int && n > 0) {
      spec.add_validation_points(n);
    } else if (key == "--checkpoint-period" && is_int && n >= 0) {
      spec.set_checkpoint_period(n);
    } else if (key == "--checkpoint-dir" && !val.empty()) {
      spec.set_checkpoint_dir(val);
    } else if (key == "--restore") {
      spec.set_restore_uuid(val);
    } else if (key == "--run-id" && is_int && n >= 0) {
      spec.set_run_id(static_cast<int32_t>(n));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown or bad argument '", argv[i],
          "'; expected --hparams=JSON --target=N --validate=N "
          "--checkpoint-period=N --checkpoint-dir=DIR --restore=UUID "
          "--run-id=N"));
    }
  }
  return spec;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built with mutex deadlock detection on: a lock-order
  // graph updated on every lock, a debugging aid that costs CPU on every
  // event here. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<det::v1::TrialSpec> standalone = StandaloneSpec(argc, argv);
  if (!standalone.ok()) return Fail(std::string(standalone.status().message()));
  auto ctx_or = TrialContext::FromEnvironment(*standalone);
  if (!ctx_or.ok()) return Fail(ctx_or.status().ToString());
  TrialContext& ctx = **ctx_or;
  const det::v1::TrialSpec& spec = ctx.spec();
  const bool chief = ctx.rank() == 0;

  absl::StatusOr<fake::FakeHParams> hp_or =
      fake::ParseHParams(det::FromProto(spec.hparams()));
  if (!hp_or.ok()) {
    return Fail(std::string(hp_or.status().message()), det::kExitInvalidHP);
  }
  const fake::FakeHParams& hp = *hp_or;
  const int64_t target = spec.target_batches();

  int64_t steps = 0;
  if (!spec.restore_uuid().empty()) {
    absl::StatusOr<int64_t> restored =
        fake::ReadCheckpoint(spec.checkpoint_dir(), spec.restore_uuid());
    if (!restored.ok()) {
      return Fail(absl::StrCat("cannot restore checkpoint ",
                               spec.restore_uuid(), ": ",
                               restored.status().message()));
    }
    steps = *restored;
  }
  std::printf(
      "fake trial %lld run %d rank %d/%d: x=%g y=%g, steps %lld -> %lld\n",
      static_cast<long long>(spec.trial_id()), spec.run_id(), ctx.rank(),
      ctx.world_size(), hp.x, hp.y, static_cast<long long>(steps),
      static_cast<long long>(target));
  std::fflush(stdout);

  if (hp.bad_output) {
    std::string bar;
    for (int i = 0; i < 6000; ++i) bar += "\xe2\x96\x88";  // U+2588
    for (FILE* f : {stdout, stderr}) {
      std::fprintf(f, "bad output: caf\xe9 \xff\n%s\n", bar.c_str());
      std::fflush(f);
    }
  }

  int64_t last_checkpoint = spec.restore_uuid().empty() ? -1 : steps;
  int64_t last_validation = -1;
  auto checkpoint = [&]() -> absl::Status {
    if (!chief || last_checkpoint == steps) return absl::OkStatus();
    absl::StatusOr<fake::WrittenCheckpoint> w =
        fake::WriteCheckpoint(spec.checkpoint_dir(), spec.trial_id(), steps);
    if (!w.ok()) return w.status();
    det::v1::Checkpoint c;
    c.set_uuid(w->uuid);
    c.set_steps_completed(steps);
    c.set_size_bytes(w->size_bytes);
    for (const auto& [name, sha] : w->file_sha256) {
      (*c.mutable_file_sha256())[name] = sha;
    }
    last_checkpoint = steps;
    return ctx.ReportCheckpoint(c);
  };
  auto validate = [&]() -> absl::Status {
    if (!chief || last_validation == steps) return absl::OkStatus();
    last_validation = steps;
    return ctx.ReportValidationMetrics(steps,
                                       fake::ValidationMetrics(hp, steps));
  };
  auto maybe_fail = [&]() {
    if (steps < hp.fail_at_step) return;
    if (hp.fail_on_run == spec.run_id()) {
      std::fprintf(stderr, "fake failure on run %d at step %lld\n",
                   spec.run_id(), static_cast<long long>(steps));
      std::exit(det::kExitError);
    }
    if (hp.crash_on_run == spec.run_id()) {
      std::fprintf(stderr, "fake crash (abort) on run %d at step %lld\n",
                   spec.run_id(), static_cast<long long>(steps));
      std::fflush(stderr);
      std::abort();
    }
  };
  auto stop_now = [&]() -> int {
    absl::Status s = checkpoint();
    if (!s.ok()) return Fail(s.ToString());
    std::printf("stopping at step %lld as asked\n",
                static_cast<long long>(steps));
    det::ExitNow(det::kExitOk);
  };

  size_t next_validation = 0;
  while (next_validation < static_cast<size_t>(spec.validation_points_size()) &&
         spec.validation_points(next_validation) <= steps) {
    ++next_validation;
  }
  maybe_fail();
  if (!hp.ignore_stop && ctx.ShouldStop()) return stop_now();
  while (steps < target) {
    if (hp.sleep_ms > 0) absl::SleepFor(absl::Milliseconds(hp.sleep_ms));
    ++steps;
    absl::Status s;
    if (chief && steps % hp.report_every == 0) {
      s = ctx.ReportTrainingMetrics(steps, fake::TrainingMetrics(hp, steps));
    }
    if (s.ok() &&
        next_validation < static_cast<size_t>(spec.validation_points_size()) &&
        spec.validation_points(next_validation) == steps) {
      ++next_validation;
      s = validate();
    }
    if (s.ok() && spec.checkpoint_period() > 0 &&
        steps % spec.checkpoint_period() == 0) {
      s = checkpoint();
    }
    if (!s.ok()) return Fail(s.ToString());
    maybe_fail();
    if (!hp.ignore_stop && steps < target && ctx.ShouldStop()) {
      return stop_now();
    }
  }
  absl::Status s = validate();
  if (s.ok() && hp.checkpoint_at_end) s = checkpoint();
  if (!s.ok()) return Fail(s.ToString());
  std::printf("done: %lld steps, validation_accuracy %.6f\n",
              static_cast<long long>(steps),
              fake::ValidationAccuracy(hp, steps));
  // Everything is reported and acknowledged: leave without tearing down
  // gRPC (see ExitNow).
  det::ExitNow(det::kExitOk);
}
