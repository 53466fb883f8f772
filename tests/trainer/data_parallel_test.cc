// Two ranks in two threads of this process, joined through a real c10d
// TCPStore on loopback and a Gloo process group, as det-trial's processes
// join across slots.
#include "worker/trainer/data_parallel.h"

#include <thread>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "gtest/gtest.h"
#include "tests/trainer/synthetic_cifar.h"
#include "worker/trainer/trainer.h"

namespace det::trainer {
namespace {

using ::det::trainer::testing::TempDir;
using ::det::trainer::testing::WriteCifarSet;

constexpr auto kTimeout = std::chrono::seconds(60);

// Hosts a store on a free port; each rank connects its own client.
class Rendezvous {
 public:
  Rendezvous() {
    c10d::TCPStoreOptions opts;
    opts.port = 0;
    opts.isServer = true;
    opts.waitWorkers = false;
    opts.timeout = kTimeout;
    server_ = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
  }
  c10::intrusive_ptr<c10d::Store> Client() {
    c10d::TCPStoreOptions opts;
    opts.port = server_->getPort();
    opts.timeout = kTimeout;
    return c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
  }

 private:
  c10::intrusive_ptr<c10d::TCPStore> server_;
};

// Runs `body(rank, group)` on two threads, one per rank.
void OnTwoRanks(const std::function<void(int, DataParallel&)>& body) {
  Rendezvous rv;
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      absl::StatusOr<std::unique_ptr<DataParallel>> dp =
          DataParallel::JoinWithStore(rv.Client(), "127.0.0.1", rank, 2,
                                      kTimeout);
      ASSERT_TRUE(dp.ok()) << dp.status();
      body(rank, **dp);
    });
  }
  for (auto& t : threads) t.join();
}

TEST(DataParallel, CollectivesSumAndBroadcast) {
  torch::Tensor sums[2], bcast[2];
  OnTwoRanks([&](int rank, DataParallel& dp) {
    torch::Tensor x = torch::full({3}, float(rank + 1));
    ASSERT_TRUE(dp.AllReduceSum({x}).ok());
    sums[rank] = x;
    torch::Tensor a = torch::full({2}, float(10 * rank)),
                  b = torch::full({2, 2}, float(rank));
    ASSERT_TRUE(dp.Broadcast({a, b}).ok());
    bcast[rank] = torch::cat({a, b.flatten()});
  });
  EXPECT_TRUE(torch::equal(sums[0], torch::full({3}, 3.0f)));
  EXPECT_TRUE(torch::equal(sums[1], torch::full({3}, 3.0f)));
  EXPECT_TRUE(torch::equal(bcast[1], torch::zeros({6})));
}

TEST(DataParallel, TwoRanksStepLikeOneProcessOnTheWholeBatch) {
  // Width 4: libtorch's convolutions; width 32: the second convolution
  // trains through oneDNN's Winograd where this CPU has it.
  for (int64_t width : {4, 32}) {
    SCOPED_TRACE(::testing::Message() << "n_filters1 " << width);
    TempDir data_dir;
    WriteCifarSet(data_dir, 16);
    torch::set_num_threads(1);
    TrainerOptions o;
    o.hparams.n_filters1 = width;
    o.hparams.n_filters2 = 8;
    o.hparams.hidden_units = 16;
    o.hparams.global_batch_size = 32;
    // Dropout masks and batch-norm statistics legitimately depend on how the
    // batch is split, so the equality holds for the model without them.
    o.hparams.dropout = 0;
    o.hparams.batch_norm = false;
    o.hparams.learning_rate = 0.1;
    o.data.dir = data_dir.path();
    o.seed = 11;
    o.target_batches = 2;
    Cifar10 data = *LoadCifar10(o.data);

    auto single = *Trainer::Create(o, data);
    for (int i = 0; i < 2; ++i) {
      double loss = 0;
      int64_t correct = 0, n = 0;
      ASSERT_TRUE(single->TrainStep(&loss, &correct, &n).ok());
      EXPECT_EQ(n, 32);
    }

    std::map<std::string, torch::Tensor> params[2];
    double val_acc[2] = {0, 0};
    OnTwoRanks([&](int rank, DataParallel& dp) {
      TrainerOptions ro = o;
      ro.parallel = &dp;
      absl::StatusOr<std::unique_ptr<Trainer>> t = Trainer::Create(ro, data);
      ASSERT_TRUE(t.ok()) << t.status();
      for (int i = 0; i < 2; ++i) {
        double loss = 0;
        int64_t correct = 0, n = 0;
        ASSERT_TRUE((*t)->TrainStep(&loss, &correct, &n).ok());
        EXPECT_EQ(n, 16);
      }
      for (const auto& p : (*t)->model()->named_parameters())
        params[rank][p.key()] = p.value();
      absl::StatusOr<Metrics> m = (*t)->Validate();
      ASSERT_TRUE(m.ok()) << m.status();
      val_acc[rank] = m->at("validation_accuracy");
    });

    ASSERT_FALSE(params[0].empty());
    for (const auto& p : single->model()->named_parameters()) {
      const torch::Tensor& r0 = params[0].at(p.key());
      const torch::Tensor& r1 = params[1].at(p.key());
      // Both ranks apply the same all-reduced gradient: identical bits.
      EXPECT_TRUE(torch::equal(r0, r1)) << p.key();
      // Against one process on the whole batch only the summation order of
      // the gradient differs (two half-batch means averaged vs one mean), a
      // float32 rounding difference of a few ulps, amplified a little by the
      // second step.
      EXPECT_TRUE(torch::allclose(r0, p.value(), /*rtol=*/1e-4, /*atol=*/1e-6))
          << p.key() << " max diff "
          << (r0 - p.value()).abs().max().item<float>();
    }
    absl::StatusOr<Metrics> single_val = single->Validate();
    ASSERT_TRUE(single_val.ok());
    // Validation is sharded over ranks and summed: the same accuracy.
    EXPECT_DOUBLE_EQ(val_acc[0], single_val->at("validation_accuracy"));
    EXPECT_DOUBLE_EQ(val_acc[1], val_acc[0]);
  }
}

TEST(DataParallel, BadRendezvousIsAnError) {
  auto dp = DataParallel::Join("no-port-here", 0, 2, std::chrono::seconds(1));
  EXPECT_EQ(dp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dp.status().message().find("no-port-here"), std::string::npos);
}

}  // namespace
}  // namespace det::trainer
