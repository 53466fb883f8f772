#include "worker/trainer/onednn_conv.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace det::trainer {
namespace {

struct Grads {
  torch::Tensor y, dx, dw, db;
};

// Output and gradients of sum(y * probe) through `conv`.
template <typename Conv>
Grads Differentiate(Conv conv, const torch::Tensor& x0, const torch::Tensor& w0,
                    const torch::Tensor& b0, const torch::Tensor& probe) {
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  torch::Tensor w = w0.detach().clone().requires_grad_(true);
  torch::Tensor b =
      b0.defined() ? b0.detach().clone().requires_grad_(true) : torch::Tensor();
  torch::Tensor y = conv(x, w, b);
  (y * probe).sum().backward();
  return {y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : b};
}

// Equal up to float rounding, measured against the largest magnitude: a
// weight gradient sums thousands of products, so its small entries carry
// the rounding of its large ones (Winograd's and the direct sum's orders
// differ).
void ExpectClose(const torch::Tensor& got, const torch::Tensor& want,
                 const std::string& what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>();
  const double diff = (got - want).abs().max().item<double>();
  EXPECT_LE(diff, 1e-5 * scale)
      << what << ": max difference " << diff << ", largest value " << scale;
}

// Forward and both gradients against libtorch's convolution, with and
// without bias, for contiguous and channels-last inputs.
TEST(WinogradConv2d, MatchesLibtorchForwardAndGradients) {
  if (!WinogradSuits(32, 3)) {
    GTEST_SKIP() << "this CPU has no oneDNN Winograd convolution";
  }
  torch::manual_seed(1);
  for (bool bias : {true, false}) {
    for (auto format :
         {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
      const torch::Tensor x = torch::randn({8, 32, 16, 16}).contiguous(format);
      const torch::Tensor w =
          (torch::randn({64, 32, 3, 3}) * 0.1).contiguous(format);
      const torch::Tensor b = bias ? torch::randn({64}) : torch::Tensor();
      const torch::Tensor probe = torch::randn({8, 64, 16, 16});
      Grads want = Differentiate(
          [](const torch::Tensor& x, const torch::Tensor& w,
             const torch::Tensor& b) { return torch::conv2d(x, w, b, 1, 1); },
          x, w, b, probe);
      Grads got = Differentiate(
          [](const torch::Tensor& x, const torch::Tensor& w,
             const torch::Tensor& b) {
            std::optional<torch::Tensor> y = WinogradConv2d(x, w, b, 1);
            EXPECT_TRUE(y.has_value());
            return y ? *y : torch::zeros({8, 64, 16, 16});
          },
          x, w, b, probe);
      const std::string what =
          std::string(bias ? "bias" : "no bias") +
          (format == torch::MemoryFormat::ChannelsLast ? ", channels-last"
                                                       : ", contiguous");
      ExpectClose(got.y, want.y, "output, " + what);
      ExpectClose(got.dx, want.dx, "input gradient, " + what);
      ExpectClose(got.dw, want.dw, "weight gradient, " + what);
      if (bias) ExpectClose(got.db, want.db, "bias gradient, " + what);
    }
  }
}

// The same inputs give the same bits (a resumed run must repeat a straight
// one).
TEST(WinogradConv2d, IsDeterministic) {
  if (!WinogradSuits(32, 3)) {
    GTEST_SKIP() << "this CPU has no oneDNN Winograd convolution";
  }
  const torch::Tensor x = torch::randn({4, 32, 8, 8});
  const torch::Tensor w = torch::randn({32, 32, 3, 3});
  const torch::Tensor b = torch::randn({32});
  const torch::Tensor probe = torch::randn({4, 32, 8, 8});
  auto conv = [](const torch::Tensor& x, const torch::Tensor& w,
                 const torch::Tensor& b) {
    return *WinogradConv2d(x, w, b, 1);
  };
  Grads first = Differentiate(conv, x, w, b, probe),
        second = Differentiate(conv, x, w, b, probe);
  EXPECT_TRUE(torch::equal(first.y, second.y));
  EXPECT_TRUE(torch::equal(first.dx, second.dx));
  EXPECT_TRUE(torch::equal(first.dw, second.dw));
  EXPECT_TRUE(torch::equal(first.db, second.db));
}

TEST(WinogradConv2d, SuitsOnlyWideThreeByThreeLayers) {
  EXPECT_FALSE(WinogradSuits(3, 3));   // the first layer: direct is faster
  EXPECT_FALSE(WinogradSuits(16, 3));  // measured slower at 16 channels
  EXPECT_FALSE(WinogradSuits(64, 5));  // Winograd F(4x4, 3x3) only
  // Not for what it cannot take: integer tensors, non-square images.
  EXPECT_FALSE(WinogradConv2d(torch::ones({1, 32, 8, 8}, torch::kLong),
                              torch::ones({32, 32, 3, 3}), torch::Tensor(), 1)
                   .has_value());
  EXPECT_FALSE(WinogradConv2d(torch::ones({1, 32, 8, 6}),
                              torch::ones({32, 32, 3, 3}), torch::Tensor(), 1)
                   .has_value());
}

}  // namespace
}  // namespace det::trainer
