// det-bench-replay: det's own search methods (searcher::NewSearchMethod, the
// classes the master runs) replayed in virtual time on a recorded table of
// real CIFAR-10 trainings (bench/search/make_table.py).
//
//   det-bench-replay --table bench/search/table/cifar10.csv
//       --config replay-asha.yaml --workers 4 --budget_s 300 --seeds 50
//
// The config's hyperparameters must range over the table's values (each
// sampled point is looked up in the table). Every trial the searcher
// creates waits for one of --workers slots (first come, first served, as
// the master's queue), then "trains": it reaches each of its validation
// points (the searcher's, plus every min_validation_period, plus its
// length: the master's ValidationBatches) at the table's time for that
// point (the recorded run's wall time from process start, less the
// validations this trial would not have made) and reports the table's
// validation accuracy there. Close stops a trial at once; a trial that
// reaches its length is closed. No time passes for the searcher itself or
// the master.
//
// Prints one JSON object: per experiment seed, the best validation accuracy
// so far against virtual time ([[t, best], ...], each improvement), the
// trials created, the validations made and when the search ended.
#include <iostream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/search/replay_sim.h"
#include "common/config.h"
#include "common/value.h"

ABSL_FLAG(std::string, table, "", "the replay table (CSV, make_table.py)");
ABSL_FLAG(std::string, config, "", "experiment config (YAML) to replay");
ABSL_FLAG(int, workers, 4, "slots: trials that train at the same time");
ABSL_FLAG(double, budget_s, 300, "virtual seconds the search may run");
ABSL_FLAG(int, seeds, 50, "experiment seeds to replay (seed_base, +1, ...)");
ABSL_FLAG(int, seed_base, 1, "the first reproducibility.experiment_seed");
ABSL_FLAG(std::string, label, "", "method name for the JSON output");

namespace det::bench {
namespace {

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string table_path = absl::GetFlag(FLAGS_table);
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (table_path.empty() || config_path.empty()) {
    std::cerr << "det-bench-replay: --table and --config are required\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_workers) < 1 || absl::GetFlag(FLAGS_seeds) < 1) {
    std::cerr << "det-bench-replay: --workers and --seeds must be >= 1\n";
    return 2;
  }
  absl::StatusOr<Table> table = ReadTable(table_path);
  if (!table.ok()) {
    std::cerr << "det-bench-replay: " << table.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<std::string> yaml = ReadExperimentConfigFile(config_path);
  if (!yaml.ok()) {
    std::cerr << "det-bench-replay: " << yaml.status().message() << "\n";
    return 1;
  }
  std::ostringstream out;
  out << "{\"label\":" << JsonQuote(absl::GetFlag(FLAGS_label))
      << ",\"workers\":" << absl::GetFlag(FLAGS_workers)
      << ",\"budget_s\":" << absl::GetFlag(FLAGS_budget_s)
      << ",\"configs_in_table\":" << table->runs.size() << ",\"seeds\":[";
  for (int i = 0; i < absl::GetFlag(FLAGS_seeds); ++i) {
    const int seed = absl::GetFlag(FLAGS_seed_base) + i;
    absl::StatusOr<std::string> seeded = ApplyConfigOverrides(
        *yaml, {absl::StrCat("reproducibility.experiment_seed=", seed)});
    if (!seeded.ok()) {
      std::cerr << "det-bench-replay: " << seeded.status().message() << "\n";
      return 1;
    }
    absl::StatusOr<ExperimentConfig> config = ParseExperimentConfig(*seeded);
    if (!config.ok()) {
      std::cerr << "det-bench-replay: " << config_path << ": "
                << config.status().message() << "\n";
      return 1;
    }
    absl::StatusOr<SeedResult> r =
        ReplaySearch(*table, *config, absl::GetFlag(FLAGS_workers),
                     absl::GetFlag(FLAGS_budget_s));
    if (!r.ok()) {
      std::cerr << "det-bench-replay: seed " << seed << ": "
                << r.status().message() << "\n";
      return 1;
    }
    if (i > 0) out << ",";
    out << "{\"seed\":" << seed << ",\"trials\":" << r->trials
        << ",\"distinct\":" << r->distinct
        << ",\"validations\":" << r->validations << ",\"end_s\":";
    if (r->end_s < 0) {
      out << "null";
    } else {
      out << absl::StrFormat("%.3f", r->end_s);
    }
    out << ",\"curve\":[";
    for (size_t k = 0; k < r->curve.size(); ++k) {
      out << (k ? "," : "")
          << absl::StrFormat("[%.3f,%.5f]", r->curve[k].first,
                             r->curve[k].second);
    }
    out << "]}";
  }
  out << "]}\n";
  std::cout << out.str();
  return 0;
}

}  // namespace
}  // namespace det::bench

int main(int argc, char** argv) { return det::bench::Main(argc, argv); }
