#include "worker/trainer/model.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace det::trainer {
namespace {

TEST(Cnn, OutputIsTenLogitsForEveryDepthAndKernel) {
  for (int64_t layers = 1; layers <= 5; ++layers) {
    for (int64_t k : {1, 3, 5}) {
      for (bool bn : {false, true}) {
        HParams hp;
        hp.conv_layers = layers;
        hp.kernel_size = k;
        hp.batch_norm = bn;
        hp.n_filters1 = 4;
        hp.n_filters2 = 6;
        hp.hidden_units = 16;
        Cnn model(hp);
        torch::Tensor y = model->forward(torch::randn({2, 3, 32, 32}));
        EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 10}))
            << "layers " << layers << " kernel " << k << " bn " << bn;
      }
    }
  }
}

TEST(Cnn, LayersWidenAndBatchNormIsOptional) {
  HParams hp;
  hp.conv_layers = 4;
  hp.n_filters1 = 8;
  hp.n_filters2 = 12;
  EXPECT_EQ(ConvWidths(hp), (std::vector<int64_t>{8, 12, 24, 48}));
  hp.batch_norm = true;
  Cnn with_bn(hp);
  int bn = 0;
  for (const auto& m : with_bn->modules(false)) {
    if (m->name() == "torch::nn::BatchNorm2dImpl") ++bn;
  }
  EXPECT_EQ(bn, 4);
  hp.batch_norm = false;
  Cnn without(hp);
  EXPECT_TRUE(without->buffers().empty());
}

TEST(Cnn, ParameterCountOfTheDefaultModel) {
  HParams hp;  // 32 and 64 filters of 3x3, 512 hidden units
  Cnn model(hp);
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  const int64_t expected = (3 * 9 * 32 + 32) + (32 * 9 * 64 + 64) +
                           (64 * 8 * 8 * 512 + 512) + (512 * 10 + 10);
  EXPECT_EQ(n, expected);
  EXPECT_DOUBLE_EQ(
      ForwardFlopsPerImage(hp),
      2.0 * (32 * 32 * 32 * 27 + 16 * 16 * 64 * 288 + 4096 * 512 + 512 * 10));
}

TEST(Cnn, DropoutOnlyInTraining) {
  HParams hp;
  hp.n_filters1 = 4;
  hp.n_filters2 = 4;
  hp.hidden_units = 64;
  hp.dropout = 0.5;
  Cnn model(hp);
  torch::Tensor x = torch::randn({2, 3, 32, 32});
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(x), model->forward(x)));
  model->train();
  EXPECT_FALSE(torch::equal(model->forward(x), model->forward(x)));
}

TEST(Cnn, EvalFoldsBatchNormIntoTheConvolutionExactlyEnough) {
  HParams hp;
  hp.conv_layers = 3;
  hp.batch_norm = true;
  hp.n_filters1 = 8;
  hp.n_filters2 = 16;
  hp.hidden_units = 32;
  Cnn model(hp);
  // Give the running statistics and affine parameters non-trivial values.
  model->train();
  for (int i = 0; i < 3; ++i)
    model->forward(torch::randn({16, 3, 32, 32}) * 3 + 1);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (p.key().rfind("bn", 0) == 0) p.value().uniform_(0.5, 1.5);
  }
  model->eval();
  torch::Tensor x = torch::randn({4, 3, 32, 32});
  torch::Tensor folded = model->forward(x);
  // The textbook evaluation: conv -> batch norm (running stats) -> ReLU ->
  // pool.
  torch::Tensor y = x;
  for (int i = 1; i <= 3; ++i) {
    auto conv = model->named_modules()[absl::StrCat("conv", i)]
                    ->as<torch::nn::Conv2d>();
    auto bn = model->named_modules()[absl::StrCat("bn", i)]
                  ->as<torch::nn::BatchNorm2d>();
    y = torch::max_pool2d(torch::relu(bn->forward(conv->forward(y))), 2);
  }
  auto fc1 = model->named_modules()["fc1"]->as<torch::nn::Linear>();
  auto fc2 = model->named_modules()["fc2"]->as<torch::nn::Linear>();
  torch::Tensor expected =
      fc2->forward(torch::relu(fc1->forward(y.flatten(1))));
  // Folding reorders float32 products: agreement to rounding, not bits.
  EXPECT_TRUE(torch::allclose(folded, expected, 1e-4, 1e-5))
      << (folded - expected).abs().max().item<float>();
}

// The frozen evaluation model (folded once, oneDNN layout on the CPU) against
// the module's own eval forward, with and without batch norm.
TEST(FrozenCnn, ComputesTheEvalForward) {
  for (bool batch_norm : {false, true}) {
    HParams hp;
    hp.conv_layers = 3;
    hp.batch_norm = batch_norm;
    hp.n_filters1 = 8;
    hp.n_filters2 = 16;
    hp.hidden_units = 32;
    hp.dropout = 0.5;
    Cnn model(hp);
    model->train();
    for (int i = 0; i < 3; ++i)
      model->forward(torch::randn({16, 3, 32, 32}) * 3 + 1);
    model->eval();
    torch::Tensor x = torch::randn({5, 3, 32, 32})
                          .contiguous(torch::MemoryFormat::ChannelsLast);
    torch::Tensor expected = model->forward(x);
    torch::InferenceMode inference;
    torch::Tensor got = FrozenCnn(*model).forward(x);
    ASSERT_EQ(got.sizes(), expected.sizes());
    // oneDNN's blocked convolutions sum in another order: rounding only.
    EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5))
        << "batch_norm " << batch_norm << ": "
        << (got - expected).abs().max().item<float>();
  }
}

}  // namespace
}  // namespace det::trainer
