#include "worker/trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace det::trainer {
namespace {

namespace fs = std::filesystem;

constexpr char kModelFile[] = "model.pt";
constexpr char kOptimizerFile[] = "optimizer.pt";
constexpr char kStateFile[] = "trainer_state.pt";
constexpr char kMetadataFile[] = "metadata.json";
constexpr char kSchemaFile[] = "records_schema.json";

// Seed streams derived from the trial seed, one per use.
constexpr uint64_t kInitStream = 1;
constexpr uint64_t kAugmentStream = 2;
constexpr uint64_t kDropoutStream = 3;
constexpr uint64_t kOrderStream = 4;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CUDA kernels run asynchronously: a clock read is only meaningful after the
// device has finished the work queued before it.
void SyncDevice(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// torch reports errors by throwing c10::Error (a std::exception).
template <typename F>
absl::Status Guard(const std::string& what, F&& f,
                   absl::StatusCode code = absl::StatusCode::kInternal) {
  try {
    f();
  } catch (const std::exception& e) {
    std::string msg = e.what();
    // c10 appends a C++ backtrace after the first line; users need the line.
    if (size_t nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    return absl::Status(code, absl::StrCat(what, ": ", msg));
  }
  return absl::OkStatus();
}

// The model's tensors in one flat archive keyed by their dotted names.
// (torch::load(module) would silently take tensors of another shape.)
// Written from CPU copies, so a checkpoint loads on any device.
void SaveModel(torch::nn::Module& model, const std::string& path) {
  torch::serialize::OutputArchive archive;
  for (const auto& p : model.named_parameters())
    archive.write(p.key(), p.value().detach().to(torch::kCPU));
  for (const auto& b : model.named_buffers())
    archive.write(b.key(), b.value().to(torch::kCPU), true);
  archive.save_to(path);
}

// Copies the saved values into the model's own tensors, which keeps their
// layout (channels-last) and the optimizer's references to them.
void LoadModel(const std::string& path, torch::nn::Module& model) {
  torch::serialize::InputArchive archive;
  archive.load_from(path, torch::Device(torch::kCPU));
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor& dest,
                  bool is_buffer) {
    torch::Tensor saved;
    if (!archive.try_read(name, saved, is_buffer)) {
      throw std::runtime_error(absl::StrCat(
          "has no tensor '", name,
          "' (was the checkpoint written with other model hyperparameters?)"));
    }
    if (saved.sizes() != dest.sizes()) {
      throw std::runtime_error(absl::StrCat(
          "tensor '", name, "' has shape ", c10::str(saved.sizes()),
          ", the model needs ", c10::str(dest.sizes()),
          " (was the checkpoint written with other model hyperparameters?)"));
    }
    dest.copy_(saved);
  };
  for (auto& p : model.named_parameters()) load(p.key(), p.value(), false);
  for (auto& b : model.named_buffers()) load(b.key(), b.value(), true);
}

}  // namespace

RecordsTensors ToTensors(records::RecordsData data) {
  auto features = [](records::EncodedSet& set) {
    return torch::from_blob(set.x.data(), {set.rows, set.features},
                            torch::kFloat)
        .clone();
  };
  const bool classes =
      data.schema.task == records::PredictionTask::kClassification;
  auto targets = [&](records::EncodedSet& set) {
    torch::Tensor y =
        torch::from_blob(set.y.data(), {set.rows}, torch::kFloat).clone();
    return classes ? y.to(torch::kLong) : y;
  };
  RecordsTensors t;
  t.train_x = features(data.train);
  t.train_y = targets(data.train);
  t.validation_x = features(data.validation);
  t.validation_y = targets(data.validation);
  t.schema = std::move(data.schema);
  return t;
}

absl::StatusOr<records::Schema> ReadCheckpointSchema(
    const std::string& checkpoint_dir, const std::string& uuid) {
  absl::StatusOr<std::string> dir = VerifyCheckpoint(checkpoint_dir, uuid);
  if (!dir.ok()) return dir.status();
  const std::string path = *dir + "/" + kSchemaFile;
  std::ifstream in(path);
  if (!in) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint ", uuid, " has no ", kSchemaFile,
        " (was it written by a CIFAR-10 trial, not a JSON-records one?)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<records::Schema> schema =
      records::Schema::FromJson(text.str());
  if (!schema.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", schema.status().message()));
  }
  return schema;
}

Trainer::Trainer(TrainerOptions options, Cifar10 data, RecordsTensors records)
    : options_(std::move(options)),
      records_task_(records.train_x.defined()),
      data_(std::move(data)),
      records_(std::move(records)),
      stream_(records_task_ ? records_.train_size() : data_.train.size(),
              MixSeed(options_.seed, kOrderStream)),
      augment_gen_(at::make_generator<at::CPUGeneratorImpl>(
          MixSeed(options_.seed, kAugmentStream))) {
  if (options_.parallel != nullptr) {
    rank_ = options_.parallel->rank();
    world_size_ = options_.parallel->world_size();
  }
}

torch::nn::Module& Trainer::module() {
  return records_task_ ? static_cast<torch::nn::Module&>(*mlp_)
                       : static_cast<torch::nn::Module&>(*model_);
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(TrainerOptions options,
                                                         Cifar10 data) {
  return CreateFor(std::unique_ptr<Trainer>(
      new Trainer(std::move(options), std::move(data), RecordsTensors{})));
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(TrainerOptions options,
                                                         RecordsTensors data) {
  if (!data.train_x.defined() || data.train_size() == 0) {
    return absl::InvalidArgumentError("no training records");
  }
  return CreateFor(std::unique_ptr<Trainer>(
      new Trainer(std::move(options), Cifar10{}, std::move(data))));
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::CreateFor(
    std::unique_ptr<Trainer> t) {
  const TrainerOptions& o = t->options_;
  const HParams& hp = o.hparams;
  const int world = o.parallel ? o.parallel->world_size() : 1;
  if (absl::Status s = CheckBatchSplit(hp.global_batch_size, world); !s.ok()) {
    return s;
  }
  if (o.target_batches < 0) {
    return absl::InvalidArgumentError("target_batches must be >= 0");
  }
  absl::Status built = Guard("building the model", [&] {
    {
      // Initial weights come from libtorch's process-wide generator: two
      // trainers built at once in one process (ranks as threads in tests)
      // would interleave their draws, so seeding and drawing go together.
      static absl::Mutex init_mu(absl::kConstInit);
      absl::MutexLock lock(&init_mu);
      torch::manual_seed(MixSeed(o.seed, kInitStream));
      if (t->records_task_) {
        t->mlp_ = Mlp(hp, t->records_.schema.feature_count(),
                      t->records_.schema.output_count());
      } else {
        t->model_ = Cnn(hp);
      }
    }
    t->module().to(o.device);
    // Channels-last weights let oneDNN's convolutions run without layout
    // conversions (the batches come channels-last from NHWC storage).
    for (torch::Tensor& p : t->module().parameters()) {
      if (p.dim() == 4)
        p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
    }
    if (hp.optimizer == OptimizerKind::kSgd) {
      t->optimizer_ = std::make_unique<torch::optim::SGD>(
          t->module().parameters(), torch::optim::SGDOptions(hp.learning_rate)
                                        .momentum(hp.momentum)
                                        .nesterov(hp.nesterov)
                                        .weight_decay(hp.weight_decay));
    } else {
      t->optimizer_ = std::make_unique<torch::optim::Adam>(
          t->module().parameters(), torch::optim::AdamOptions(hp.learning_rate)
                                        .weight_decay(hp.weight_decay));
    }
  });
  if (!built.ok()) return built;
  if (o.device.is_cuda()) {
    // The whole set (150 MB of uint8 for CIFAR-10) lives on the GPU: each
    // batch is then gathered and augmented there, with no copy from pageable
    // host memory (which would make every batch wait for the GPU).
    absl::Status moved = Guard("copying the data set to the GPU", [&] {
      for (ImageSet* set : {&t->data_.train, &t->data_.validation}) {
        if (set->size() == 0) continue;
        set->images = set->images.to(o.device);
        set->labels = set->labels.to(o.device);
      }
      RecordsTensors& r = t->records_;
      for (torch::Tensor* x :
           {&r.train_x, &r.train_y, &r.validation_x, &r.validation_y}) {
        if (x->defined()) *x = x->to(o.device);
      }
    });
    if (!moved.ok()) return moved;
  }
  if (o.parallel != nullptr) {
    std::vector<torch::Tensor> state = t->module().parameters();
    for (auto& b : t->module().buffers()) state.push_back(b);
    if (absl::Status s = o.parallel->Broadcast(state); !s.ok()) return s;
  }
  if (!o.restore_uuid.empty()) {
    if (absl::Status s = t->Restore(o.restore_uuid); !s.ok()) return s;
  } else if (!o.warm_start_path.empty()) {
    if (absl::Status s = t->WarmStart(o.warm_start_path); !s.ok()) return s;
  }
  return t;
}

double Trainer::LearningRateAt(int64_t step) const {
  const HParams& hp = options_.hparams;
  switch (hp.lr_schedule) {
    case LrSchedule::kConstant:
      return hp.learning_rate;
    case LrSchedule::kCosine: {
      const double t =
          options_.target_batches > 0
              ? std::min(1.0, double(step) / options_.target_batches)
              : 0.0;
      return hp.learning_rate * 0.5 * (1.0 + std::cos(M_PI * t));
    }
    case LrSchedule::kStep: {
      const int64_t size =
          hp.lr_step_size > 0
              ? hp.lr_step_size
              : std::max<int64_t>(1, options_.target_batches / 3);
      return hp.learning_rate * std::pow(hp.lr_gamma, double(step / size));
    }
  }
  return hp.learning_rate;
}

void Trainer::SetLearningRate(double lr) {
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
}

absl::Status Trainer::TrainStep(double* loss_sum, int64_t* correct,
                                int64_t* samples) {
  torch::Tensor sums;
  if (absl::Status s = TrainStepOnDevice(&sums); !s.ok()) return s;
  *loss_sum += sums[0].item<double>();
  *correct += static_cast<int64_t>(sums[1].item<double>());
  *samples += options_.hparams.global_batch_size / world_size_;
  return absl::OkStatus();
}

std::pair<torch::Tensor, torch::Tensor> Trainer::LossAndSum(
    const torch::Tensor& out, const torch::Tensor& y) {
  if (regression()) {
    // The model predicts the standardised label (training mean and std).
    const records::Schema& s = records_.schema;
    torch::Tensor pred = out.squeeze(1);
    torch::Tensor loss =
        torch::mse_loss(pred, (y - s.label_mean) / s.label_scale);
    torch::Tensor error =
        pred.detach().to(torch::kDouble) * s.label_scale + s.label_mean - y;
    return {loss, error.square().sum()};
  }
  return {torch::nn::functional::cross_entropy(out, y),
          out.argmax(1).eq(y).sum().to(torch::kDouble)};
}

absl::Status Trainer::TrainStepOnDevice(torch::Tensor* sums) {
  const int64_t global = options_.hparams.global_batch_size;
  const int64_t local = global / world_size_;
  const int64_t first = rank_ * local;
  const torch::Device device = options_.device;
  const bool augment = options_.data.augment && !records_task_;
  return Guard("training step", [&] {
    torch::Tensor order = stream_.Take(steps_completed_ * global, global);
    torch::Tensor idx = order.narrow(0, first, local);
    constexpr int64_t kPad = 4;
    torch::Tensor dy, dx, flip;
    if (augment) {
      // Every rank draws the whole global batch's crops and flips so the
      // generator stays in step across ranks and with a single process.
      dy = torch::randint(0, 2 * kPad + 1, {global}, augment_gen_, torch::kLong)
               .narrow(0, first, local);
      dx = torch::randint(0, 2 * kPad + 1, {global}, augment_gen_, torch::kLong)
               .narrow(0, first, local);
      flip = torch::randint(0, 2, {global}, augment_gen_, torch::kLong)
                 .narrow(0, first, local);
    }
    if (device.is_cuda()) {
      // The batch's indices and draws reach the GPU in one asynchronous copy
      // from pinned memory; the images are already there.
      torch::Tensor host =
          augment ? torch::stack({idx, dy, dx, flip}) : idx.unsqueeze(0);
      torch::Tensor dev = host.pin_memory().to(device, /*non_blocking=*/true);
      idx = dev[0];
      if (augment) {
        dy = dev[1];
        dx = dev[2];
        flip = dev[3];
      }
    }
    torch::Tensor x, y;
    if (records_task_) {
      x = records_.train_x.index_select(0, idx);
      y = records_.train_y.index_select(0, idx);
    } else {
      torch::Tensor images = data_.train.images.index_select(0, idx);
      if (augment) {
        images = CropAndFlip(images, dy, dx, flip.to(torch::kBool), kPad);
      }
      x = NormalizeImages(images);
      y = data_.train.labels.index_select(0, idx);
    }

    SetLearningRate(LearningRateAt(steps_completed_));
    if (options_.hparams.dropout > 0) {
      // Dropout masks derive from (seed, step, rank): resumable exactly
      // without checkpointing the global generator.
      torch::manual_seed(MixSeed(MixSeed(options_.seed, kDropoutStream),
                                 MixSeed(steps_completed_, rank_)));
    }
    for (auto& p : module().parameters()) p.mutable_grad().reset();
    torch::Tensor out = records_task_ ? mlp_->forward(x) : model_->forward(x);
    auto [loss, second_sum] = LossAndSum(out, y);
    loss.backward();
    if (options_.parallel != nullptr) {
      absl::Status s =
          options_.parallel->AverageGradients(module().parameters());
      if (!s.ok()) throw std::runtime_error(std::string(s.message()));
      // As DistributedDataParallel's broadcast_buffers: batch-norm running
      // statistics follow rank 0.
      std::vector<torch::Tensor> buffers = module().buffers();
      if (!buffers.empty()) {
        s = options_.parallel->Broadcast(buffers);
        if (!s.ok()) throw std::runtime_error(std::string(s.message()));
      }
    }
    optimizer_->step();
    // Loss sum and correct count stay on the device (no wait for the GPU
    // here); they are read when training metrics are reported.
    *sums = torch::stack(
        {loss.detach().to(torch::kDouble) * double(local), second_sum});
    ++steps_completed_;
  });
}

absl::StatusOr<Metrics> Trainer::Validate() {
  const auto start = Clock::now();
  const int64_t n =
      records_task_ ? records_.validation_x.size(0) : data_.validation.size();
  const int64_t lo = n * rank_ / world_size_,
                hi = n * (rank_ + 1) / world_size_;
  const int64_t bs = options_.data.validation_batch_size;
  // Loss sum; correct count (regression: squared errors); absolute errors
  // (regression); n.
  torch::Tensor sums = torch::zeros({4}, torch::kDouble);
  absl::Status s = Guard("validation", [&] {
    torch::InferenceMode inference;
    if (records_task_) {
      mlp_->eval();  // running batch-norm statistics, no dropout
      torch::Tensor acc = torch::zeros(
          {3},
          torch::TensorOptions().device(options_.device).dtype(torch::kDouble));
      for (int64_t i = lo; i < hi; i += bs) {
        const int64_t len = std::min(bs, hi - i);
        torch::Tensor y = records_.validation_y.narrow(0, i, len);
        torch::Tensor out =
            mlp_->forward(records_.validation_x.narrow(0, i, len));
        auto [loss, second_sum] = LossAndSum(out, y);
        torch::Tensor abs_sum = torch::zeros_like(second_sum);
        if (regression()) {
          const records::Schema& sc = records_.schema;
          abs_sum = (out.squeeze(1).to(torch::kDouble) * sc.label_scale +
                     sc.label_mean - y)
                        .abs()
                        .sum();
        }
        acc += torch::stack(
            {loss.to(torch::kDouble) * double(len), second_sum, abs_sum});
      }
      mlp_->train();
      sums.narrow(0, 0, 3).copy_(acc.to(torch::kCPU));
      sums[3] = hi - lo;
      return;
    }
    // Weights frozen (batch norm folded, oneDNN layout) once per validation.
    const FrozenCnn frozen(*model_);
    // Sums stay on the device: one transfer at the end, not two per batch.
    const auto on_device = torch::TensorOptions().device(options_.device);
    torch::Tensor loss_sum = torch::zeros({1}, on_device.dtype(torch::kDouble));
    torch::Tensor correct = torch::zeros({1}, on_device.dtype(torch::kLong));
    for (int64_t i = lo; i < hi; i += bs) {
      const int64_t len = std::min(bs, hi - i);
      // The data set lives on the run's device (Create).
      torch::Tensor x =
          NormalizeImages(data_.validation.images.narrow(0, i, len));
      torch::Tensor y = data_.validation.labels.narrow(0, i, len);
      torch::Tensor logits = frozen.forward(x);
      loss_sum += torch::nn::functional::cross_entropy(
          logits, y,
          torch::nn::functional::CrossEntropyFuncOptions().reduction(
              torch::kSum));
      correct += logits.argmax(1).eq(y).sum();
    }
    sums[0] = loss_sum.item<double>();
    sums[1] = correct.item<int64_t>();
    sums[3] = hi - lo;  // the two reads above waited for the device
  });
  if (!s.ok()) return s;
  if (options_.parallel != nullptr) {
    if (absl::Status r = options_.parallel->AllReduceSum({sums}); !r.ok())
      return r;
  }
  const double count = sums[3].item<double>();
  Metrics m{
      {"validation_loss", sums[0].item<double>() / count},
      {"validation_samples_per_second", count / Seconds(Clock::now() - start)}};
  if (regression()) {
    m["validation_rmse"] = std::sqrt(sums[1].item<double>() / count);
    m["validation_mae"] = sums[2].item<double>() / count;
  } else {
    const double accuracy = sums[1].item<double>() / count;
    m["validation_accuracy"] = accuracy;
    m["validation_error"] = 1.0 - accuracy;
  }
  return m;
}

absl::StatusOr<CheckpointInfo> Trainer::SaveCheckpoint() {
  if (options_.checkpoint_dir.empty()) {
    return absl::FailedPreconditionError("no checkpoint directory was given");
  }
  if (rank_ != 0) return CheckpointInfo{};
  return WriteCheckpoint(
      options_.checkpoint_dir, steps_completed_, [&](const std::string& dir) {
        return Guard(absl::StrCat("writing checkpoint files in ", dir), [&] {
          SaveModel(module(), dir + "/" + kModelFile);
          if (records_task_) {
            // The columns this model reads, for a resumed run to encode
            // its data the same way (ReadCheckpointSchema).
            std::ofstream(dir + "/" + kSchemaFile) << records_.schema.ToJson();
          }
          torch::save(*optimizer_, dir + "/" + kOptimizerFile);
          torch::serialize::OutputArchive state;
          state.write("steps_completed",
                      torch::tensor(steps_completed_, torch::kLong));
          state.write("seed", torch::tensor(static_cast<int64_t>(options_.seed),
                                            torch::kLong));
          state.write("augment_rng", augment_gen_.get_state());
          state.save_to(dir + "/" + kStateFile);
          // For people and tools that do not read torch archives.
          std::ofstream(dir + "/" + kMetadataFile)
              << "{\"format\":1,\"steps_completed\":" << steps_completed_
              << ",\"seed\":" << options_.seed << ",\"data_position\":"
              << steps_completed_ * options_.hparams.global_batch_size << "}\n";
        });
      });
}

absl::Status Trainer::Restore(const std::string& uuid) {
  absl::StatusOr<std::string> dir =
      VerifyCheckpoint(options_.checkpoint_dir, uuid);
  if (!dir.ok()) return dir.status();
  auto path = [&](const char* f) { return *dir + "/" + f; };
  if (records_task_) {
    absl::StatusOr<records::Schema> saved =
        ReadCheckpointSchema(options_.checkpoint_dir, uuid);
    if (!saved.ok()) return saved.status();
    if (saved->ToJson() != records_.schema.ToJson()) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint ", uuid,
                       " was trained on other record columns (", kSchemaFile,
                       " differs); encode the data with its schema "
                       "(ReadCheckpointSchema)"));
    }
  }
  if (absl::Status s = Guard(
          path(kModelFile), [&] { LoadModel(path(kModelFile), module()); },
          absl::StatusCode::kDataLoss);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Guard(
          path(kOptimizerFile),
          // Optimizer state (moments, momentum buffers) onto this run's
          // device, whichever device wrote it.
          [&] {
            torch::load(*optimizer_, path(kOptimizerFile), options_.device);
          },
          absl::StatusCode::kDataLoss);
      !s.ok()) {
    return s;
  }
  return Guard(
      path(kStateFile),
      [&] {
        torch::serialize::InputArchive state;
        state.load_from(path(kStateFile), torch::Device(torch::kCPU));
        torch::Tensor steps, seed, rng;
        state.read("steps_completed", steps);
        state.read("seed", seed);
        state.read("augment_rng", rng);
        if (static_cast<uint64_t>(seed.item<int64_t>()) != options_.seed) {
          throw std::runtime_error(absl::StrCat(
              "checkpoint was written by a run with seed ",
              seed.item<int64_t>(), ", this trial has seed ", options_.seed));
        }
        steps_completed_ = steps.item<int64_t>();
        augment_gen_.set_state(rng);
      },
      absl::StatusCode::kDataLoss);
}

absl::Status Trainer::WarmStart(const std::string& path) {
  const fs::path p(path);
  const std::string root = p.parent_path().string();
  const std::string uuid = p.filename().string();
  absl::StatusOr<std::string> dir = VerifyCheckpoint(root, uuid);
  if (!dir.ok()) {
    return absl::Status(dir.status().code(),
                        absl::StrCat("warm start: ", dir.status().message()));
  }
  if (records_task_) {
    absl::StatusOr<records::Schema> saved = ReadCheckpointSchema(root, uuid);
    if (!saved.ok()) return saved.status();
    if (saved->ToJson() != records_.schema.ToJson()) {
      return absl::FailedPreconditionError(
          absl::StrCat("warm-start checkpoint ", uuid,
                       " was trained on other record "
                       "columns (",
                       kSchemaFile, " differs)"));
    }
  }
  const std::string model = *dir + "/" + kModelFile;
  // Weights only: a model of another shape (other n_filters, hidden_units)
  // fails here, naming the file.
  return Guard(
      absl::StrCat("loading the warm-start weights from ", model),
      [&] { LoadModel(model, module()); }, absl::StatusCode::kDataLoss);
}

absl::StatusOr<RunOutcome> Trainer::Run(const TrainerCallbacks& cb) {
  const int64_t target = options_.target_batches;
  const std::set<int64_t> points(options_.validation_points.begin(),
                                 options_.validation_points.end());
  const bool can_checkpoint = !options_.checkpoint_dir.empty();
  int64_t last_checkpoint = steps_completed_;
  int64_t last_validation = -1;
  // Training statistics since the last report: loss sum and correct count
  // (on the device, read at each report), samples.
  torch::Tensor window_sums;
  int64_t samples = 0, window_batches = 0;
  Clock::duration train_time{};
  // Steps are queued on a GPU without waiting for it; time spent waiting for
  // the queued steps to finish belongs to training.
  auto finish_queued_steps = [&] {
    const auto start = Clock::now();
    SyncDevice(options_.device);
    train_time += Clock::now() - start;
  };

  auto report_training = [&]() -> absl::Status {
    if (window_batches == 0) return absl::OkStatus();
    finish_queued_steps();
    torch::Tensor sums =
        torch::cat({window_sums.to(torch::kCPU),
                    torch::tensor({double(samples)}, torch::kDouble)});
    if (options_.parallel != nullptr) {
      if (absl::Status s = options_.parallel->AllReduceSum({sums}); !s.ok())
        return s;
    }
    const double n = sums[2].item<double>();
    Metrics m{{"loss", sums[0].item<double>() / n},
              {regression() ? "rmse" : "accuracy",
               regression() ? std::sqrt(sums[1].item<double>() / n)
                            : sums[1].item<double>() / n},
              {"learning_rate", LearningRateAt(steps_completed_ - 1)},
              {"samples_per_second", window_batches *
                                         options_.hparams.global_batch_size /
                                         Seconds(train_time)}};
    window_sums = torch::Tensor();
    samples = window_batches = 0;
    train_time = {};
    if (rank_ == 0 && cb.training_metrics)
      return cb.training_metrics(steps_completed_, m);
    return absl::OkStatus();
  };
  auto validate = [&]() -> absl::Status {
    absl::StatusOr<Metrics> m = Validate();
    if (!m.ok()) return m.status();
    last_validation = steps_completed_;
    if (rank_ == 0 && cb.validation_metrics)
      return cb.validation_metrics(steps_completed_, *m);
    return absl::OkStatus();
  };
  auto checkpoint = [&]() -> absl::Status {
    if (!can_checkpoint || last_checkpoint == steps_completed_)
      return absl::OkStatus();
    finish_queued_steps();
    absl::StatusOr<CheckpointInfo> info = SaveCheckpoint();
    if (!info.ok()) return info.status();
    last_checkpoint = steps_completed_;
    if (rank_ == 0 && cb.checkpoint) return cb.checkpoint(*info);
    return absl::OkStatus();
  };
  auto stop_requested = [&]() -> absl::StatusOr<bool> {
    bool stop = cb.should_stop && cb.should_stop();
    if (options_.parallel == nullptr) return stop;
    // Ranks hear about a stop at different moments; they must leave the
    // loop after the same batch or the next collective would hang.
    torch::Tensor flag = torch::tensor({stop ? 1.0f : 0.0f});
    if (absl::Status s = options_.parallel->AllReduceSum({flag}); !s.ok())
      return s;
    return flag.item<float>() > 0;
  };

  while (steps_completed_ < target) {
    const auto start = Clock::now();
    torch::Tensor step_sums;
    if (absl::Status s = TrainStepOnDevice(&step_sums); !s.ok()) return s;
    window_sums = window_sums.defined() ? window_sums + step_sums : step_sums;
    samples += options_.hparams.global_batch_size / world_size_;
    train_time += Clock::now() - start;
    ++window_batches;
    const bool validation_due =
        points.count(steps_completed_) > 0 || steps_completed_ == target;
    if (steps_completed_ % options_.data.report_period == 0 || validation_due) {
      if (absl::Status s = report_training(); !s.ok()) return s;
    }
    if (validation_due) {
      if (absl::Status s = validate(); !s.ok()) return s;
    }
    if (options_.checkpoint_period > 0 &&
        steps_completed_ - last_checkpoint >= options_.checkpoint_period) {
      if (absl::Status s = checkpoint(); !s.ok()) return s;
    }
    absl::StatusOr<bool> stop = stop_requested();
    if (!stop.ok()) return stop.status();
    if (*stop && steps_completed_ < target) {
      if (absl::Status s = report_training(); !s.ok()) return s;
      if (absl::Status s = checkpoint(); !s.ok()) return s;
      return RunOutcome::kStopped;
    }
  }
  if (last_validation != steps_completed_) {
    if (absl::Status s = validate(); !s.ok()) return s;
  }
  if (absl::Status s = checkpoint(); !s.ok()) return s;
  return RunOutcome::kCompleted;
}

}  // namespace det::trainer
