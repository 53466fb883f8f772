// The pure parts of the experiment administration commands: id lists,
// describe --json for several experiments, what list hides, a fork's
// config, max-slots values.
#include "cli/experiment_admin_cmd.h"

#include <sstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseIdListTest, OneOrSeveralInOrderEachOnce) {
  auto ids = ParseIdList("3");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(3));
  ids = ParseIdList("2, 1,2,10");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(2, 1, 10));
}

TEST(ParseIdListTest, BadPartsAreNamed) {
  for (const char* text : {"", "1,,2", "1,x", "0", "-1", "1,2,"}) {
    auto ids = ParseIdList(text);
    EXPECT_FALSE(ids.ok()) << text;
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(ParseIdList("1,x").status().message(), HasSubstr("\"x\""));
}

TEST(DescribeJsonTest, OneIsAnObjectSeveralAList) {
  EXPECT_EQ(DescribeJson({"{\"id\":\"1\"}"}), "{\"id\":\"1\"}");
  EXPECT_EQ(DescribeJson({"{\"id\":\"1\"}", "{\"id\":\"2\"}"}),
            "[{\"id\":\"1\"},{\"id\":\"2\"}]");
}

TEST(PrintDescriptionTest, SaysArchivedAndDeleting) {
  v1::Experiment e;
  e.set_id(7);
  e.set_name("cifar");
  e.set_state(v1::STATE_COMPLETED);
  std::ostringstream plain;
  PrintDescription(plain, e, {});
  EXPECT_THAT(plain.str(), HasSubstr("Experiment 7: cifar"));
  EXPECT_THAT(plain.str(), Not(HasSubstr("Deleting")));
  EXPECT_THAT(plain.str(), Not(HasSubstr("Archived")));
  e.set_deleting(true);
  e.set_archived(true);
  std::ostringstream going;
  PrintDescription(going, e, {});
  EXPECT_THAT(going.str(), HasSubstr("Deleting"));
  EXPECT_THAT(going.str(), HasSubstr("checkpoints' files go first"));
  EXPECT_THAT(going.str(), HasSubstr("Archived"));
}

TEST(VisibleExperimentsTest, ArchivedOnlyWithAll) {
  v1::ListExperimentsResponse list;
  list.add_experiments()->set_id(1);
  auto* archived = list.add_experiments();
  archived->set_id(2);
  archived->set_archived(true);
  list.add_experiments()->set_id(3);
  auto shown = VisibleExperiments(list, /*all=*/false);
  ASSERT_EQ(shown.experiments_size(), 2);
  EXPECT_EQ(shown.experiments(0).id(), 1);
  EXPECT_EQ(shown.experiments(1).id(), 3);
  EXPECT_EQ(VisibleExperiments(list, /*all=*/true).experiments_size(), 3);
}

constexpr char kBase[] = R"(name: parent
searcher:
  name: random
  metric: validation_accuracy
  max_trials: 8
  max_length: {batches: 100}
)";

TEST(ForkConfigYamlTest, OverridesApplyInOrder) {
  auto same = ForkConfigYaml(kBase, {});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, kBase);
  auto yaml =
      ForkConfigYaml(kBase, {"searcher.max_trials=2", "name=child",
                             "name=grandchild", "resources.priority=7"});
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  auto config = ParseExperimentConfig(*yaml);
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << *yaml;
  EXPECT_EQ(config->searcher.max_trials, 2);
  EXPECT_EQ(config->name, "grandchild");
  EXPECT_EQ(config->resources.priority, 7);
  EXPECT_EQ(config->searcher.metric, "validation_accuracy");
}

TEST(ForkConfigYamlTest, AFileNameOrABadPathIsRefusedByName) {
  auto file = ForkConfigYaml(kBase, {"other.yaml"});
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("--config-file"));
  auto path = ForkConfigYaml(kBase, {"name.first=x"});
  ASSERT_FALSE(path.ok());
  EXPECT_THAT(path.status().message(), HasSubstr("name"));
}

TEST(ParseMaxSlotsTest, PositiveOrNone) {
  EXPECT_EQ(*ParseMaxSlots("4"), 4);
  EXPECT_EQ(*ParseMaxSlots("none"), 0);
  EXPECT_EQ(*ParseMaxSlots("None"), 0);
  for (const char* bad : {"0", "-2", "x", ""}) {
    auto v = ParseMaxSlots(bad);
    EXPECT_FALSE(v.ok()) << bad;
    EXPECT_THAT(v.status().message(), HasSubstr("max-slots"));
  }
}

}  // namespace
}  // namespace det::cli
