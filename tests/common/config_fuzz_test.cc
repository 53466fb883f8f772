// Bounded random-mutation fuzzing of the config parser, small enough for CI
// (a few thousand inputs, about a second): mutated configs must give either
// a config or well-formed errors, never a crash, hang or malformed report.
// fuzz/config_fuzzer.cc is the open-ended libFuzzer version.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "gtest/gtest.h"

namespace det {
namespace {

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds = {
      R"(searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 937}
  max_trials: 16
  <<: {divisor: 4}
hyperparameters:
  lr: &r {type: log, minval: -4, maxval: -1, base: 10, count: 3}
  other: *r
  group: {a: {type: int, minval: 1, maxval: 5}, b: [1, "two"]}
  c: {type: categorical, vals: [x, y]}
resources: {slots_per_trial: 2, priority: 7}
min_validation_period: {epochs: 1}
data: {train_limit: 100}
)",
      "searcher: {name: grid, metric: m, max_length: {records: 5}}\n"
      "hyperparameters: {x: {type: double, minval: 0, maxval: 1, count: 2}}\n",
  };
  std::string dir = std::string(DET_SOURCE_DIR) + "/configs/cifar10";
  if (std::filesystem::is_directory(dir)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      seeds.push_back(text.str());
    }
  }
  return seeds;
}

const std::vector<std::string> kTokens = {
    "[",        "]",        "{",
    "}",        ": ",       "- ",
    "&a ",      "*a",       "<<: ",
    "\n",       "  ",       "'",
    "\"",       "# ",       "!!str ",
    "~",        "---\n",    "? ",
    "|\n",      ">",        ",",
    "\t",       "-1",       "1e309",
    ".nan",     "0x1F",     "type: ",
    "count: 0", "minval: ", "null",
    "\xC3",     "\xFF",     std::string(1, '\0')};

std::string Mutate(std::string s, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? 0 : rng() % n; };
  int rounds = 1 + static_cast<int>(pick(8));
  for (int i = 0; i < rounds; ++i) {
    size_t pos = pick(s.size() + 1);
    switch (pick(6)) {
      case 0:  // flip a byte
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1 << pick(8));
        break;
      case 1:  // insert a random byte
        s.insert(pos, 1, static_cast<char>(rng()));
        break;
      case 2:  // insert a YAML token
        s.insert(pos, kTokens[pick(kTokens.size())]);
        break;
      case 3:  // delete a range
        s.erase(pos, pick(16));
        break;
      case 4: {  // duplicate a range
        std::string part = s.substr(pos, pick(64));
        s.insert(pick(s.size() + 1), part);
        break;
      }
      case 5: {  // swap two lines
        std::vector<std::string> lines = absl::StrSplit(s, '\n');
        if (lines.size() > 1) {
          std::swap(lines[pick(lines.size())], lines[pick(lines.size())]);
        }
        s = absl::StrJoin(lines, "\n");
        break;
      }
    }
  }
  return s;
}

TEST(ConfigFuzzTest, MutatedConfigsGiveConfigsOrWellFormedErrors) {
  std::vector<std::string> seeds = Seeds();
  ASSERT_GE(seeds.size(), 2u);
  std::mt19937_64 rng(12345);
  ParseLimits limits;
  limits.max_nodes = 5000;
  int ok = 0, rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string input = Mutate(seeds[i % seeds.size()], rng);
    std::vector<ConfigError> errors;
    auto cfg = ParseExperimentConfig(input, &errors, limits);
    if (cfg.ok()) {
      ++ok;
      EXPECT_TRUE(errors.empty());
      EXPECT_GT(cfg->searcher.max_length.value, 0);
    } else {
      ++rejected;
      ASSERT_FALSE(errors.empty()) << input;
      std::vector<std::string> lines;
      int64_t input_lines = std::count(input.begin(), input.end(), '\n') + 1;
      for (const ConfigError& e : errors) {
        EXPECT_FALSE(e.message.empty()) << input;
        EXPECT_GE(e.line, 0);
        EXPECT_LE(e.line, input_lines + 1) << e.ToString();
        EXPECT_GE(e.column, 0);
        lines.push_back(e.ToString());
      }
      EXPECT_EQ(cfg.status().message(), absl::StrJoin(lines, "\n"));
    }
    // Overrides on the same input: an answer, never a crash.
    auto overridden =
        ApplyConfigOverrides(input, {"searcher.max_trials=3"}, limits);
    if (overridden.ok()) {
      ParseExperimentConfig(*overridden, nullptr, limits).IgnoreError();
    }
  }
  // The mutations must exercise both outcomes to mean anything.
  EXPECT_GT(ok, 50);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace det
