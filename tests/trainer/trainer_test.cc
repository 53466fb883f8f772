#include "worker/trainer/trainer.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/trainer/synthetic_cifar.h"

namespace det::trainer {
namespace {

using ::det::trainer::testing::TempDir;
using ::det::trainer::testing::WriteCifarSet;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A small model and set so a step takes milliseconds.
TrainerOptions SmallOptions(const TempDir& data_dir) {
  TrainerOptions o;
  o.hparams.n_filters1 = 4;
  o.hparams.n_filters2 = 8;
  o.hparams.hidden_units = 16;
  o.hparams.global_batch_size = 16;
  o.hparams.dropout = 0.3;
  o.hparams.batch_norm = true;
  o.hparams.learning_rate = 0.05;
  o.data.dir = data_dir.path();
  o.data.report_period = 2;
  o.seed = 5;
  return o;
}

Cifar10 Load(const TrainerOptions& o) {
  absl::StatusOr<Cifar10> data = LoadCifar10(o.data);
  EXPECT_TRUE(data.ok()) << data.status();
  return *data;
}

std::unique_ptr<Trainer> Make(const TrainerOptions& o) {
  absl::StatusOr<std::unique_ptr<Trainer>> t = Trainer::Create(o, Load(o));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

struct Recorded {
  std::vector<int64_t> training_steps, validation_steps;
  std::vector<Metrics> validation;
  std::vector<CheckpointInfo> checkpoints;
};

TrainerCallbacks Record(Recorded* r, std::function<bool()> stop = nullptr) {
  TrainerCallbacks cb;
  cb.training_metrics = [r](int64_t s, const Metrics& m) {
    EXPECT_TRUE(m.count("loss") && m.count("accuracy") &&
                m.count("samples_per_second"));
    r->training_steps.push_back(s);
    return absl::OkStatus();
  };
  cb.validation_metrics = [r](int64_t s, const Metrics& m) {
    r->validation_steps.push_back(s);
    r->validation.push_back(m);
    return absl::OkStatus();
  };
  cb.checkpoint = [r](const CheckpointInfo& c) {
    r->checkpoints.push_back(c);
    return absl::OkStatus();
  };
  cb.should_stop = std::move(stop);
  return cb;
}

void ExpectSameState(Trainer& a, Trainer& b) {
  auto pa = a.model()->named_parameters(), pb = b.model()->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
  auto ba = a.model()->named_buffers(), bb = b.model()->named_buffers();
  for (const auto& item : ba) {
    EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
  }
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    WriteCifarSet(data_, 12);  // 60 training images: batches cross epochs
  }
  TempDir data_;
  TempDir checkpoints_;
};

TEST_F(TrainerTest, ReportsAtPeriodsAndValidationPointsAndCheckpointsAtTheEnd) {
  TrainerOptions o = SmallOptions(data_);
  o.target_batches = 7;
  o.validation_points = {3, 6};
  o.checkpoint_period = 4;
  o.checkpoint_dir = checkpoints_.path();
  auto t = Make(o);
  Recorded r;
  absl::StatusOr<RunOutcome> out = t->Run(Record(&r));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, RunOutcome::kCompleted);
  EXPECT_THAT(r.training_steps, ElementsAre(2, 3, 4, 6, 7));
  EXPECT_THAT(r.validation_steps, ElementsAre(3, 6, 7));
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_EQ(r.checkpoints[0].steps_completed, 4);
  EXPECT_EQ(r.checkpoints[1].steps_completed, 7);
  for (const auto& [k, v] : r.validation.back())
    EXPECT_TRUE(std::isfinite(v)) << k;
  EXPECT_NEAR(r.validation.back().at("validation_error"),
              1 - r.validation.back().at("validation_accuracy"), 1e-12);
  EXPECT_THAT(r.checkpoints[1].file_sha256,
              ::testing::Contains(::testing::Key("model.pt")));
  EXPECT_TRUE(
      VerifyCheckpoint(checkpoints_.path(), r.checkpoints[1].uuid).ok());
}

// For the small model (libtorch's convolutions) and a wider one whose
// second convolution trains through oneDNN's Winograd (32 input channels),
// with batch norm (no convolution bias) and without.
TEST_F(TrainerTest, ResumedRunReachesTheSameWeightsBitForBit) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(::testing::Message() << "variant " << variant);
    TrainerOptions o = SmallOptions(data_);
    o.target_batches = 9;
    o.checkpoint_dir = checkpoints_.File("v" + std::to_string(variant));
    o.hparams.optimizer = OptimizerKind::kAdam;
    o.hparams.lr_schedule = LrSchedule::kCosine;
    o.hparams.learning_rate = 0.01;
    if (variant > 0) {
      o.hparams.n_filters1 = 32;  // the second convolution: Winograd
      o.hparams.batch_norm = variant == 1;
    }

    auto straight = Make(o);
    Recorded r0;
    ASSERT_TRUE(straight->Run(Record(&r0)).ok());

    // Stop after 4 batches (the trainer checks after each batch), then
    // resume.
    auto first = Make(o);
    Recorded r1;
    absl::StatusOr<RunOutcome> out =
        first->Run(Record(&r1, [&] { return first->steps_completed() >= 4; }));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, RunOutcome::kStopped);
    ASSERT_EQ(r1.checkpoints.size(), 1u);
    EXPECT_EQ(r1.checkpoints[0].steps_completed, 4);

    TrainerOptions resumed_options = o;
    resumed_options.restore_uuid = r1.checkpoints[0].uuid;
    auto resumed = Make(resumed_options);
    EXPECT_EQ(resumed->steps_completed(), 4);
    Recorded r2;
    ASSERT_TRUE(resumed->Run(Record(&r2)).ok());
    EXPECT_EQ(resumed->steps_completed(), 9);
    ExpectSameState(*straight, *resumed);
    EXPECT_EQ(r2.validation.back().at("validation_loss"),
              r0.validation.back().at("validation_loss"));
  }
}

TEST_F(TrainerTest, CorruptCheckpointIsRefusedNamingTheFile) {
  TrainerOptions o = SmallOptions(data_);
  o.target_batches = 1;
  o.checkpoint_dir = checkpoints_.path();
  auto t = Make(o);
  Recorded r;
  ASSERT_TRUE(t->Run(Record(&r)).ok());
  ASSERT_EQ(r.checkpoints.size(), 1u);
  const std::string model = r.checkpoints[0].path + "/model.pt";
  {
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  o.restore_uuid = r.checkpoints[0].uuid;
  absl::StatusOr<std::unique_ptr<Trainer>> bad = Trainer::Create(o, Load(o));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr(model));
}

TEST_F(TrainerTest, CheckpointOfAnotherArchitectureIsAClearError) {
  TrainerOptions o = SmallOptions(data_);
  o.target_batches = 1;
  o.checkpoint_dir = checkpoints_.path();
  auto t = Make(o);
  Recorded r;
  ASSERT_TRUE(t->Run(Record(&r)).ok());
  o.hparams.hidden_units = 32;
  o.restore_uuid = r.checkpoints[0].uuid;
  absl::StatusOr<std::unique_ptr<Trainer>> bad = Trainer::Create(o, Load(o));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("model.pt"));
  EXPECT_THAT(bad.status().message(), HasSubstr("fc1.weight"));
}

// A warm start: another run's weights (batch-norm statistics included),
// with a fresh optimizer, schedule and step count; the experiment's own
// hyperparameters apply.
TEST_F(TrainerTest, WarmStartLoadsTheWeightsAndCountsStepsFromZero) {
  TrainerOptions o = SmallOptions(data_);
  o.target_batches = 6;
  o.checkpoint_dir = checkpoints_.File("source");
  auto source = Make(o);
  Recorded r;
  ASSERT_TRUE(source->Run(Record(&r)).ok());
  ASSERT_EQ(r.checkpoints.size(), 1u);

  TrainerOptions w = SmallOptions(data_);
  w.seed = 77;  // another trial's seed: no seed check as for a restore
  w.hparams.learning_rate = 0.001;
  w.target_batches = 3;
  w.checkpoint_dir = checkpoints_.File("own");
  w.warm_start_path = r.checkpoints[0].path;
  auto warm = Make(w);
  ASSERT_NE(warm, nullptr);
  EXPECT_EQ(warm->steps_completed(), 0);
  ExpectSameState(*source, *warm);
  EXPECT_EQ(warm->LearningRateAt(0), 0.001);
  Recorded r2;
  ASSERT_TRUE(warm->Run(Record(&r2)).ok());
  EXPECT_THAT(r2.validation_steps, ElementsAre(3));
  ASSERT_EQ(r2.checkpoints.size(), 1u);
  EXPECT_EQ(r2.checkpoints[0].steps_completed, 3);

  // Another architecture, or a damaged folder: a clear error.
  TrainerOptions wider = w;
  wider.hparams.hidden_units = 32;
  absl::StatusOr<std::unique_ptr<Trainer>> bad =
      Trainer::Create(wider, Load(wider));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("warm-start"));
  EXPECT_THAT(bad.status().message(), HasSubstr("fc1.weight"));
  TrainerOptions missing = w;
  missing.warm_start_path = checkpoints_.File("source/nope");
  bad = Trainer::Create(missing, Load(missing));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("warm start"));
  EXPECT_THAT(bad.status().message(), HasSubstr("nope"));
}

TEST_F(TrainerTest, LearningRateSchedules) {
  TrainerOptions o = SmallOptions(data_);
  o.target_batches = 100;
  o.hparams.learning_rate = 0.1;
  o.hparams.lr_schedule = LrSchedule::kCosine;
  auto cosine = Make(o);
  EXPECT_DOUBLE_EQ(cosine->LearningRateAt(0), 0.1);
  EXPECT_NEAR(cosine->LearningRateAt(50), 0.05, 1e-12);
  EXPECT_NEAR(cosine->LearningRateAt(100), 0.0, 1e-12);
  o.hparams.lr_schedule = LrSchedule::kStep;
  o.hparams.lr_step_size = 30;
  o.hparams.lr_gamma = 0.5;
  auto step = Make(o);
  EXPECT_DOUBLE_EQ(step->LearningRateAt(29), 0.1);
  EXPECT_DOUBLE_EQ(step->LearningRateAt(30), 0.05);
  EXPECT_DOUBLE_EQ(step->LearningRateAt(95), 0.0125);
}

TEST_F(TrainerTest, LearnsToFitOneBatch) {
  // One batch seen again and again (train_limit = batch size, no
  // augmentation, no dropout): the loss must fall far below chance
  // (ln 10 = 2.30), which any working loop, loss and optimizer achieve.
  TrainerOptions o = SmallOptions(data_);
  o.hparams.dropout = 0;
  o.hparams.hidden_units = 64;
  o.hparams.optimizer = OptimizerKind::kAdam;
  o.hparams.learning_rate = 0.01;
  o.data.augment = false;
  o.data.train_limit = 16;
  o.target_batches = 80;
  o.data.report_period = 10;
  auto t = Make(o);
  std::vector<double> losses;
  TrainerCallbacks cb;
  cb.training_metrics = [&](int64_t, const Metrics& m) {
    losses.push_back(m.at("loss"));
    return absl::OkStatus();
  };
  ASSERT_TRUE(t->Run(cb).ok());
  ASSERT_EQ(losses.size(), 8u);
  EXPECT_LT(losses.back(), 0.5) << "first window " << losses.front();
  EXPECT_LT(losses.back(), losses.front() / 2);
}

}  // namespace
}  // namespace det::trainer
