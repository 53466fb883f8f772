// The replay of bench/search/replay.cc: det's search methods
// (searcher::NewSearchMethod) run in virtual time on a table of recorded
// trainings (bench/search/make_table.py). Pure: no clock, no processes.
#ifndef DET_BENCH_SEARCH_REPLAY_SIM_H_
#define DET_BENCH_SEARCH_REPLAY_SIM_H_

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/value.h"

namespace det::bench {

// One configuration's recorded run: per validation point (batches), the
// accuracy, the wall time from process start, and that validation's time.
struct RecordedRun {
  std::map<int64_t, double> accuracy;
  std::map<int64_t, double> wall_s;
  std::map<int64_t, double> val_s;
};

struct Table {
  std::vector<std::string> names;  // hyperparameter columns
  std::map<std::string, RecordedRun>
      runs;  // key: canonical values, names' order
};

// A value as the table's key spells it: numbers by %.6g (so 16, 16.0 and
// "16" agree), strings as they are.
std::string Canon(const std::string& text);
std::string Canon(const Value& v);

// The table from CSV text (make_table.py's columns: config, the
// hyperparameters, batches, accuracy, loss, wall_s, val_s, ...); `path`
// names it in errors.
absl::StatusOr<Table> ParseTable(std::istream& in, const std::string& path);
absl::StatusOr<Table> ReadTable(const std::string& path);

// One search replayed: the best validation accuracy so far at each
// improvement ([time, best]), trials created, validations made.
struct SeedResult {
  std::vector<std::pair<double, double>> curve;
  int64_t trials = 0, validations = 0;
  int64_t distinct = 0;  // different configurations among the trials
  double end_s = -1;     // < 0: ran to the budget
};

// Replays the search `config` describes on `table` with `workers` slots
// for at most `budget_s` virtual seconds. Every trial the searcher creates
// waits for a slot (first come, first served), then reaches each of its
// validation points (the searcher's, every min_validation_period below its
// length, its length) at the table's wall time for that point less the
// validations it does not make, and reports the table's accuracy there;
// Close stops it at once. Errors: a sampled point or a validation point
// that the table lacks.
absl::StatusOr<SeedResult> ReplaySearch(const Table& table,
                                        const ExperimentConfig& config,
                                        int workers, double budget_s);

}  // namespace det::bench

#endif  // DET_BENCH_SEARCH_REPLAY_SIM_H_
