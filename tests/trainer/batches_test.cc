#include "worker/trainer/batches.h"

#include <ATen/CPUGeneratorImpl.h>

#include "gtest/gtest.h"

namespace det::trainer {
namespace {

torch::Tensor RandomImages(int64_t b, int64_t seed = 0) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randint(0, 256, {b, 32, 32, 3}, gen, torch::kLong)
      .to(torch::kUInt8);
}

TEST(NormalizeImages, ChannelsLastFloatWithPerChannelStatistics) {
  torch::Tensor u8 = RandomImages(4);
  torch::Tensor x = NormalizeImages(u8);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{4, 3, 32, 32}));
  EXPECT_EQ(x.dtype(), torch::kFloat);
  EXPECT_TRUE(x.is_contiguous(torch::MemoryFormat::ChannelsLast));
  for (int c = 0; c < 3; ++c) {
    const float raw = u8[1][2][3][c].item<float>();
    EXPECT_NEAR(x[1][c][2][3].item<float>(),
                (raw / 255.0f - kCifarMean[c]) / kCifarStd[c], 1e-5);
  }
}

TEST(CropAndFlip, CentredCropWithoutFlipIsIdentity) {
  torch::Tensor u8 = RandomImages(3);
  torch::Tensor four = torch::full({3}, 4, torch::kLong);
  torch::Tensor no = torch::zeros({3}, torch::kBool);
  torch::Tensor out = CropAndFlip(u8, four, four, no, 4);
  EXPECT_EQ(out.sizes(), u8.sizes());
  EXPECT_TRUE(torch::equal(out, u8));
}

TEST(CropAndFlip, FlipMirrorsColumnsExactly) {
  torch::Tensor u8 = RandomImages(2);
  torch::Tensor four = torch::full({2}, 4, torch::kLong);
  torch::Tensor flip = torch::tensor({true, false});
  torch::Tensor out = CropAndFlip(u8, four, four, flip, 4);
  EXPECT_TRUE(torch::equal(out[0], u8[0].flip({1})));
  EXPECT_TRUE(torch::equal(out[1], u8[1]));
}

TEST(CropAndFlip, CornerCropShiftsAndZeroPads) {
  torch::Tensor u8 = RandomImages(1);
  using torch::indexing::Slice;
  // Offset (0, 0): the image moves 4 pixels down and right; the top rows
  // and left columns are padding.
  torch::Tensor out = CropAndFlip(u8, torch::tensor({0L}), torch::tensor({0L}),
                                  torch::tensor({false}), 4);
  EXPECT_EQ(out.index({0, Slice(0, 4)}).count_nonzero().item<int64_t>(), 0);
  EXPECT_EQ(
      out.index({0, Slice(), Slice(0, 4)}).count_nonzero().item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(out.index({0, Slice(4, 32), Slice(4, 32)}),
                           u8.index({0, Slice(0, 28), Slice(0, 28)})));
  // Offset (8, 2): up by 4, right by 2.
  out = CropAndFlip(u8, torch::tensor({8L}), torch::tensor({2L}),
                    torch::tensor({false}), 4);
  EXPECT_TRUE(torch::equal(out.index({0, Slice(0, 28), Slice(2, 32)}),
                           u8.index({0, Slice(4, 32), Slice(0, 30)})));
  EXPECT_EQ(out.index({0, Slice(28, 32)}).count_nonzero().item<int64_t>(), 0);
}

TEST(RandomCropAndFlip, ShapeAndReproducibleFromTheGenerator) {
  torch::Tensor u8 = RandomImages(16);
  at::Generator a = at::make_generator<at::CPUGeneratorImpl>(7);
  at::Generator b = at::make_generator<at::CPUGeneratorImpl>(7);
  torch::Tensor x = RandomCropAndFlip(u8, a);
  torch::Tensor y = RandomCropAndFlip(u8, b);
  EXPECT_EQ(x.sizes(), u8.sizes());
  EXPECT_TRUE(torch::equal(x, y));
  EXPECT_FALSE(torch::equal(x, u8));  // 16 images: some moved
}

TEST(SampleStream, EachEpochIsAPermutationAndTakeIsStateless) {
  SampleStream s(10, 42);
  torch::Tensor e0 = s.Take(0, 10), e1 = s.Take(10, 10);
  EXPECT_TRUE(
      torch::equal(std::get<0>(e0.sort()), torch::arange(10, torch::kLong)));
  EXPECT_TRUE(
      torch::equal(std::get<0>(e1.sort()), torch::arange(10, torch::kLong)));
  EXPECT_FALSE(torch::equal(e0, e1));
  // A window across the epoch boundary, asked again out of order.
  torch::Tensor span = s.Take(7, 6);
  EXPECT_TRUE(
      torch::equal(span, torch::cat({e0.narrow(0, 7, 3), e1.narrow(0, 0, 3)})));
  SampleStream fresh(10, 42);
  EXPECT_TRUE(torch::equal(fresh.Take(7, 6), span));
  SampleStream other(10, 43);
  EXPECT_FALSE(torch::equal(other.Take(0, 10), e0));
}

}  // namespace
}  // namespace det::trainer
