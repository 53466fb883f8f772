// The experiment administration commands (issue 15) through the det CLI
// against a real master and worker on loopback, with det-fake-trial:
// logs of every trial, describe of several, set/label/config, archive and
// list --all, fork (the parent's context, with overrides), and trial kill
// with priorities that a restarted master still applies.
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ExperimentAdminTest : public ClusterTest {
 protected:
  // `det experiment describe ID --json` as a message (its "trials" member
  // is ignored).
  v1::Experiment Describe(int64_t id) {
    CliResult r =
        cluster_.Cli({"experiment", "describe", absl::StrCat(id), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    v1::Experiment x;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    EXPECT_TRUE(
        google::protobuf::util::JsonStringToMessage(r.out, &x, options).ok())
        << r.out;
    return x;
  }
  v1::Trial TrialOf(int64_t experiment_id, size_t index) {
    std::vector<v1::Trial> trials = cluster_.Trials(experiment_id);
    return index < trials.size() ? trials[index] : v1::Trial();
  }
};

// A context directory whose file each trial prints before training, so
// that the logs show which context a trial ran in.
std::string MakeContext(const std::string& dir, const std::string& marker) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/marker.txt") << marker << "\n";
  return dir;
}

std::string Config(const std::string& body) {
  return absl::StrCat("entrypoint: cat marker.txt && exec ",
                      Cluster::Bin("det-fake-trial"), "\nmax_restarts: 0\n",
                      body);
}

TEST_F(ExperimentAdminTest, LogsDescribeSetLabelConfigArchiveFork) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 2);
  std::string context =
      MakeContext(cluster_.dir() + "/context", "context-marker-42");
  int64_t id = cluster_.CreateExperiment(Config(R"(
name: parent
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 2}
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
)"),
                                         {context});
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_EQ(x->state(), v1::STATE_COMPLETED);
  std::vector<v1::Trial> trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 2u);

  // Every trial's lines, each prefixed with its trial.
  CliResult logs = cluster_.Cli({"experiment", "logs", absl::StrCat(id)});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  for (const v1::Trial& t : trials) {
    EXPECT_THAT(logs.out, HasSubstr(absl::StrCat("[Trial ", t.id(),
                                                 "] context-marker-42")));
  }
  // Following an ended experiment prints the same and returns.
  CliResult followed =
      cluster_.Cli({"experiment", "logs", "-f", absl::StrCat(id)});
  ASSERT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_EQ(followed.out, logs.out);
  CliResult json_logs =
      cluster_.Cli({"experiment", "logs", absl::StrCat(id), "--json"});
  ASSERT_EQ(json_logs.exit_code, 0) << json_logs.err;
  EXPECT_THAT(json_logs.out, HasSubstr("\"lines\""));
  EXPECT_NE(cluster_.Cli({"experiment", "logs", "999"}).exit_code, 0);

  // set / label / config.
  const std::string sid = absl::StrCat(id);
  EXPECT_EQ(
      cluster_.Cli({"experiment", "set", "name", sid, "renamed"}).exit_code, 0);
  EXPECT_EQ(
      cluster_
          .Cli({"experiment", "set", "description", sid, "what it was about"})
          .exit_code,
      0);
  EXPECT_EQ(cluster_.Cli({"experiment", "label", "add", sid, "l1"}).exit_code,
            0);
  EXPECT_EQ(cluster_.Cli({"experiment", "label", "add", sid, "l2"}).exit_code,
            0);
  EXPECT_EQ(cluster_.Cli({"experiment", "label", "add", sid, "l1"}).exit_code,
            0);
  EXPECT_EQ(
      cluster_.Cli({"experiment", "label", "remove", sid, "l2"}).exit_code, 0);
  EXPECT_EQ(
      cluster_.Cli({"experiment", "label", "remove", sid, "absent"}).exit_code,
      0);
  v1::Experiment described = Describe(id);
  EXPECT_EQ(described.name(), "renamed");
  EXPECT_EQ(described.description(), "what it was about");
  EXPECT_THAT(described.labels(), ::testing::ElementsAre("l1"));
  // An ended experiment's priority no longer changes.
  CliResult late = cluster_.Cli({"experiment", "set", "priority", sid, "5"});
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_THAT(late.err, HasSubstr("FAILED_PRECONDITION"));
  CliResult bad_name = cluster_.Cli({"experiment", "set", "name", sid, " "});
  EXPECT_EQ(bad_name.exit_code, 1);
  EXPECT_THAT(bad_name.err, HasSubstr("INVALID_ARGUMENT"));
  CliResult config = cluster_.Cli({"experiment", "config", sid});
  ASSERT_EQ(config.exit_code, 0) << config.err;
  EXPECT_THAT(config.out, HasSubstr("name: renamed"));
  EXPECT_THAT(config.out, HasSubstr("l1"));

  // fork: the parent's config and context, with overrides.
  CliResult fork =
      cluster_.Cli({"experiment", "fork", sid, "--config",
                    "searcher.max_length.batches=5", "--config", "name=child"});
  ASSERT_EQ(fork.exit_code, 0) << fork.err;
  ASSERT_THAT(fork.out, HasSubstr("Created experiment "));
  int64_t child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(fork.out.substr(19, fork.out.find(' ', 19) - 19),
                               &child))
      << fork.out;
  auto ended = cluster_.WaitTerminal(child, absl::Minutes(2));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->state(), v1::STATE_COMPLETED);
  EXPECT_EQ(ended->name(), "child");
  EXPECT_EQ(ended->parent_id(), id);
  std::vector<v1::Trial> child_trials = cluster_.Trials(child);
  ASSERT_EQ(child_trials.size(), 2u);
  for (const v1::Trial& t : child_trials) {
    EXPECT_EQ(t.target_batches(), 5);
  }
  CliResult child_logs =
      cluster_.Cli({"experiment", "logs", absl::StrCat(child)});
  EXPECT_THAT(child_logs.out, HasSubstr("context-marker-42"));
  // From another file: --config-file.
  std::string file = cluster_.dir() + "/fork.yaml";
  std::ofstream(file) << Config(
      "name: from-file\nsearcher: {name: single, metric: validation_accuracy, "
      "max_length: {batches: 3}}\n");
  CliResult from_file = cluster_.Cli(
      {"experiment", "fork", sid, "--config-file", file, "--paused"});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  CliResult bad_override =
      cluster_.Cli({"experiment", "fork", sid, "--config", "name.x=1"});
  EXPECT_EQ(bad_override.exit_code, 1);

  // describe of several: a JSON list, in the order asked.
  CliResult many = cluster_.Cli(
      {"experiment", "describe", absl::StrCat(child, ",", id), "--json"});
  ASSERT_EQ(many.exit_code, 0) << many.err;
  ASSERT_EQ(many.out.front(), '[') << many.out;
  EXPECT_LT(many.out.find(absl::StrCat("\"id\": \"", child, "\"")),
            many.out.find(absl::StrCat("\"id\": \"", id, "\"")));
  CliResult many_text =
      cluster_.Cli({"experiment", "describe", absl::StrCat(id, ",", child)});
  ASSERT_EQ(many_text.exit_code, 0) << many_text.err;
  EXPECT_THAT(many_text.out,
              HasSubstr(absl::StrCat("Experiment ", id, ": renamed")));
  EXPECT_THAT(many_text.out, HasSubstr(absl::StrCat("Experiment ", child)));
  EXPECT_NE(cluster_.Cli({"experiment", "describe", "1,999"}).exit_code, 0);

  // archive: ended only; list hides it, list --all shows it.
  int64_t paused = cluster_.CreateExperiment(
      Config("searcher: {name: single, metric: validation_accuracy, "
             "max_length: {batches: 3}}\n"),
      {"--paused"});
  ASSERT_GT(paused, 0);
  CliResult live =
      cluster_.Cli({"experiment", "archive", absl::StrCat(paused)});
  EXPECT_EQ(live.exit_code, 1);
  EXPECT_THAT(live.err, HasSubstr("FAILED_PRECONDITION"));
  ASSERT_EQ(
      cluster_.Cli({"experiment", "archive", absl::StrCat(child)}).exit_code,
      0);
  EXPECT_EQ(
      cluster_.Cli({"experiment", "archive", absl::StrCat(child)}).exit_code,
      1);
  CliResult list = cluster_.Cli({"experiment", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("renamed"));
  EXPECT_THAT(list.out, Not(HasSubstr("child")));
  CliResult list_json = cluster_.Cli({"experiment", "list", "--json"});
  EXPECT_THAT(list_json.out, Not(HasSubstr("\"child\"")));
  CliResult all = cluster_.Cli({"experiment", "list", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("child"));
  EXPECT_THAT(all.out, HasSubstr("ARCHIVED"));
  ASSERT_EQ(
      cluster_.Cli({"experiment", "unarchive", absl::StrCat(child)}).exit_code,
      0);
  EXPECT_THAT(cluster_.Cli({"experiment", "list"}).out, HasSubstr("child"));

  // An ended trial cannot be killed.
  CliResult kill_ended =
      cluster_.Cli({"trial", "kill", absl::StrCat(trials[0].id())});
  EXPECT_EQ(kill_ended.exit_code, 1);
  EXPECT_THAT(kill_ended.err, HasSubstr("FAILED_PRECONDITION"));
}

// One slot. A runs two long trials; B and C wait behind A's first. B's
// priority is raised above C's, the master restarts, then A's first trial
// is killed: B runs before C (the new priority survived the restart), A's
// second trial still runs (the experiment goes on), and
// `det experiment logs -f A` follows both of A's trials until A ends.
TEST_F(ExperimentAdminTest, TrialKillAndPriorityAcrossARestart) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  std::string context = MakeContext(cluster_.dir() + "/context", "hello");
  int64_t a = cluster_.CreateExperiment(Config(R"(
name: long
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 2}
  sleep_ms: 50
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 100000}
)"),
                                        {context});
  ASSERT_GT(a, 0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] { return TrialOf(a, 0).state() == v1::STATE_ACTIVE; },
      absl::Seconds(60)));
  const std::string short_search =
      "searcher: {name: single, metric: validation_accuracy, max_length: "
      "{batches: 5}}\n";
  int64_t c = cluster_.CreateExperiment(
      Config(
          absl::StrCat("name: c\nresources: {priority: 40}\n", short_search)),
      {context});
  int64_t b = cluster_.CreateExperiment(
      Config(
          absl::StrCat("name: b\nresources: {priority: 50}\n", short_search)),
      {context});
  ASSERT_GT(b, 0);
  ASSERT_GT(c, 0);
  ASSERT_EQ(
      cluster_.Cli({"experiment", "set", "priority", absl::StrCat(b), "10"})
          .exit_code,
      0);
  ASSERT_EQ(
      cluster_.Cli({"experiment", "set", "max-slots", absl::StrCat(c), "1"})
          .exit_code,
      0);
  CliResult bad =
      cluster_.Cli({"experiment", "set", "priority", absl::StrCat(b), "100"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("resources.priority"));

  cluster_.StopMaster();
  cluster_.StartMaster();
  EXPECT_EQ(Describe(b).priority(), 10);
  EXPECT_EQ(Describe(c).max_slots(), 1);
  EXPECT_THAT(cluster_.Cli({"experiment", "config", absl::StrCat(b)}).out,
              HasSubstr("priority: 10"));
  ASSERT_EQ(TrialOf(b, 0).state(), v1::STATE_QUEUED);
  ASSERT_EQ(TrialOf(c, 0).state(), v1::STATE_QUEUED);

  // Follow A's logs from now until A ends.
  std::string follow_log = cluster_.dir() + "/follow.log";
  Process follow(
      {Cluster::Bin("det"), "experiment", "logs", "-f", absl::StrCat(a)},
      {{"DET_MASTER", cluster_.master_address()}}, follow_log);

  const int64_t first = TrialOf(a, 0).id();
  CliResult kill = cluster_.Cli({"trial", "kill", absl::StrCat(first)});
  ASSERT_EQ(kill.exit_code, 0) << kill.err;
  ASSERT_TRUE(cluster_.WaitTerminal(b, absl::Minutes(2)).ok());
  ASSERT_TRUE(cluster_.WaitTerminal(c, absl::Minutes(2)).ok());
  v1::Trial killed = TrialOf(a, 0);
  EXPECT_EQ(killed.state(), v1::STATE_CANCELED);
  EXPECT_EQ(killed.exit_reason(), v1::EXIT_REASON_KILLED);
  EXPECT_EQ(killed.restarts(), 0);
  EXPECT_LT(TrialOf(b, 0).start_time_us(), TrialOf(c, 0).start_time_us());
  EXPECT_EQ(TrialOf(b, 0).state(), v1::STATE_COMPLETED);

  // A goes on: its second trial runs; killed too, A ends.
  ASSERT_TRUE(Cluster::WaitFor(
      [&] { return TrialOf(a, 1).state() == v1::STATE_ACTIVE; },
      absl::Seconds(60)));
  const int64_t second = TrialOf(a, 1).id();
  ASSERT_EQ(cluster_.Cli({"trial", "kill", absl::StrCat(second)}).exit_code, 0);
  auto a_end = cluster_.WaitTerminal(a, absl::Minutes(2));
  ASSERT_TRUE(a_end.ok()) << a_end.status();
  EXPECT_EQ(a_end->state(), v1::STATE_CANCELED);
  EXPECT_EQ(a_end->trials_canceled(), 2);

  ASSERT_TRUE(
      Cluster::WaitFor([&] { return !follow.Running(); }, absl::Seconds(60)));
  int status = follow.Stop(SIGTERM, absl::Seconds(1));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream in(follow_log);
  std::string followed((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
  EXPECT_THAT(followed, HasSubstr(absl::StrCat("[Trial ", first, "] hello")));
  EXPECT_THAT(followed, HasSubstr(absl::StrCat("[Trial ", second, "] hello")));
}

}  // namespace
}  // namespace det::testing
