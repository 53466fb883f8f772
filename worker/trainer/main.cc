// det-trial: the built-in trainer process (CIFAR-10 images through a CNN, or
// JSON records, data.format: jsonl, through an MLP).
//
// Started by a worker, it takes its spec from the trial API (the flags are
// ignored); started by hand, the flags make the spec and reports print as
// JSON lines:
//   det-trial --hparams '{"learning_rate":0.01}' --data DIR --batches 500
//             --validate-every 100 [--checkpoint-dir D] [--restore UUID]
//   det-trial --data-options '{"format":"jsonl","path":"p.jsonl",
//             "label":"y","task":"regression","validation_split":0.2}' ...
// Data parallel by hand: start one process per rank with DET_RANK=r,
// DET_WORLD_SIZE=n and the same --rendezvous HOST:PORT (rank 0 hosts it).
//
// DET_NUM_THREADS sets the CPU threads; CUDA_VISIBLE_DEVICES (non-empty) puts
// the run on the first visible GPU; DET_DETERMINISTIC=1 asks for
// deterministic kernels only.
//
// Exit status: 0 finished or stopped on request, 3 invalid hyperparameters,
// 1 any other failure (the message is on stderr).
#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/openmp_env.h"
#include "common/value.h"
#include "google/protobuf/struct.pb.h"
#include "worker/trainer/trainer.h"
#include "worker/trial_api/trial_context.h"

namespace det::trainer {
namespace {

struct Flags {
  std::string hparams = "{}";
  std::string data_dir;
  std::string data_json = "{}";
  int64_t batches = 100;
  int64_t validate_every = 0;
  int64_t checkpoint_period = 0;
  std::string checkpoint_dir;
  std::string restore;
  std::string warm_start;
  std::string rendezvous;
  uint64_t seed = 1;
};

int Fail(int code, const absl::Status& s) {
  std::cerr << "det-trial: " << s.message() << std::endl;
  return code;
}

absl::StatusOr<v1::TrialSpec> StandaloneSpec(const Flags& f) {
  v1::TrialSpec spec;
  absl::StatusOr<Value> hp = ParseJson(f.hparams);
  if (!hp.ok() || !hp->is_map()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--hparams: expected a JSON object, e.g. '{\"learning_rate\":0.01}'",
        hp.ok() ? "" : absl::StrCat(": ", hp.status().message())));
  }
  ToProto(hp->as_map(), spec.mutable_hparams());
  absl::StatusOr<Value> data = ParseJson(f.data_json);
  if (!data.ok() || !data->is_map()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--data-options: expected a JSON object, e.g. '{\"train_limit\":5000}'",
        data.ok() ? "" : absl::StrCat(": ", data.status().message())));
  }
  ValueMap data_map = data->as_map();
  if (!f.data_dir.empty()) data_map["dir"] = f.data_dir;
  ToProto(data_map, spec.mutable_data());
  spec.set_seed(f.seed);
  spec.set_target_batches(f.batches);
  if (f.validate_every > 0) {
    for (int64_t b = f.validate_every; b <= f.batches; b += f.validate_every) {
      spec.add_validation_points(b);
    }
  }
  spec.set_checkpoint_period(f.checkpoint_period);
  spec.set_checkpoint_dir(f.checkpoint_dir);
  spec.set_restore_uuid(f.restore);
  if (!f.warm_start.empty()) {
    const std::filesystem::path p(f.warm_start);
    spec.mutable_warm_start()->set_uuid(p.filename().string());
    spec.set_warm_start_dir(p.parent_path().string());
  }
  spec.set_world_size(1);  // DET_WORLD_SIZE overrides it
  spec.set_rendezvous(f.rendezvous);
  return spec;
}

int NumThreads() {
  if (const char* env = std::getenv("DET_NUM_THREADS"); env && *env) {
    int n = 0;
    if (absl::SimpleAtoi(env, &n) && n > 0) return n;
    std::cerr << "det-trial: ignoring DET_NUM_THREADS='" << env
              << "' (not a positive integer)" << std::endl;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

torch::Device PickDevice() {
  // The worker hands a GPU slot over as CUDA_VISIBLE_DEVICES; without one
  // (or without a CUDA build of libtorch) the same code runs on the CPU.
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (visible && *visible && torch::cuda::is_available())
    return torch::Device(torch::kCUDA, 0);
  return torch::kCPU;
}

// OpenMP threads that spin while waiting collapse when cores are shared
// (other trials, the worker, a build): measured 32 img/s spinning against
// 228 img/s passive on two busy cores. Sleeping at once costs ~15% on an
// idle machine, though (a wake-up per parallel region), so the default is a
// short spin, then sleep: GOMP_SPINCOUNT=1000 (~10 us). Measured for
// const.yaml's model, 2 threads: alone 3,100 img/s against 2,620 passive
// (3,100 spinning); three such runs sharing 2 cores ~960 each against ~990
// passive (~180 spinning). libgomp reads these when it is loaded, before
// main, so the process re-executes itself once with them set (libtorch
// loads twice: ~0.37 s; a worker sets them for its trials, so only runs by
// hand pay it). An explicit OMP_WAIT_POLICY is respected as it is.
void EnsurePassiveOpenMpWait(char** argv) {
  const auto vars = OpenMpWaitDefaults();
  if (vars.empty()) return;
  for (const auto& [name, value] : vars) setenv(name, value, 1);
  execv("/proc/self/exe", argv);
  // Exec failed (no /proc): carry on with the default policy.
}

// DET_DETERMINISTIC=1 asks for deterministic kernels only, so that a run
// resumed from a checkpoint on a GPU repeats a straight run bit for bit
// (cuDNN and cuBLAS otherwise may pick kernels that sum in a varying order).
// Kernels without a deterministic version only warn. The CPU path is
// deterministic already.
void MaybeDeterministic() {
  const char* env = std::getenv("DET_DETERMINISTIC");
  if (env == nullptr || std::string(env) != "1") return;
  // cuBLAS reads this when its first handle is made (after this point).
  setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setBenchmarkCuDNN(false);
  at::globalContext().setDeterministicCuDNN(true);
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  std::cerr << "det-trial: deterministic kernels (DET_DETERMINISTIC=1)"
            << std::endl;
}

int Main(int argc, char** argv) {
  EnsurePassiveOpenMpWait(argv);
  MaybeDeterministic();
  Flags f;
  CLI::App app{
      "det-trial: trains the built-in CIFAR-10 CNN (or, with data.format "
      "jsonl, an MLP on JSON records) for one trial"};
  app.add_option("--hparams", f.hparams, "hyperparameters as a JSON object");
  app.add_option("--data", f.data_dir, "CIFAR-10 binary folder (data.dir)");
  app.add_option("--data-options", f.data_json,
                 "the config's data section as a JSON object, e.g. "
                 "'{\"train_limit\":5000,\"augment\":false}'");
  app.add_option("--batches", f.batches, "batches to train in total")
      ->check(CLI::PositiveNumber);
  app.add_option("--validate-every", f.validate_every,
                 "validate every N batches (and at the end)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--checkpoint-period", f.checkpoint_period,
                 "checkpoint every N batches")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--checkpoint-dir", f.checkpoint_dir, "where checkpoints go");
  app.add_option("--restore", f.restore,
                 "checkpoint UUID under --checkpoint-dir to resume");
  app.add_option("--warm-start", f.warm_start,
                 "a checkpoint folder (DIR/UUID) whose weights to start from, "
                 "step count at 0 (ignored with --restore)");
  app.add_option("--seed", f.seed, "trial seed");
  app.add_option("--rendezvous", f.rendezvous,
                 "host:port of rank 0's store, for DET_WORLD_SIZE > 1 "
                 "(each process sets DET_RANK); with DET_WORLD_SIZE=1 a group "
                 "of one, to try the collectives' backend");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  absl::StatusOr<v1::TrialSpec> standalone = StandaloneSpec(f);
  if (!standalone.ok()) return Fail(kExitError, standalone.status());
  absl::StatusOr<std::unique_ptr<TrialContext>> ctx =
      TrialContext::FromEnvironment(*standalone);
  if (!ctx.ok()) return Fail(kExitError, ctx.status());
  const v1::TrialSpec& spec = (*ctx)->spec();
  const int rank = (*ctx)->rank(), world = std::max(1, (*ctx)->world_size());

  const ValueMap data_map = FromProto(spec.data());
  const Task task = TaskForData(data_map);
  absl::StatusOr<HParams> hp = ParseHParams(FromProto(spec.hparams()), task);
  if (!hp.ok()) return Fail(kExitInvalidHP, hp.status());
  if (hp->global_batch_size % world != 0) {
    return Fail(
        kExitInvalidHP,
        absl::InvalidArgumentError(absl::StrCat(
            "hyperparameter 'global_batch_size': ", hp->global_batch_size,
            " does not split evenly over slots_per_trial ", world)));
  }
  // JSON records: read, checked and encoded whole before anything trains;
  // a resumed run encodes them with the schema its checkpoint saved.
  std::optional<records::RecordsOptions> records_options;
  absl::StatusOr<DataOptions> data_options = DataOptions{};
  if (task == Task::kRecords) {
    absl::StatusOr<records::RecordsOptions> ro =
        records::ParseRecordsOptions(data_map);
    if (!ro.ok()) return Fail(kExitError, ro.status());
    records_options = *std::move(ro);
    data_options->augment = false;
    data_options->report_period = records_options->report_period;
    data_options->validation_batch_size =
        records_options->validation_batch_size;
  } else {
    data_options = ParseDataOptions(data_map);
    if (!data_options.ok()) return Fail(kExitError, data_options.status());
  }

  const int threads = NumThreads();
  at::set_num_threads(threads);
  const torch::Device device = PickDevice();

  // A group for several slots; also for one when a rendezvous is given by
  // hand (a group of one runs every collective: a check of the backend).
  std::unique_ptr<DataParallel> parallel;
  if (world > 1 || !spec.rendezvous().empty()) {
    absl::StatusOr<std::unique_ptr<DataParallel>> dp = DataParallel::Join(
        spec.rendezvous(), rank, world, std::chrono::minutes(5), device);
    if (!dp.ok()) return Fail(kExitError, dp.status());
    parallel = *std::move(dp);
  }

  // The run's own checkpoint to restore, else a warm start's weights.
  const StartingCheckpoint start = StartingCheckpointOf(spec);
  const std::string restoring =
      start.uuid.empty()
          ? ""
          : absl::StrCat(
                start.warm_start ? ", warm-starting from " : ", restoring ",
                start.uuid);
  std::string loaded;  // what was read, for the first line of the log
  absl::StatusOr<Cifar10> data = Cifar10{};
  absl::StatusOr<records::RecordsData> records_data = records::RecordsData{};
  if (task == Task::kRecords) {
    std::optional<records::Schema> saved;
    if (!start.uuid.empty()) {
      absl::StatusOr<records::Schema> schema = ReadCheckpointSchema(
          std::filesystem::path(start.path).parent_path().string(), start.uuid);
      if (!schema.ok()) return Fail(kExitError, schema.status());
      saved = *std::move(schema);
    }
    records_data =
        records::LoadRecords(*records_options, saved ? &*saved : nullptr);
    if (!records_data.ok()) return Fail(kExitError, records_data.status());
    loaded = absl::StrCat(
        records_data->train.rows, " training and ",
        records_data->validation.rows, " validation records of ",
        records_data->train.features, " features from ", records_options->path);
  } else {
    data = LoadCifar10(*data_options);
    if (!data.ok()) return Fail(kExitError, data.status());
    loaded = absl::StrCat(data->train.size(), " training and ",
                          data->validation.size(), " validation images from ",
                          data_options->dir);
  }
  std::cerr << "det-trial: rank " << rank << "/" << world
            << (parallel ? absl::StrCat(" (", parallel->backend(), ")") : "")
            << ", " << threads << " threads on " << device << ", " << loaded
            << ", target " << spec.target_batches() << " batches" << restoring
            << std::endl;

  TrainerOptions options;
  options.hparams = *hp;
  options.data = *data_options;
  options.seed = spec.seed();
  options.target_batches = spec.target_batches();
  options.validation_points.assign(spec.validation_points().begin(),
                                   spec.validation_points().end());
  options.checkpoint_period = spec.checkpoint_period();
  options.checkpoint_dir = spec.checkpoint_dir();
  options.restore_uuid = spec.restore_uuid();
  if (start.warm_start) options.warm_start_path = start.path;
  options.device = device;
  options.parallel = parallel.get();
  absl::StatusOr<std::unique_ptr<Trainer>> trainer =
      task == Task::kRecords
          ? Trainer::Create(std::move(options),
                            ToTensors(*std::move(records_data)))
          : Trainer::Create(std::move(options), *std::move(data));
  if (!trainer.ok()) return Fail(kExitError, trainer.status());

  TrialContext* c = ctx->get();
  TrainerCallbacks callbacks;
  callbacks.training_metrics = [c](int64_t steps, const Metrics& m) {
    return c->ReportTrainingMetrics(steps, m);
  };
  callbacks.validation_metrics = [c](int64_t steps, const Metrics& m) {
    return c->ReportValidationMetrics(steps, m);
  };
  callbacks.checkpoint = [c, &spec](const CheckpointInfo& info) {
    v1::Checkpoint ck;
    ck.set_trial_id(spec.trial_id());
    ck.set_uuid(info.uuid);
    ck.set_steps_completed(info.steps_completed);
    ck.set_time_us(absl::ToUnixMicros(absl::Now()));
    ck.set_size_bytes(info.size_bytes);
    for (const auto& [file, sha] : info.file_sha256)
      (*ck.mutable_file_sha256())[file] = sha;
    return c->ReportCheckpoint(ck);
  };
  callbacks.should_stop = [c] { return c->ShouldStop(); };

  absl::StatusOr<RunOutcome> outcome = (*trainer)->Run(callbacks);
  if (!outcome.ok()) return Fail(kExitError, outcome.status());
  std::cerr << "det-trial: "
            << (*outcome == RunOutcome::kCompleted ? "completed"
                                                   : "stopped on request")
            << " after " << (*trainer)->steps_completed() << " batches"
            << std::endl;
  return kExitOk;
}

}  // namespace
}  // namespace det::trainer

int main(int argc, char** argv) { return det::trainer::Main(argc, argv); }
