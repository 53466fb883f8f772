#include "worker/trainer/cifar10_dataset.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/trainer/synthetic_cifar.h"

namespace det::trainer {
namespace {

using ::det::trainer::testing::Pixel;
using ::det::trainer::testing::Records;
using ::det::trainer::testing::TempDir;
using ::det::trainer::testing::WriteCifarSet;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ReadCifar10Files, DecodesLabelsAndPixelsIntoNhwc) {
  TempDir dir;
  dir.Write("a.bin", Records(0, 3));
  dir.Write("b.bin", Records(3, 2));
  absl::StatusOr<ImageSet> set =
      ReadCifar10Files({dir.File("a.bin"), dir.File("b.bin")});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->size(), 5);
  EXPECT_EQ(set->images.sizes(), (std::vector<int64_t>{5, 32, 32, 3}));
  EXPECT_EQ(set->images.dtype(), torch::kUInt8);
  EXPECT_EQ(set->labels.dtype(), torch::kLong);
  for (int r = 0; r < 5; ++r) {
    EXPECT_EQ(set->labels[r].item<int64_t>(), r % 10);
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(set->images[r][5][7][c].item<int>(), Pixel(r, c, 5, 7));
      EXPECT_EQ(set->images[r][31][0][c].item<int>(), Pixel(r, c, 31, 0));
    }
  }
}

TEST(ReadCifar10Files, TruncatedFileNamesFileAndOffset) {
  TempDir dir;
  std::string bytes = Records(0, 3);
  bytes.resize(bytes.size() - 100);
  dir.Write("data_batch_2.bin", bytes);
  absl::StatusOr<ImageSet> set =
      ReadCifar10Files({dir.File("data_batch_2.bin")});
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(),
              AllOf(HasSubstr(dir.File("data_batch_2.bin")),
                    HasSubstr("truncated"), HasSubstr("byte offset 6146")));
}

TEST(ReadCifar10Files, BadLabelNamesFileAndOffset) {
  TempDir dir;
  std::string bytes = Records(0, 4);
  bytes[2 * 3073] = 12;  // record 2's label
  dir.Write("test_batch.bin", bytes);
  absl::StatusOr<ImageSet> set = ReadCifar10Files({dir.File("test_batch.bin")});
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(
      set.status().message(),
      AllOf(HasSubstr(dir.File("test_batch.bin")), HasSubstr("label 12"),
            HasSubstr("byte offset 6146"), HasSubstr("record 2")));
}

TEST(ReadCifar10Files, MissingAndEmptyFiles) {
  TempDir dir;
  absl::StatusOr<ImageSet> missing =
      ReadCifar10Files({dir.File("data_batch_1.bin")});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              AllOf(HasSubstr(dir.File("data_batch_1.bin")),
                    HasSubstr("fetch-data.sh")));

  dir.Write("empty.bin", "");
  absl::StatusOr<ImageSet> empty = ReadCifar10Files({dir.File("empty.bin")});
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(),
              AllOf(HasSubstr("empty.bin"), HasSubstr("byte offset 0")));
}

TEST(LoadCifar10, UsesTestBatchOrHeldOutSliceAndLimits) {
  TempDir dir;
  WriteCifarSet(dir, 20);
  DataOptions o;
  o.dir = dir.path();
  absl::StatusOr<Cifar10> data = LoadCifar10(o);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 100);
  EXPECT_EQ(data->validation.size(), 20);
  // test_batch.bin holds records 100..119.
  EXPECT_EQ(data->validation.images[0][0][0][0].item<int>(),
            Pixel(100, 0, 0, 0));

  o.validation_split = 0.25;
  o.train_limit = 10;
  o.validation_limit = 5;
  data = LoadCifar10(o);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 10);
  EXPECT_EQ(data->validation.size(), 5);
  // The held-out slice is the last 25 training records (75..99).
  EXPECT_EQ(data->validation.images[0][0][0][0].item<int>(),
            Pixel(75, 0, 0, 0));
}

TEST(LoadCifar10, ErrorNamesTheBadFileOfTheSet) {
  TempDir dir;
  WriteCifarSet(dir, 4);
  std::string bytes = Records(0, 4);
  bytes.resize(3073 + 10);
  dir.Write("data_batch_4.bin", bytes);
  DataOptions o;
  o.dir = dir.path();
  absl::StatusOr<Cifar10> data = LoadCifar10(o);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(data.status().message(), AllOf(HasSubstr("data_batch_4.bin"),
                                             HasSubstr("byte offset 3073")));
}

TEST(ParseDataOptions, ReadsKeysAndResolvesTheDirectory) {
  absl::StatusOr<DataOptions> o =
      ParseDataOptions({{"dir", "/d"},
                        {"train_limit", 100},
                        {"augment", false},
                        {"validation_split", 0.1},
                        {"report_period", 7},
                        {"something_for_others", 1}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->dir, "/d");
  EXPECT_EQ(o->train_limit, 100);
  EXPECT_FALSE(o->augment);
  EXPECT_DOUBLE_EQ(o->validation_split, 0.1);
  EXPECT_EQ(o->report_period, 7);

  setenv("DET_DATA_DIR", "/from/env", 1);
  o = ParseDataOptions({});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->dir, "/from/env");
  unsetenv("DET_DATA_DIR");
  o = ParseDataOptions({});
  ASSERT_TRUE(o.ok());
  EXPECT_THAT(o->dir, HasSubstr("/det/cifar-10-batches-bin"));
}

TEST(ParseDataOptions, RejectsBadValuesNamingTheKey) {
  EXPECT_THAT(ParseDataOptions({{"train_limit", -1}}).status().message(),
              HasSubstr("data.train_limit"));
  EXPECT_THAT(ParseDataOptions({{"augment", "yes"}}).status().message(),
              HasSubstr("data.augment"));
  EXPECT_THAT(ParseDataOptions({{"validation_split", 1.5}}).status().message(),
              HasSubstr("data.validation_split"));
  EXPECT_THAT(ParseDataOptions({{"report_period", 0}}).status().message(),
              HasSubstr("data.report_period"));
}

}  // namespace
}  // namespace det::trainer
