#include "worker/daemon/slots.h"

#include "gtest/gtest.h"

namespace det::worker {
namespace {

TEST(SlotsTest, ParsesNvidiaSmiList) {
  EXPECT_EQ(ParseNvidiaSmiList("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\n"
                               "GPU 1: Tesla T4 (UUID: GPU-5678)\n"
                               "  MIG 1g.10gb Device 0: (UUID: MIG-abc)\n"),
            (std::vector<std::string>{"NVIDIA H100 80GB HBM3", "Tesla T4"}));
  EXPECT_TRUE(ParseNvidiaSmiList("").empty());
  EXPECT_TRUE(ParseNvidiaSmiList("NVIDIA-SMI has failed\n").empty());
}

TEST(SlotsTest, ParsesProcInformation) {
  EXPECT_EQ(ParseNvidiaProcInformation("Model: \t\t NVIDIA A100-SXM4-40GB\n"
                                       "IRQ:   \t\t 33\n"),
            "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(ParseNvidiaProcInformation("IRQ: 33\n"), "");
}

TEST(SlotsTest, CpuSlotsWithoutGpus) {
  auto one = MakeSlots(0, false, {});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].type(), "cpu");
  EXPECT_EQ((*one)[0].device(), "cpu");
  auto four = MakeSlots(4, false, {});
  ASSERT_TRUE(four.ok());
  ASSERT_EQ(four->size(), 4u);
  EXPECT_EQ((*four)[3].id(), 3);
  EXPECT_FALSE(MakeSlots(-1, false, {}).ok());
}

TEST(SlotsTest, GpuSlotsWhenThereAreGpus) {
  std::vector<std::string> gpus = {"A", "B"};
  auto all = MakeSlots(0, false, gpus);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].type(), "cuda");
  EXPECT_EQ((*all)[1].device(), "B");
  auto first = MakeSlots(1, false, gpus);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 1u);
  std::string note;
  auto too_many = MakeSlots(3, false, gpus, &note);
  ASSERT_TRUE(too_many.ok());
  ASSERT_EQ(too_many->size(), 3u);
  EXPECT_EQ((*too_many)[0].type(), "cpu");
  EXPECT_NE(note.find("only 2 GPU(s) found"), std::string::npos) << note;
  auto cpu = MakeSlots(3, true, gpus);
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ((*cpu)[0].type(), "cpu");
}

TEST(SlotsTest, ThreadsAreAShareOfTheCores) {
  EXPECT_EQ(ThreadsFor(1, 2, 16), 8);
  EXPECT_EQ(ThreadsFor(2, 2, 16), 16);
  EXPECT_EQ(ThreadsFor(1, 4, 2), 1);  // at least one
  EXPECT_EQ(ThreadsFor(1, 0, 8), 1);
  EXPECT_GE(UsableCores(), 1);
}

}  // namespace
}  // namespace det::worker
