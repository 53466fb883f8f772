// det-trial as a user runs it by hand: standalone, JSON lines on stdout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/trainer/synthetic_cifar.h"

extern char** environ;

namespace det::trainer {
namespace {

using ::det::trainer::testing::TempDir;
using ::det::trainer::testing::WriteCifarSet;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A det-trial child with stdout/stderr in files; killed if still running
// when the object goes away, so a failing test never leaves it behind.
class Child {
 public:
  Child(const TempDir& dir, std::vector<std::string> args,
        const std::vector<std::string>& extra_env = {},
        const std::string& tag = "")
      : dir_(dir), tag_(tag) {
    args.insert(args.begin(), std::string(DET_BIN_DIR) + "/det-trial");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Standalone: no worker variables; two threads at most.
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (kv.rfind("DET_", 0) == 0) continue;
      env_store.push_back(kv);
    }
    env_store.push_back("DET_NUM_THREADS=1");
    env_store.insert(env_store.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> envp;
    for (auto& kv : env_store) envp.push_back(kv.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out().c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err().c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(
        posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data()), 0);
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string out() const { return dir_.File("stdout" + tag_); }
  std::string err() const { return dir_.File("stderr" + tag_); }
  pid_t pid() const { return pid_; }

  // Exit status, or -1 (after killing it) if it runs past `limit`.
  int Wait(std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  // Waits until stdout contains `text` (false after `limit` or on exit).
  bool WaitForOutput(const std::string& text, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReadFile(out()).find(text) != std::string::npos) return true;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  const TempDir& dir_;
  const std::string tag_;
  pid_t pid_ = 0;
};

const char kSmallModel[] =
    R"({"n_filters1":4,"n_filters2":8,"hidden_units":16,"global_batch_size":8})";

class DetTrialTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteCifarSet(data_, 8); }
  TempDir data_, work_, checkpoints_;
};

TEST_F(DetTrialTest, InvalidHyperparametersExitWithCode3) {
  Child c(work_,
          {"--hparams", R"({"learning_rate":-1})", "--data", data_.path()});
  EXPECT_EQ(c.Wait(), 3);
  EXPECT_THAT(ReadFile(c.err()), HasSubstr("'learning_rate'"));
  Child u(work_, {"--hparams", R"({"lr":0.1})", "--data", data_.path()});
  EXPECT_EQ(u.Wait(), 3);
  EXPECT_THAT(ReadFile(u.err()), HasSubstr("unknown hyperparameter 'lr'"));
}

TEST_F(DetTrialTest, BadDataIsAnErrorNamingTheFile) {
  Child c(work_, {"--data", work_.File("nowhere")});
  EXPECT_EQ(c.Wait(), 1);
  EXPECT_THAT(ReadFile(c.err()), HasSubstr("nowhere/data_batch_1.bin"));
}

TEST_F(DetTrialTest, TrainsValidatesCheckpointsAndResumes) {
  {
    Child c(work_,
            {"--hparams", kSmallModel, "--data", data_.path(), "--batches", "4",
             "--validate-every", "2", "--checkpoint-dir", checkpoints_.path(),
             "--data-options", R"({"report_period":1})"});
    ASSERT_EQ(c.Wait(), 0) << ReadFile(c.err());
  }
  std::string out = ReadFile(work_.File("stdout"));
  EXPECT_THAT(out, HasSubstr("validation_accuracy"));
  EXPECT_THAT(out, HasSubstr("samples_per_second"));
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(out, m, std::regex(R"re("uuid":"([0-9a-f-]{36})")re")))
      << out;
  const std::string uuid = m[1];
  EXPECT_THAT(out, HasSubstr("\"steps_completed\":\"4\""));

  Child r(work_,
          {"--hparams", kSmallModel, "--data", data_.path(), "--batches", "6",
           "--checkpoint-dir", checkpoints_.path(), "--restore", uuid});
  ASSERT_EQ(r.Wait(), 0) << ReadFile(r.err());
  out = ReadFile(r.out());
  EXPECT_THAT(ReadFile(r.err()), HasSubstr("restoring " + uuid));
  EXPECT_THAT(out, HasSubstr("\"steps_completed\":\"6\""));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("\"steps_completed\":\"2\"")));
}

// JSON records (data.format: jsonl), as a user runs it by hand: a small
// generated file trains, checkpoints with its schema and resumes; a bad
// file stops det-trial before any batch with the file and line.
std::string RecordsOptions(const std::string& path) {
  return R"({"format":"jsonl","label":"stay","task":"regression",)"
         R"("validation_split":0.25,"report_period":5,"path":")" +
         path + "\"}";
}

TEST_F(DetTrialTest, JsonRecordsTrainCheckpointAndResume) {
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text += "{\"age\": " + std::to_string(30 + i) +
            ", \"insulin\": " + (i % 2 ? "true" : "false") + ", \"ward\": \"" +
            (i % 3 ? "A" : "B") + "\", \"admitted\": \"2024-01-01\", " +
            "\"discharged\": \"2024-01-1" + std::to_string(i % 10) +
            "\", \"stay\": " + std::to_string(i % 10) + "}\n";
  }
  const std::string records = work_.File("patients.jsonl");
  std::ofstream(records) << text;
  const char hparams[] =
      R"({"hidden_layers":1,"hidden_units":8,"global_batch_size":8,)"
      R"("optimizer":"adam","learning_rate":0.01})";
  {
    Child c(work_,
            {"--hparams", hparams, "--data-options", RecordsOptions(records),
             "--batches", "10", "--validate-every", "5", "--checkpoint-dir",
             checkpoints_.path()});
    ASSERT_EQ(c.Wait(), 0) << ReadFile(c.err());
    EXPECT_THAT(ReadFile(c.err()),
                HasSubstr("30 training and 10 validation records of"));
  }
  std::string out = ReadFile(work_.File("stdout"));
  EXPECT_THAT(out, HasSubstr("validation_rmse"));
  EXPECT_THAT(out, HasSubstr("validation_mae"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("validation_accuracy")));
  EXPECT_THAT(out, HasSubstr("records_schema.json"));
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(out, m, std::regex(R"re("uuid":"([0-9a-f-]{36})")re")))
      << out;
  const std::string uuid = m[1];
  Child r(work_,
          {"--hparams", hparams, "--data-options", RecordsOptions(records),
           "--batches", "14", "--checkpoint-dir", checkpoints_.path(),
           "--restore", uuid},
          {}, "-resumed");
  ASSERT_EQ(r.Wait(), 0) << ReadFile(r.err());
  EXPECT_THAT(ReadFile(r.out()), HasSubstr("\"steps_completed\":\"14\""));

  // The CNN's names are not the MLP's.
  Child u(work_,
          {"--hparams", R"({"conv_layers":2})", "--data-options",
           RecordsOptions(records)},
          {}, "-unknown");
  EXPECT_EQ(u.Wait(), 3);
  EXPECT_THAT(ReadFile(u.err()), HasSubstr("for JSON records"));
}

TEST_F(DetTrialTest, BadJsonRecordsStopBeforeTrainingNamingFileAndLine) {
  const std::string records = work_.File("bad.jsonl");
  std::ofstream(records)
      << "{\"age\": 1, \"stay\": 2}\n{\"age\": 2, \"stay\": 3}\n"
      << "{\"age\": 3, \"stay\": }\n{\"age\": 4, \"stay\": 5}\n";
  Child c(work_, {"--data-options", RecordsOptions(records), "--batches", "5"});
  EXPECT_EQ(c.Wait(), 1);
  EXPECT_THAT(ReadFile(c.err()), HasSubstr(records + ":3:20: not valid JSON"));
  EXPECT_THAT(ReadFile(c.out()), ::testing::Not(HasSubstr("metrics")));

  Child d(work_, {"--data-options", R"({"format":"jsonl","path":"x.jsonl"})"},
          {}, "-nolabel");
  EXPECT_EQ(d.Wait(), 1);
  EXPECT_THAT(ReadFile(d.err()), HasSubstr("data.label: required"));
}

TEST_F(DetTrialTest, SigtermFinishesTheBatchCheckpointsAndExitsZero) {
  Child c(work_, {"--hparams", kSmallModel, "--data", data_.path(), "--batches",
                  "1000000", "--checkpoint-dir", checkpoints_.path(),
                  "--data-options", R"({"report_period":1})"});
  ASSERT_TRUE(
      c.WaitForOutput("METRIC_GROUP_TRAINING", std::chrono::seconds(60)))
      << ReadFile(c.err());
  kill(c.pid(), SIGTERM);
  EXPECT_EQ(c.Wait(), 0) << ReadFile(c.err());
  EXPECT_THAT(ReadFile(c.out()), HasSubstr("\"kind\":\"checkpoint\""));
  EXPECT_THAT(ReadFile(c.err()), HasSubstr("stopped on request"));
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(DetTrialTest, TwoProcessesTrainDataParallelAndOnlyRankZeroReports) {
#ifndef DET_TRAINER_GLOO
  GTEST_SKIP() << "det-trial was built without Gloo (DET_TRAINER_GLOO=OFF)";
#endif
  const std::string rendezvous = "127.0.0.1:" + std::to_string(FreePort());
  std::vector<std::string> args = {
      "--hparams",    kSmallModel, "--data",           data_.path(),
      "--batches",    "4",         "--checkpoint-dir", checkpoints_.path(),
      "--rendezvous", rendezvous};
  Child r0(work_, args, {"DET_RANK=0", "DET_WORLD_SIZE=2"}, "0");
  Child r1(work_, args, {"DET_RANK=1", "DET_WORLD_SIZE=2"}, "1");
  ASSERT_EQ(r0.Wait(), 0) << ReadFile(r0.err());
  ASSERT_EQ(r1.Wait(), 0) << ReadFile(r1.err());
  EXPECT_THAT(ReadFile(r0.err()), HasSubstr("rank 0/2"));
  EXPECT_THAT(ReadFile(r1.err()), HasSubstr("rank 1/2"));
  EXPECT_THAT(ReadFile(r0.out()), HasSubstr("validation_accuracy"));
  EXPECT_THAT(ReadFile(r0.out()), HasSubstr("\"kind\":\"checkpoint\""));
  EXPECT_EQ(ReadFile(r1.out()), "");
}

// JSON records data parallel: two ranks split each global batch and reach
// what one process reaches, to float rounding (the gradient sums go in
// another order); only rank 0 reports.
TEST_F(DetTrialTest, JsonRecordsTrainDataParallelLikeOneProcess) {
#ifndef DET_TRAINER_GLOO
  GTEST_SKIP() << "det-trial was built without Gloo (DET_TRAINER_GLOO=OFF)";
#endif
  std::string text;
  for (int i = 0; i < 64; ++i) {
    text += "{\"x\": " + std::to_string(i % 13) +
            ", \"stay\": " + std::to_string((i % 13) * 2 + i % 3) + "}\n";
  }
  const std::string records = work_.File("dp.jsonl");
  std::ofstream(records) << text;
  const std::vector<std::string> args = {
      "--hparams",
      R"({"hidden_layers":1,"hidden_units":8,"global_batch_size":8,)"
      R"("dropout":0,"optimizer":"adam","learning_rate":0.01})",
      "--data-options",
      RecordsOptions(records),
      "--batches",
      "20"};
  Child one(work_, args, {}, "-one");
  ASSERT_EQ(one.Wait(), 0) << ReadFile(one.err());
  std::vector<std::string> dp = args;
  dp.push_back("--rendezvous");
  dp.push_back("127.0.0.1:" + std::to_string(FreePort()));
  Child r0(work_, dp, {"DET_RANK=0", "DET_WORLD_SIZE=2"}, "-r0");
  Child r1(work_, dp, {"DET_RANK=1", "DET_WORLD_SIZE=2"}, "-r1");
  ASSERT_EQ(r0.Wait(), 0) << ReadFile(r0.err());
  ASSERT_EQ(r1.Wait(), 0) << ReadFile(r1.err());
  EXPECT_EQ(ReadFile(r1.out()), "");
  auto rmse = [](const std::string& out) {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(
        out, m, std::regex(R"re("validation_rmse":([0-9.e+-]+))re")))
        << out;
    return m.empty() ? -1.0 : std::stod(m[1]);
  };
  const double single = rmse(ReadFile(one.out()));
  EXPECT_GT(single, 0);
  EXPECT_NEAR(rmse(ReadFile(r0.out())), single, 1e-4 * single);
}

// The loss and accuracy values a run printed, report by report (sorted by
// name within a report: JSON objects have no order).
std::vector<std::string> MetricValues(const std::string& out) {
  std::vector<std::string> values;
  const std::regex metric(
      R"re("(loss|accuracy|validation_loss|validation_accuracy)":([^,}]+))re");
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> report;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), metric);
         it != std::sregex_iterator(); ++it) {
      report.push_back((*it)[1].str() + "=" + (*it)[2].str());
    }
    std::sort(report.begin(), report.end());
    values.insert(values.end(), report.begin(), report.end());
  }
  return values;
}

// A rendezvous with DET_WORLD_SIZE=1 forms a group of one: every collective
// (the initial broadcast, gradient averaging, metric sums, the stop vote)
// runs, and the run computes exactly what a run without a group computes.
TEST_F(DetTrialTest, GroupOfOneRunsTheCollectivesAndChangesNothing) {
#ifndef DET_TRAINER_GLOO
  GTEST_SKIP() << "det-trial was built without Gloo (DET_TRAINER_GLOO=OFF)";
#endif
  std::vector<std::string> args = {
      "--hparams",        kSmallModel,
      "--data",           data_.path(),
      "--batches",        "4",
      "--validate-every", "2",
      "--data-options",   R"({"report_period":1})"};
  Child alone(work_, args, {}, "alone");
  ASSERT_EQ(alone.Wait(), 0) << ReadFile(alone.err());
  args.push_back("--rendezvous");
  args.push_back("127.0.0.1:" + std::to_string(FreePort()));
  Child grouped(work_, args, {"DET_RANK=0", "DET_WORLD_SIZE=1"}, "grouped");
  ASSERT_EQ(grouped.Wait(), 0) << ReadFile(grouped.err());
  EXPECT_THAT(ReadFile(grouped.err()), HasSubstr("rank 0/1 (gloo)"));
  EXPECT_THAT(ReadFile(alone.err()), ::testing::Not(HasSubstr("(gloo)")));
  const std::vector<std::string> want = MetricValues(ReadFile(alone.out()));
  EXPECT_EQ(want.size(), 4u * 2 + 2u * 2) << ReadFile(alone.out());
  EXPECT_EQ(MetricValues(ReadFile(grouped.out())), want);
}

}  // namespace
}  // namespace det::trainer
