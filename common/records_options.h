// What the "data" section of a config says about a JSON-records task
// (data.format: jsonl): the files, the label and the kind of prediction.
// Here in common, free of libtorch, so the config check refuses a section
// det-trial would refuse when the experiment is created, with the same
// message.
//
//   data:
//     format: jsonl
//     path: ~/.cache/det/records/diabetes/train.jsonl   # one object per line
//     label: progression               # the field to predict
//     task: regression                 # or classification
//     validation_path: .../validation.jsonl   # or validation_split: 0.2
//     max_categories: 20               # one-hot columns per string field
//
// Unknown keys are ignored: the section is shared with custom entrypoints.
#ifndef DET_COMMON_RECORDS_OPTIONS_H_
#define DET_COMMON_RECORDS_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/value.h"

namespace det::records {

enum class PredictionTask { kRegression, kClassification };

struct RecordsOptions {
  std::string path;   // training records; a leading ~/ is $HOME
  std::string label;  // field to predict
  PredictionTask task = PredictionTask::kRegression;
  std::string validation_path;  // empty: validation_split of `path`
  // > 0: the last fraction of `path`'s records validate (in file order).
  double validation_split = 0;
  // Distinct strings of a field kept as one-hot columns (the most frequent
  // in the training records); the rest share one "other" column.
  int64_t max_categories = 20;
  int64_t report_period = 50;  // training metrics every N batches
  int64_t validation_batch_size = 1024;
};

// Reads the data section. InvalidArgument naming the key ("data.label: ...")
// when a required key is missing or a value is of the wrong type or range.
absl::StatusOr<RecordsOptions> ParseRecordsOptions(const ValueMap& data);

// `path` with a leading "~/" replaced by $HOME.
std::string ExpandHome(const std::string& path);

}  // namespace det::records

#endif  // DET_COMMON_RECORDS_OPTIONS_H_
