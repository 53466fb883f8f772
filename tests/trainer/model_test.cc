#include "worker/trainer/model.h"

#include <ATen/Context.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "worker/trainer/onednn_eval.h"

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

#ifdef DET_TRAINER_ONEDNN
TEST(FrozenCnn, RunsThroughOneDnnOnTheCpu) {
  HParams hp;
  hp.n_filters1 = 4;
  hp.n_filters2 = 8;
  hp.hidden_units = 16;
  Cnn model(hp);
  EXPECT_TRUE(FrozenCnn(*model).uses_onednn());
}

// The textbook forward (conv -> ReLU -> pool, flatten, FC -> ReLU -> FC) in
// libtorch's operators, for OneDnnEvalNet to agree with.
torch::Tensor Reference(const EvalNetWeights& w, torch::Tensor x) {
  for (size_t i = 0; i < w.conv_weights.size(); ++i) {
    x = torch::max_pool2d(
        torch::relu(torch::conv2d(x, w.conv_weights[i], w.conv_biases[i], 1,
                                  w.padding)),
        2);
  }
  x = torch::relu(torch::linear(x.flatten(1), w.fc1_weight, w.fc1_bias));
  return torch::linear(x, w.fc2_weight, w.fc2_bias);
}

EvalNetWeights RandomNet(const std::vector<int64_t>& widths, int64_t kernel,
                         int64_t hidden) {
  EvalNetWeights w;
  int64_t in = 3, side = 32;
  for (int64_t out : widths) {
    const double scale = std::sqrt(2.0 / (in * kernel * kernel));
    w.conv_weights.push_back(torch::randn({out, in, kernel, kernel}) * scale);
    w.conv_biases.push_back(torch::randn({out}) * 0.1);
    in = out;
    side /= 2;
  }
  w.padding = kernel / 2;
  w.fc1_weight = torch::randn({hidden, in * side * side}) /
                 std::sqrt(static_cast<double>(in * side * side));
  w.fc1_bias = torch::randn({hidden}) * 0.1;
  w.fc2_weight = torch::randn({10, hidden}) / std::sqrt(hidden * 1.0);
  w.fc2_bias = torch::randn({10}) * 0.1;
  return w;
}

// Every algorithm choice computes the textbook forward, at two batch sizes
// (two plans) and for 3x3 and 5x5 kernels (Winograd has only 3x3).
TEST(OneDnnEvalNet, AgreesWithTheTextbookForwardForEveryChoice) {
  torch::manual_seed(3);
  torch::InferenceMode inference;
  for (int64_t kernel : {3, 5}) {
    const EvalNetWeights w = RandomNet({32, 64, 128}, kernel, 48);
    for (ConvChoice choice :
         {ConvChoice::kTimed, ConvChoice::kDirect, ConvChoice::kWinograd}) {
      OneDnnEvalNet net(w, choice);
      for (int64_t batch : {16, 5, 16}) {
        torch::Tensor x = torch::randn({batch, 3, 32, 32});
        torch::Tensor expected = Reference(w, x);
        torch::Tensor got = net.Forward(x);
        ASSERT_EQ(got.sizes(), expected.sizes());
        EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-4))
            << "kernel " << kernel << " choice " << static_cast<int>(choice)
            << " batch " << batch << ": max difference "
            << (got - expected).abs().max().item<float>();
        ASSERT_EQ(net.Algorithms(batch).size(), 3u);
      }
      if (kernel == 5 || choice == ConvChoice::kDirect) {
        for (const char* a : net.Algorithms(16)) EXPECT_STREQ(a, "direct");
      }
    }
  }
}

// Every depth the hyperparameters allow (1-5 blocks: the last pools 2x2 to
// 1x1) and every kernel size's shape (1x1 to 9x9), through FrozenCnn.
TEST(OneDnnEvalNet, EveryDepthAndKernelMatchesTheModule) {
  torch::manual_seed(5);
  for (int64_t layers = 1; layers <= 5; ++layers) {
    for (int64_t k : {1, 3, 9}) {
      HParams hp;
      hp.conv_layers = layers;
      hp.kernel_size = k;
      hp.n_filters1 = 8;
      hp.n_filters2 = 16;
      hp.hidden_units = 16;
      Cnn model(hp);
      model->eval();
      torch::Tensor x = torch::randn({3, 3, 32, 32});
      torch::Tensor expected = model->forward(x);
      torch::InferenceMode inference;
      const FrozenCnn frozen(*model);
      ASSERT_TRUE(frozen.uses_onednn());
      torch::Tensor got = frozen.forward(x);
      ASSERT_EQ(got.sizes(), expected.sizes());
      EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5))
          << "layers " << layers << " kernel " << k << ": "
          << (got - expected).abs().max().item<float>();
    }
  }
}

// Where oneDNN has Winograd (AVX-512 machines), kWinograd uses it for 3x3
// layers, so the test above checked its numbers.
TEST(OneDnnEvalNet, WinogradIsUsedWhereOneDnnHasIt) {
  torch::InferenceMode inference;
  OneDnnEvalNet net(RandomNet({32, 64}, 3, 16), ConvChoice::kWinograd);
  net.Forward(torch::randn({8, 3, 32, 32}));
  const std::vector<const char*> algorithms = net.Algorithms(8);
  ASSERT_EQ(algorithms.size(), 2u);
  if (std::string(algorithms[1]) != "winograd") {
    GTEST_SKIP() << "this CPU has no oneDNN Winograd convolution";
  }
}

// Under deterministic algorithms the timed choice is off: direct everywhere,
// and two nets give bit-identical logits.
TEST(OneDnnEvalNet, DeterministicAlgorithmsMeanDirectAndRepeatable) {
  torch::InferenceMode inference;
  const bool before = at::globalContext().deterministicAlgorithms();
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  const EvalNetWeights w = RandomNet({32, 64}, 3, 16);
  torch::Tensor x = torch::randn({8, 3, 32, 32});
  OneDnnEvalNet a(w), b(w);
  torch::Tensor ya = a.Forward(x), yb = b.Forward(x);
  at::globalContext().setDeterministicAlgorithms(before, /*warn_only=*/true);
  EXPECT_TRUE(torch::equal(ya, yb));
  for (const char* algorithm : a.Algorithms(8)) {
    EXPECT_STREQ(algorithm, "direct");
  }
}

TEST(OneDnnEvalNet, MismatchedWeightsAreAClearError) {
  EvalNetWeights w = RandomNet({8, 16}, 3, 16);
  w.fc1_weight = torch::randn({16, 100});  // the blocks give 16*8*8 = 1024
  OneDnnEvalNet net(w);
  try {
    net.Forward(torch::randn({2, 3, 32, 32}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc1 expects 100 features"),
              std::string::npos)
        << e.what();
  }
}
#endif  // DET_TRAINER_ONEDNN

}  // namespace
}  // namespace det::trainer
