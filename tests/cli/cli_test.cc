// The det command run in-process (RunCli) against a fake master.
#include "cli/cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "common/archive/context_archive.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/cli/fake_api.h"
#include "tests/testing/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace det::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

RunOptions FastOptions() {
  RunOptions options;
  options.follow.initial_backoff = absl::Milliseconds(10);
  options.follow.max_backoff = absl::Milliseconds(50);
  options.follow.give_up_after = absl::Seconds(5);
  options.follow.poll_interval = absl::Milliseconds(10);
  return options;
}

Result RunArgs(std::vector<std::string> args,
               const RunOptions& options = FastOptions()) {
  args.insert(args.begin(), "det");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  Result result;
  result.code =
      RunCli(static_cast<int>(args.size()), argv.data(), out, err, options);
  result.out = out.str();
  result.err = err.str();
  return result;
}

google::protobuf::Struct ParseJsonObject(const std::string& text) {
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(text, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text;
  return parsed;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A port on 127.0.0.1 that nothing listens on.
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

using ::det::test::TempDir;

constexpr char kConfig[] = R"(name: cifar-asha
hyperparameters:
  learning_rate: 0.01
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length:
    batches: 100
)";

v1::Experiment MakeExperiment(int64_t id, v1::State state, double progress) {
  v1::Experiment e;
  e.set_id(id);
  e.set_name(id == 1 ? "cifar-asha" : "grid-search");
  e.set_state(state);
  e.set_searcher(id == 1 ? "adaptive_asha" : "grid");
  e.set_metric("validation_accuracy");
  e.set_progress(progress);
  return e;
}

void SetBest(v1::Experiment* e) {
  e->set_best_trial_id(7);
  (*e->mutable_best_validation_metrics())["validation_accuracy"] = 0.71;
  (*e->mutable_best_validation_metrics())["validation_loss"] = 0.85;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::FakeApi& api = master_.api();
    v1::Experiment e1 = MakeExperiment(1, v1::STATE_COMPLETED, 1.0);
    SetBest(&e1);
    e1.set_num_trials(2);
    e1.set_trials_completed(2);
    api.experiments[1] = e1;
    v1::Experiment e2 = MakeExperiment(2, v1::STATE_ACTIVE, 0.25);
    e2.set_num_trials(4);
    api.experiments[2] = e2;

    for (int64_t id : {7, 8}) {
      v1::Trial t;
      t.set_id(id);
      t.set_experiment_id(1);
      t.set_state(v1::STATE_COMPLETED);
      t.set_steps_completed(937);
      t.set_target_batches(937);
      t.set_rung(-1);
      t.set_has_best_metric(true);
      t.set_best_metric(id == 7 ? 0.71 : 0.52);
      auto& hp = *t.mutable_hparams()->mutable_fields();
      hp["learning_rate"].set_number_value(id == 7 ? 0.01 : 0.1);
      hp["global_batch_size"].set_number_value(64);
      (*hp["model"].mutable_struct_value()->mutable_fields())["layers"]
          .set_number_value(2);
      api.trials[id] = t;
    }
    for (int64_t steps : {468, 937}) {
      v1::MetricReport r;
      r.set_trial_id(7);
      r.set_group(v1::METRIC_GROUP_VALIDATION);
      r.set_steps_completed(steps);
      (*r.mutable_metrics())["validation_accuracy"] = steps == 937 ? 0.71 : 0.6;
      api.validations[7].push_back(r);
    }
    const char* lines[][2] = {{"stdout", "epoch 1 loss 2.1"},
                              {"worker", "trial 7 started on slot 0"},
                              {"stdout", "epoch 2 loss 1.7\n"},
                              {"stderr", "warning: slow data"}};
    int64_t log_id = 0;
    for (const auto& [source, text] : lines) {
      v1::TrialLogLine line;
      line.set_id(++log_id);
      line.set_trial_id(7);
      line.set_source(source);
      line.set_line(text);
      api.logs[7].push_back(line);
    }
    v1::Agent agent;
    agent.set_id("worker-1");
    agent.set_address("10.0.0.5:41234");
    agent.set_version("0.1.0");
    agent.set_connected(true);
    for (int slot = 0; slot < 2; ++slot) {
      v1::Slot* s = agent.add_slots();
      s->set_id(slot);
      s->set_type("cuda");
      s->set_device("NVIDIA H100");
      s->set_trial_id(slot == 0 ? 7 : 0);
    }
    api.agents.push_back(agent);
    api.master_info.set_version("0.1.0");
    api.master_info.set_cluster_id("c-123");
    api.master_info.set_num_agents(1);
    api.master_info.set_slots_total(2);
    api.master_info.set_slots_used(1);
    api.master_info.set_store_available(true);
  }

  Result Run(std::vector<std::string> args,
             const RunOptions& options = FastOptions()) {
    args.insert(args.begin(), {"-m", master_.address()});
    return RunArgs(std::move(args), options);
  }

  // The watch script of a created experiment 5: two updates, then done.
  void ScriptExperiment5(v1::State end_state) {
    v1::Experiment start = MakeExperiment(5, v1::STATE_ACTIVE, 0.0);
    v1::Experiment half = MakeExperiment(5, v1::STATE_ACTIVE, 0.5);
    half.set_trials_running(1);
    v1::Experiment end = MakeExperiment(5, end_state, 1.0);
    end.set_trials_completed(end_state == v1::STATE_COMPLETED ? 2 : 0);
    end.set_trials_errored(end_state == v1::STATE_ERROR ? 2 : 0);
    if (end_state == v1::STATE_COMPLETED) SetBest(&end);
    master_.api().watch_script[5] = {start, start, half, end};
  }

  testing::FakeMaster master_;
  TempDir dir_;
};

TEST_F(CliTest, CreateWithConfigThenDirectorySendsYamlAndContext) {
  const std::string config = dir_.Write("config.yaml", kConfig);
  dir_.Write("context/model_def.py", "print('hello')\n");
  const std::string context = dir_.path() + "/context";

  Result r = Run({"experiment", "create", config, context});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Created experiment 5\n");
  EXPECT_THAT(r.err, HasSubstr("Warning: max_concurrent_trials"));

  auto& api = master_.api();
  ASSERT_EQ(api.create_requests.size(), 1u);
  const v1::CreateExperimentRequest& request = api.create_requests[0];
  EXPECT_EQ(request.config_yaml(), kConfig);
  EXPECT_TRUE(request.activate());
  EXPECT_FALSE(request.validate_only());
  // The context is the directory, packed: unpacking gives the file back.
  TempDir unpacked;
  ASSERT_TRUE(UnpackContext(request.context(), unpacked.path()).ok());
  std::ifstream file(unpacked.path() + "/model_def.py");
  std::string text((std::istreambuf_iterator<char>(file)), {});
  EXPECT_EQ(text, "print('hello')\n");
}

TEST_F(CliTest, CreateWithDirectoryAndConfigFlag) {
  const std::string config = dir_.Write("config.yaml", kConfig);
  dir_.Write("context/data.txt", "x");
  Result r =
      Run({"e", "create", dir_.path() + "/context", "--config=" + config});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Created experiment 5\n");
  ASSERT_EQ(master_.api().create_requests.size(), 1u);
  EXPECT_EQ(master_.api().create_requests[0].config_yaml(), kConfig);
  EXPECT_FALSE(master_.api().create_requests[0].context().empty());
}

TEST_F(CliTest, CreateWithoutDirectorySendsNoContext) {
  const std::string config = dir_.Write("config.yaml", kConfig);
  Result r = Run({"experiment", "create", config, "--paused"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(master_.api().create_requests.size(), 1u);
  EXPECT_TRUE(master_.api().create_requests[0].context().empty());
  EXPECT_FALSE(master_.api().create_requests[0].activate());
}

TEST_F(CliTest, CreateAcceptsDirectoryBeforeConfigFile) {
  const std::string config = dir_.Write("config.yaml", kConfig);
  dir_.Write("context/a.txt", "a");
  Result r = Run({"experiment", "create", dir_.path() + "/context", config});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(master_.api().create_requests.size(), 1u);
  EXPECT_EQ(master_.api().create_requests[0].config_yaml(), kConfig);
  EXPECT_FALSE(master_.api().create_requests[0].context().empty());
}

TEST_F(CliTest, CreateAppliesConfigOverrides) {
  const std::string config = dir_.Write("config.yaml", kConfig);
  dir_.Write("context/a.txt", "a");
  Result r =
      Run({"experiment", "create", dir_.path() + "/context",
           "--config=" + config, "--config", "searcher.max_length.batches=7",
           "--config", "hyperparameters.learning_rate=0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(master_.api().create_requests.size(), 1u);
  YAML::Node sent = YAML::Load(master_.api().create_requests[0].config_yaml());
  EXPECT_EQ(sent["searcher"]["max_length"]["batches"].as<int>(), 7);
  EXPECT_DOUBLE_EQ(sent["hyperparameters"]["learning_rate"].as<double>(), 0.5);
  EXPECT_EQ(sent["name"].as<std::string>(), "cifar-asha");
}

TEST_F(CliTest, CreateValidateOnly) {
  const std::string config = dir_.Write("config.yaml", kConfig);
  Result r = Run({"experiment", "create", config, "--validate-only"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("valid"));
  ASSERT_EQ(master_.api().create_requests.size(), 1u);
  EXPECT_TRUE(master_.api().create_requests[0].validate_only());
}

TEST_F(CliTest, CreateErrorsAreClear) {
  const std::string config = dir_.Write("config.yaml", kConfig);

  Result missing = Run({"experiment", "create", dir_.path() + "/nope.yaml"});
  EXPECT_NE(missing.code, 0);
  EXPECT_THAT(missing.err, HasSubstr("nope.yaml"));

  Result only_dir = Run({"experiment", "create", dir_.path()});
  EXPECT_NE(only_dir.code, 0);
  EXPECT_THAT(only_dir.err, HasSubstr("is a directory"));

  Result two =
      Run({"experiment", "create", "--config=" + config, "--config=" + config});
  EXPECT_NE(two.code, 0);
  EXPECT_THAT(two.err, HasSubstr("more than one config file"));

  Result none = Run({"experiment", "create"});
  EXPECT_NE(none.code, 0);
  EXPECT_THAT(none.err, HasSubstr("no experiment config"));

  EXPECT_TRUE(master_.api().create_requests.empty());

  const std::string bad = dir_.Write("bad.yaml", "invalid: true\n");
  Result rejected = Run({"experiment", "create", bad});
  EXPECT_EQ(rejected.code, 1);
  EXPECT_THAT(rejected.err,
              HasSubstr("INVALID_ARGUMENT: line 1, column 1: invalid"));
  EXPECT_EQ(rejected.out, "");
}

TEST_F(CliTest, DescribeJsonHasBestMetricsAtTopLevelAndTrials) {
  Result r = Run({"experiment", "describe", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  google::protobuf::Struct doc = ParseJsonObject(r.out);
  const auto& fields = doc.fields();
  ASSERT_TRUE(fields.count("best_validation_metrics"));
  const auto& best =
      fields.at("best_validation_metrics").struct_value().fields();
  EXPECT_DOUBLE_EQ(best.at("validation_accuracy").number_value(), 0.71);
  EXPECT_DOUBLE_EQ(best.at("validation_loss").number_value(), 0.85);
  // protobuf's JSON mapping writes int64 as a string.
  EXPECT_EQ(fields.at("best_trial_id").string_value(), "7");
  EXPECT_EQ(fields.at("state").string_value(), "STATE_COMPLETED");
  // Defaults are printed too, so scripts can rely on the keys.
  EXPECT_TRUE(fields.count("trials_errored"));
  const auto& trials = fields.at("trials").list_value().values();
  ASSERT_EQ(trials.size(), 2);
  EXPECT_EQ(trials[0].struct_value().fields().at("id").string_value(), "7");
  EXPECT_TRUE(
      trials[0].struct_value().fields().count("best_validation_metrics"));
}

TEST_F(CliTest, DescribeHumanShowsStateBestAndTrials) {
  Result r = Run({"experiment", "describe", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Experiment 1: cifar-asha"));
  EXPECT_THAT(r.out, HasSubstr("State:"));
  EXPECT_THAT(r.out, HasSubstr("COMPLETED"));
  EXPECT_THAT(r.out, Not(HasSubstr("STATE_")));
  EXPECT_THAT(r.out, HasSubstr("Best trial 7 (validation_accuracy 0.71)"));
  EXPECT_THAT(r.out, HasSubstr("validation_loss"));
  EXPECT_THAT(r.out, HasSubstr("learning_rate=0.01"));
  EXPECT_THAT(r.out, HasSubstr("model.layers=2"));
}

TEST_F(CliTest, ListShowsOneAlignedRowPerExperiment) {
  Result r = Run({"experiment", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u);
  EXPECT_THAT(lines[1], HasSubstr("cifar-asha"));
  EXPECT_THAT(lines[1], HasSubstr("COMPLETED"));
  EXPECT_THAT(lines[1], HasSubstr("0.71"));
  EXPECT_THAT(lines[2], HasSubstr("grid-search"));
  EXPECT_THAT(lines[2], HasSubstr("ACTIVE"));
  EXPECT_THAT(lines[2], HasSubstr("25.0%"));
  // Columns line up: STATE starts at the same place on every line.
  const size_t state = lines[0].find("STATE");
  EXPECT_EQ(lines[1].find("COMPLETED"), state);
  EXPECT_EQ(lines[2].find("ACTIVE"), state);

  Result json = Run({"e", "ls", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  google::protobuf::Struct doc = ParseJsonObject(json.out);
  EXPECT_EQ(doc.fields().at("experiments").list_value().values_size(), 2);
}

TEST_F(CliTest, ListTrials) {
  Result r = Run({"experiment", "list-trials", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_THAT(lines[1], HasSubstr("937/937"));
  EXPECT_THAT(lines[1], HasSubstr("0.71"));
  EXPECT_THAT(lines[2], HasSubstr("0.52"));

  Result json = Run({"experiment", "list-trials", "1", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(ParseJsonObject(json.out)
                .fields()
                .at("trials")
                .list_value()
                .values_size(),
            2);
}

TEST_F(CliTest, NotFoundIsAnErrorWithTheMastersMessage) {
  Result r = Run({"experiment", "describe", "99"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND: experiment 99 not found"));

  Result json = Run({"experiment", "describe", "99", "--json"});
  EXPECT_EQ(json.code, 1);
  EXPECT_EQ(json.out, "");

  Result trial = Run({"trial", "describe", "12"});
  EXPECT_EQ(trial.code, 1);
  EXPECT_THAT(trial.err, HasSubstr("trial 12 not found"));
}

TEST_F(CliTest, BadIdIsAUsageError) {
  Result r = Run({"experiment", "describe", "abc"});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("positive id"));
}

TEST(CliNoMaster, UnreachableMasterNamesAddressAndDetMaster) {
  const std::string address = "127.0.0.1:" + std::to_string(UnusedPort());
  Result r = RunArgs({"-m", address, "experiment", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr(address));
  EXPECT_THAT(r.err, HasSubstr("DET_MASTER"));

  // Waiting on an unreachable master fails at once too (no retrying when
  // the master was never reached).
  Result wait = RunArgs({"-m", address, "experiment", "wait", "1"});
  EXPECT_EQ(wait.code, 1);
  EXPECT_THAT(wait.err, HasSubstr("DET_MASTER"));
}

TEST(CliNoMaster, BadMasterAddress) {
  Result r = RunArgs({"-m", "host:notaport", "experiment", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("host:notaport"));
}

TEST(CliNoMaster, HelpAndUsage) {
  Result help = RunArgs({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("experiment"));
  EXPECT_THAT(help.out, HasSubstr("DET_MASTER"));

  Result none = RunArgs({});
  EXPECT_NE(none.code, 0);
  Result unknown = RunArgs({"experiment", "frobnicate"});
  EXPECT_NE(unknown.code, 0);
}

TEST_F(CliTest, MasterFromDetMasterEnvironment) {
  setenv("DET_MASTER", master_.address().c_str(), 1);
  Result r = RunArgs({"experiment", "list"});
  unsetenv("DET_MASTER");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("cifar-asha"));
}

TEST_F(CliTest, TokenIsSentAsBearerMetadata) {
  ASSERT_EQ(Run({"--token", "s3cret", "experiment", "list"}).code, 0);
  ASSERT_EQ(Run({"experiment", "describe", "1", "--token", "other"}).code, 0);
  setenv("DET_TOKEN", "from-env", 1);
  Result env = Run({"agent", "list"});
  unsetenv("DET_TOKEN");
  ASSERT_EQ(env.code, 0) << env.err;
  ASSERT_EQ(Run({"master", "info"}).code, 0);

  const auto& seen = master_.api().authorizations;
  ASSERT_EQ(seen.size(),
            5u);  // list; describe = get + list trials; agents; info
  EXPECT_EQ(seen[0], "Bearer s3cret");
  EXPECT_EQ(seen[1], "Bearer other");
  EXPECT_EQ(seen[2], "Bearer other");
  EXPECT_EQ(seen[3], "Bearer from-env");
  EXPECT_EQ(seen[4], "");
}

TEST_F(CliTest, WaitExitsZeroOnlyWhenCompleted) {
  ScriptExperiment5(v1::STATE_COMPLETED);
  Result done = Run({"experiment", "wait", "5"});
  EXPECT_EQ(done.code, 0) << done.err;
  EXPECT_THAT(done.out, HasSubstr("Experiment 5 ended COMPLETED"));
  EXPECT_THAT(done.out, HasSubstr("validation_accuracy  0.71"));
  // Without --progress, wait prints only the outcome.
  EXPECT_THAT(done.out, Not(HasSubstr("ACTIVE")));

  ScriptExperiment5(v1::STATE_ERROR);
  Result failed = Run({"experiment", "wait", "5"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_THAT(failed.out, HasSubstr("Experiment 5 ended ERROR"));

  ScriptExperiment5(v1::STATE_CANCELED);
  EXPECT_EQ(Run({"experiment", "wait", "5"}).code, 1);

  Result unknown = Run({"experiment", "wait", "99"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("experiment 99 not found"));
}

TEST_F(CliTest, FollowPrintsPlainLinesWhenNotATerminal) {
  ScriptExperiment5(v1::STATE_COMPLETED);
  const std::string config = dir_.Write("config.yaml", kConfig);
  Result r = Run({"experiment", "create", config, "-f"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("\r")));
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0], "Created experiment 5");
  // One line per change: the repeated state is not printed twice.
  EXPECT_EQ(lines[1],
            "Experiment 5 ACTIVE  0.0%  trials: 0 running, 0 completed, 0 "
            "errored");
  EXPECT_EQ(lines[2],
            "Experiment 5 ACTIVE  50.0%  trials: 1 running, 0 completed, 0 "
            "errored");
  EXPECT_EQ(lines[3],
            "Experiment 5 COMPLETED  100.0%  trials: 0 running, 2 completed, "
            "0 errored  best validation_accuracy 0.71");
  EXPECT_EQ(lines[4], "Experiment 5 ended COMPLETED");
  EXPECT_THAT(r.out, HasSubstr("Best trial: 7 (validation_accuracy 0.71)"));
  EXPECT_THAT(r.out, HasSubstr("  validation_loss      0.85"));
}

TEST_F(CliTest, FollowOnATerminalRewritesOneLine) {
  ScriptExperiment5(v1::STATE_COMPLETED);
  const std::string config = dir_.Write("config.yaml", kConfig);
  RunOptions options = FastOptions();
  options.out_is_terminal = true;
  Result r = Run({"experiment", "create", config, "--follow"}, options);
  ASSERT_EQ(r.code, 0) << r.err;
  const size_t start = r.out.find("Created experiment 5\n");
  const size_t end = r.out.find("Experiment 5 ended COMPLETED");
  ASSERT_NE(start, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  const std::string progress = r.out.substr(start + 21, end - start - 21);
  EXPECT_EQ(progress.front(), '\r');
  EXPECT_EQ(std::count(progress.begin(), progress.end(), '\r'), 3);
  // One newline, when the line is done.
  EXPECT_EQ(std::count(progress.begin(), progress.end(), '\n'), 1);
  EXPECT_EQ(progress.back(), '\n');
}

TEST_F(CliTest, FollowEndingInErrorExitsNonZero) {
  ScriptExperiment5(v1::STATE_ERROR);
  const std::string config = dir_.Write("config.yaml", kConfig);
  Result r = Run({"experiment", "create", config, "-f"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("Experiment 5 ended ERROR"));
  EXPECT_THAT(r.out, HasSubstr("No trial reported validation metrics"));
}

TEST_F(CliTest, FollowWatchesAgainWhenTheStreamBreaks) {
  ScriptExperiment5(v1::STATE_COMPLETED);
  master_.api().break_first_stream_after = 2;
  Result r = Run({"experiment", "wait", "5", "--progress"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(master_.api().watch_calls, 2);
  EXPECT_THAT(r.err, HasSubstr("master restarting"));
  EXPECT_THAT(r.err, HasSubstr("trying again"));
  // The state seen before the break is not printed again after it.
  std::vector<std::string> lines = Lines(r.out);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) {
                            return l.find("ACTIVE  0.0%") != std::string::npos;
                          }),
            1);
  EXPECT_THAT(r.out, HasSubstr("Experiment 5 ended COMPLETED"));
}

TEST_F(CliTest, PauseAndCancel) {
  Result paused = Run({"experiment", "pause", "2"});
  EXPECT_EQ(paused.code, 0) << paused.err;
  EXPECT_EQ(paused.out, "Paused experiment 2 (now PAUSED)\n");

  Result again = Run({"experiment", "pause", "2"});
  EXPECT_EQ(again.code, 1);
  EXPECT_THAT(again.err,
              HasSubstr("FAILED_PRECONDITION: experiment 2 is not active"));

  Result canceled = Run({"e", "cancel", "2"});
  EXPECT_EQ(canceled.code, 0) << canceled.err;
  EXPECT_EQ(canceled.out, "Canceled experiment 2 (now STOPPING_CANCELED)\n");

  // The fake does not implement kill: the master's UNIMPLEMENTED surfaces.
  Result killed = Run({"experiment", "kill", "2"});
  EXPECT_EQ(killed.code, 1);
  EXPECT_THAT(killed.err, HasSubstr("UNIMPLEMENTED"));
}

TEST_F(CliTest, TrialDescribe) {
  Result r = Run({"trial", "describe", "7"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Trial 7 of experiment 1"));
  EXPECT_THAT(r.out, HasSubstr("937 of 937"));
  EXPECT_THAT(r.out, HasSubstr("learning_rate:"));
  EXPECT_THAT(r.out, HasSubstr("model.layers:"));
  EXPECT_THAT(r.out, HasSubstr("Validations:"));
  EXPECT_THAT(r.out, HasSubstr("validation_accuracy"));

  Result json = Run({"t", "describe", "7", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  google::protobuf::Struct doc = ParseJsonObject(json.out);
  EXPECT_EQ(doc.fields().at("id").string_value(), "7");
  EXPECT_DOUBLE_EQ(doc.fields()
                       .at("hparams")
                       .struct_value()
                       .fields()
                       .at("learning_rate")
                       .number_value(),
                   0.01);
  const auto& validations = doc.fields().at("validations").list_value();
  ASSERT_EQ(validations.values_size(), 2);
  EXPECT_DOUBLE_EQ(validations.values(1)
                       .struct_value()
                       .fields()
                       .at("metrics")
                       .struct_value()
                       .fields()
                       .at("validation_accuracy")
                       .number_value(),
                   0.71);
}

TEST_F(CliTest, TrialLogs) {
  Result r = Run({"trial", "logs", "7"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "epoch 1 loss 2.1\n"
            "[worker] trial 7 started on slot 0\n"
            "epoch 2 loss 1.7\n"
            "warning: slow data\n");

  Result json = Run({"trial", "logs", "7", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(
      ParseJsonObject(json.out).fields().at("lines").list_value().values_size(),
      4);
}

TEST_F(CliTest, TrialLogsFollowResumesAfterTheLastLine) {
  master_.api().break_first_stream_after = 2;
  Result r = Run({"trial", "logs", "7", "-f"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "epoch 1 loss 2.1\n"
            "[worker] trial 7 started on slot 0\n"
            "epoch 2 loss 1.7\n"
            "warning: slow data\n");
  EXPECT_THAT(master_.api().log_after_ids, ::testing::ElementsAre(0, 2));
}

TEST_F(CliTest, AgentAndSlotLists) {
  Result agents = Run({"agent", "list"});
  ASSERT_EQ(agents.code, 0) << agents.err;
  std::vector<std::string> lines = Lines(agents.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[1], HasSubstr("worker-1"));
  EXPECT_THAT(lines[1], HasSubstr("yes"));
  EXPECT_THAT(lines[1], HasSubstr("cuda"));

  Result slots = Run({"slot", "list"});
  ASSERT_EQ(slots.code, 0) << slots.err;
  lines = Lines(slots.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[1], HasSubstr("NVIDIA H100"));
  EXPECT_THAT(lines[1], HasSubstr("7"));

  Result json = Run({"slot", "list", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  const google::protobuf::Struct doc = ParseJsonObject(json.out);
  const auto& list = doc.fields().at("slots").list_value();
  ASSERT_EQ(list.values_size(), 2);
  EXPECT_EQ(
      list.values(0).struct_value().fields().at("agent_id").string_value(),
      "worker-1");
  EXPECT_EQ(
      list.values(0).struct_value().fields().at("trial_id").string_value(),
      "7");

  Result agents_json = Run({"a", "list", "--json"});
  ASSERT_EQ(agents_json.code, 0);
  EXPECT_EQ(ParseJsonObject(agents_json.out)
                .fields()
                .at("agents")
                .list_value()
                .values_size(),
            1);
}

TEST_F(CliTest, MasterInfo) {
  Result r = Run({"master", "info"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("c-123"));
  EXPECT_THAT(r.out, HasSubstr("1 used of 2"));
  Result json = Run({"master", "info", "--json"});
  ASSERT_EQ(json.code, 0);
  EXPECT_EQ(ParseJsonObject(json.out).fields().at("cluster_id").string_value(),
            "c-123");
}

TEST_F(CliTest, MasterInfoSaysWhenTheStoreIsUnavailable) {
  {
    std::lock_guard<std::mutex> lock(master_.api().mu);
    master_.api().master_info.set_store_available(false);
    master_.api().master_info.set_store_unavailable_since_us(1700000000000000);
    master_.api().master_info.set_store_error("database or disk is full");
  }
  Result r = Run({"master", "info"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("UNAVAILABLE since"));
  EXPECT_THAT(r.out, HasSubstr("database or disk is full"));
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(CliTls, CaFileFromFlagOrEnvironment) {
  TempDir dir;
  const std::string key = dir.path() + "/key.pem";
  const std::string cert = dir.path() + "/cert.pem";
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    GTEST_SKIP() << "openssl cannot make a test certificate here";
  }
  testing::FakeMaster master(ReadText(key), ReadText(cert));
  master.api().master_info.set_cluster_id("tls-cluster");

  Result ok =
      RunArgs({"-m", master.address(), "--tls-ca", cert, "master", "info"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("tls-cluster"));

  setenv("DET_MASTER_CERT_FILE", cert.c_str(), 1);
  Result env = RunArgs({"-m", master.address(), "master", "info"});
  unsetenv("DET_MASTER_CERT_FILE");
  EXPECT_EQ(env.code, 0) << env.err;

  // Plain text to a TLS master fails, with the usual hint.
  Result plain = RunArgs({"-m", master.address(), "master", "info"});
  EXPECT_EQ(plain.code, 1);
  EXPECT_THAT(plain.err, HasSubstr(master.address()));
}

constexpr char kAshaConfig[] = R"(name: asha
hyperparameters:
  learning_rate: {type: log, minval: -4, maxval: -1, base: 10}
searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 937}
  max_trials: 16
)";

// DESIGN.md's worked example, computed locally: the master address points
// nowhere and is never used.
TEST(CliPreview, PlanWithoutAMaster) {
  TempDir dir;
  const std::string config = dir.Write("asha.yaml", kAshaConfig);
  const std::string nowhere = "127.0.0.1:" + std::to_string(UnusedPort());

  Result human = RunArgs({"-m", nowhere, "preview-search", config});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("adaptive_asha"));
  EXPECT_THAT(human.out, HasSubstr("58"));
  EXPECT_THAT(human.out, HasSubstr("234"));

  Result json = RunArgs({"-m", nowhere, "preview-search", config, "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  google::protobuf::Struct doc = ParseJsonObject(json.out);
  const auto& f = doc.fields();
  EXPECT_EQ(f.at("searcher").string_value(), "adaptive_asha");
  EXPECT_EQ(f.at("num_trials").number_value(), 16);
  EXPECT_EQ(f.at("max_length").string_value(), "937");
  EXPECT_EQ(f.at("metric").string_value(), "validation_accuracy");
  const auto& brackets = f.at("brackets").list_value();
  ASSERT_EQ(brackets.values_size(), 2);
  const auto& first = brackets.values(0).struct_value().fields();
  EXPECT_EQ(first.at("num_rungs").number_value(), 3);
  EXPECT_EQ(first.at("trials").number_value(), 12);
  EXPECT_EQ(first.at("max_concurrent_trials").number_value(), 8);
  const auto& rungs = first.at("rungs").list_value();
  ASSERT_EQ(rungs.values_size(), 3);
  EXPECT_EQ(rungs.values(0).struct_value().fields().at("length").string_value(),
            "58");
  EXPECT_EQ(rungs.values(2).struct_value().fields().at("length").string_value(),
            "937");
  EXPECT_EQ(
      brackets.values(1).struct_value().fields().at("trials").number_value(),
      4);
}

// configs/cifar10/pbt.yaml: the population and its rounds, in the table and
// in the JSON (PreviewSearchResponse's pbt fields).
TEST(CliPreview, PbtRoundsAndTrials) {
  const std::string config =
      std::string(DET_SOURCE_DIR) + "/configs/cifar10/pbt.yaml";
  Result human = RunArgs({"preview-search", config});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("Searcher: pbt"));
  EXPECT_THAT(human.out, HasSubstr("Trials: 32, at most 8 at a time"));
  EXPECT_THAT(human.out, HasSubstr("Population: 8 in 4 rounds of 1560 "
                                   "batches"));
  EXPECT_THAT(human.out, HasSubstr("2..4   8 each  6           2       "
                                   "3120..6240"));

  Result json = RunArgs({"preview-search", config, "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  google::protobuf::Struct doc = ParseJsonObject(json.out);
  const auto& f = doc.fields();
  EXPECT_EQ(f.at("searcher").string_value(), "pbt");
  EXPECT_EQ(f.at("num_trials").number_value(), 32);
  EXPECT_EQ(f.at("max_length").string_value(), "1560");
  EXPECT_EQ(f.at("population_size").number_value(), 8);
  EXPECT_EQ(f.at("num_rounds").number_value(), 4);
  EXPECT_EQ(f.at("replaced_per_round").number_value(), 2);
  const auto& rounds = f.at("rounds").list_value();
  ASSERT_EQ(rounds.values_size(), 2);
  const auto& second = rounds.values(1).struct_value().fields();
  EXPECT_EQ(second.at("round").number_value(), 2);
  EXPECT_EQ(second.at("continuing").number_value(), 6);
  EXPECT_EQ(second.at("copies").number_value(), 2);
  EXPECT_EQ(second.at("trained_length").string_value(), "3120");
}

TEST(CliPreview, OverridesAndErrors) {
  TempDir dir;
  const std::string config = dir.Write("asha.yaml", kAshaConfig);
  Result more = RunArgs({"preview-search", config, "--json", "--config",
                         "searcher.max_trials=64"});
  ASSERT_EQ(more.code, 0) << more.err;
  EXPECT_EQ(ParseJsonObject(more.out).fields().at("num_trials").number_value(),
            64);

  // The TPE sampler: when the estimator takes over, in both forms.
  Result tpe =
      RunArgs({"preview-search", config, "--config", "searcher.sampler=tpe"});
  ASSERT_EQ(tpe.code, 0) << tpe.err;
  EXPECT_THAT(tpe.out, HasSubstr("Sampler: tpe (univariate; n_startup_trials "
                                 "10, n_ei_candidates 24"));
  Result tpe_json = RunArgs(
      {"preview-search", config, "--json", "--config", "searcher.sampler=tpe"});
  ASSERT_EQ(tpe_json.code, 0) << tpe_json.err;
  google::protobuf::Struct tpe_doc = ParseJsonObject(tpe_json.out);
  const auto& tf = tpe_doc.fields();
  EXPECT_EQ(tf.at("sampler").string_value(), "tpe");
  EXPECT_EQ(tf.at("tpe_random_trials").string_value(), "16");

  const std::string bad =
      dir.Write("bad.yaml", "searcher:\n  name: nonsense\n");
  Result invalid = RunArgs({"preview-search", bad});
  EXPECT_EQ(invalid.code, 1);
  EXPECT_EQ(invalid.out, "");
  EXPECT_THAT(invalid.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(invalid.err, HasSubstr("bad.yaml"));
  EXPECT_THAT(invalid.err, HasSubstr("searcher.name"));

  // A legal config with a likely mistake: the plan, and the warning on
  // stderr with its place (kAshaConfig has no entrypoint: the built-in
  // trainer, which has no 'learnin_rate').
  const std::string typo = dir.Write(
      "typo.yaml",
      absl::StrReplaceAll(
          kAshaConfig,
          {{"hyperparameters:\n", "hyperparameters:\n  learnin_rate: 0.1\n"}}));
  Result warned = RunArgs({"preview-search", typo});
  EXPECT_EQ(warned.code, 0) << warned.err;
  EXPECT_THAT(warned.out, HasSubstr("adaptive_asha"));
  EXPECT_THAT(warned.err, HasSubstr("Warning: " + typo + ": line "));
  EXPECT_THAT(warned.err, HasSubstr("hyperparameters.learnin_rate"));
  EXPECT_THAT(warned.err, HasSubstr("did you mean 'learning_rate'?"));

  Result missing = RunArgs({"preview-search", dir.path() + "/none.yaml"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("none.yaml"));
}

TEST_F(CliTest, ContinueSendsTheIdAndOverrides) {
  Result r =
      Run({"experiment", "continue", "1", "--config",
           "searcher.max_length.batches=2000", "--config", "max_restarts=1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Continued experiment 1\n");
  auto& api = master_.api();
  ASSERT_EQ(api.continue_requests.size(), 1u);
  EXPECT_EQ(api.continue_requests[0].experiment_id(), 1);
  EXPECT_THAT(api.continue_requests[0].config_overrides(),
              ::testing::ElementsAre("searcher.max_length.batches=2000",
                                     "max_restarts=1"));
}

TEST_F(CliTest, ContinueErrorsAreClear) {
  Result bad = Run({"experiment", "continue", "3", "--config", "oops"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("KEY=VALUE"));
  EXPECT_TRUE(master_.api().continue_requests.empty()) << "nothing sent";
  Result unknown = Run({"experiment", "continue", "99"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));
  Result no_id = Run({"experiment", "continue"});
  EXPECT_NE(no_id.code, 0);
}

}  // namespace
}  // namespace det::cli
