#include "worker/trainer/model.h"

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

}  // namespace
}  // namespace det::trainer
