// The trainer on JSON records: it learns, its metrics are those of the
// task, and a resumed run (schema read back from the checkpoint) reaches the
// same weights bit for bit.
#include <cmath>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "worker/trainer/trainer.h"

namespace det::trainer {
namespace {

using ::testing::HasSubstr;

// y = 3 * x1 - 2 * x2 + (smoker ? 5 : 0) + noise, and a class "high" when
// y > 0; a date pair and a missing value thrown in.
std::string Patients(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  std::string text;
  for (int i = 0; i < n; ++i) {
    const double x1 = normal(gen), x2 = normal(gen);
    const bool smoker = i % 3 == 0;
    const double y = 3 * x1 - 2 * x2 + (smoker ? 5 : 0) + 0.1 * normal(gen);
    const int stay = 1 + i % 7;
    text += "{\"x1\": " + std::to_string(x1) +
            (i % 10 == 0 ? "" : ", \"x2\": " + std::to_string(x2)) +
            ", \"smoker\": " + (smoker ? "true" : "false") + ", \"ward\": \"" +
            (i % 2 ? "A" : "B") +
            "\", \"admitted\": \"2024-01-01\", \"discharged\": \"2024-01-0" +
            std::to_string(1 + stay) + "\", \"y\": " + std::to_string(y) +
            ", \"class\": \"" + (y > 0 ? "high" : "low") + "\"}\n";
  }
  return text;
}

class RecordsTrainerTest : public ::testing::Test {
 protected:
  RecordsTrainerTest() {
    options_.path = dir_.Write("train.jsonl", Patients(256, 1));
    options_.validation_path = dir_.Write("validation.jsonl", Patients(64, 2));
    options_.label = "y";
  }

  TrainerOptions Small() const {
    TrainerOptions o;
    o.hparams.hidden_layers = 2;
    o.hparams.hidden_units = 16;
    o.hparams.global_batch_size = 16;
    o.hparams.dropout = 0.2;
    o.hparams.batch_norm = true;
    o.hparams.optimizer = OptimizerKind::kAdam;
    o.hparams.learning_rate = 0.01;
    o.data.augment = false;
    o.data.report_period = 5;
    o.seed = 3;
    return o;
  }

  std::unique_ptr<Trainer> Make(const TrainerOptions& o,
                                const records::Schema* schema = nullptr) {
    absl::StatusOr<records::RecordsData> data =
        records::LoadRecords(options_, schema);
    EXPECT_TRUE(data.ok()) << data.status();
    if (!data.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<Trainer>> t =
        Trainer::Create(o, ToTensors(*std::move(data)));
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }

  test::TempDir dir_{"records-trainer"};
  records::RecordsOptions options_;
};

TEST_F(RecordsTrainerTest, RegressionLearnsAndReportsRmseAndMae) {
  TrainerOptions o = Small();
  o.target_batches = 300;
  auto t = Make(o);
  ASSERT_NE(t, nullptr);
  absl::StatusOr<Metrics> before = t->Validate();
  ASSERT_TRUE(before.ok()) << before.status();
  std::vector<Metrics> training;
  TrainerCallbacks cb;
  cb.training_metrics = [&](int64_t, const Metrics& m) {
    training.push_back(m);
    return absl::OkStatus();
  };
  ASSERT_TRUE(t->Run(cb).ok());
  absl::StatusOr<Metrics> after = t->Validate();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->count("validation_accuracy"), 0u);
  ASSERT_EQ(after->count("validation_mae"), 1u);
  ASSERT_FALSE(training.empty());
  EXPECT_EQ(training.back().count("rmse"), 1u);
  // The label spreads about 4.5; a model that learnt gets well under that
  // (x2 is missing in a tenth of the records, so not to the noise level).
  EXPECT_GT(before->at("validation_rmse"), 3.0);
  EXPECT_LT(after->at("validation_rmse"), 1.5);
  EXPECT_LE(after->at("validation_mae"), after->at("validation_rmse"));
}

TEST_F(RecordsTrainerTest, ClassificationLearnsAndReportsAccuracy) {
  options_.label = "class";
  options_.task = records::PredictionTask::kClassification;
  TrainerOptions o = Small();
  o.target_batches = 200;
  auto t = Make(o);
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->Run({}).ok());
  absl::StatusOr<Metrics> m = t->Validate();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->count("validation_rmse"), 0u);
  // "y" (the regression label) is a feature here, so the class is easy.
  EXPECT_GT(m->at("validation_accuracy"), 0.9);
}

TEST_F(RecordsTrainerTest, ResumedRunReachesTheSameWeightsBitForBit) {
  TrainerOptions o = Small();
  o.target_batches = 12;
  o.checkpoint_dir = dir_.File("checkpoints");
  o.hparams.lr_schedule = LrSchedule::kCosine;

  auto straight = Make(o);
  ASSERT_NE(straight, nullptr);
  ASSERT_TRUE(straight->Run({}).ok());

  auto first = Make(o);
  std::vector<CheckpointInfo> checkpoints;
  TrainerCallbacks cb;
  cb.checkpoint = [&](const CheckpointInfo& info) {
    checkpoints.push_back(info);
    return absl::OkStatus();
  };
  cb.should_stop = [&] { return first->steps_completed() >= 5; };
  absl::StatusOr<RunOutcome> out = first->Run(cb);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(*out, RunOutcome::kStopped);
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].file_sha256.count("records_schema.json"), 1u);

  // The resumed run encodes with the checkpoint's schema, as det-trial does.
  absl::StatusOr<records::Schema> schema =
      ReadCheckpointSchema(o.checkpoint_dir, checkpoints[0].uuid);
  ASSERT_TRUE(schema.ok()) << schema.status();
  TrainerOptions resumed_options = o;
  resumed_options.restore_uuid = checkpoints[0].uuid;
  auto resumed = Make(resumed_options, &*schema);
  ASSERT_NE(resumed, nullptr);
  EXPECT_EQ(resumed->steps_completed(), 5);
  ASSERT_TRUE(resumed->Run({}).ok());
  auto a = straight->mlp()->named_parameters();
  auto b = resumed->mlp()->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) {
    EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  }
  auto ab = straight->mlp()->named_buffers();
  auto bb = resumed->mlp()->named_buffers();
  for (const auto& p : ab) {
    EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
  }
}

TEST_F(RecordsTrainerTest, CheckpointWithOtherColumnsIsRefused) {
  TrainerOptions o = Small();
  o.target_batches = 2;
  o.checkpoint_dir = dir_.File("checkpoints");
  auto t = Make(o);
  ASSERT_NE(t, nullptr);
  absl::StatusOr<CheckpointInfo> info = t->SaveCheckpoint();
  ASSERT_TRUE(info.ok()) << info.status();
  // The same model shape, but the schema inferred afresh from another file.
  options_.path = dir_.Write("other.jsonl", Patients(256, 7));
  TrainerOptions r = o;
  r.restore_uuid = info->uuid;
  absl::StatusOr<records::RecordsData> data = records::LoadRecords(options_);
  ASSERT_TRUE(data.ok());
  absl::StatusOr<std::unique_ptr<Trainer>> resumed =
      Trainer::Create(r, ToTensors(*std::move(data)));
  ASSERT_FALSE(resumed.ok());
  EXPECT_THAT(std::string(resumed.status().message()),
              HasSubstr("trained on other record columns"));
}

}  // namespace
}  // namespace det::trainer
