// A JSON-records task's data, read whole before training starts: the schema
// (inferred from the training records, or the one a checkpoint saved) and
// the encoded training and validation sets. Any bad line in either file is
// an error here, so nothing is ever trained on half-read data. Torch-free.
//
// Validation records come from data.validation_path, or are the last
// validation_split of data.path (in file order; the schema is inferred from
// the records before them only).
#ifndef DET_WORKER_TRAINER_RECORDS_DATASET_H_
#define DET_WORKER_TRAINER_RECORDS_DATASET_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/records_options.h"
#include "worker/trainer/records_schema.h"

namespace det::records {

// Row-major features [rows, features] and one target per row (the label in
// its own units, or the class index).
struct EncodedSet {
  int64_t rows = 0;
  int64_t features = 0;
  std::vector<float> x;
  std::vector<float> y;
};

struct RecordsData {
  Schema schema;
  EncodedSet train;
  EncodedSet validation;
};

// Reads and encodes both sets. With `schema` (a resumed run's, from its
// checkpoint) the columns are not inferred again; its label and task must
// match `options`. InvalidArgument naming file and line for bad records,
// and when either set ends up empty.
absl::StatusOr<RecordsData> LoadRecords(const RecordsOptions& options,
                                        const Schema* schema = nullptr);

}  // namespace det::records

#endif  // DET_WORKER_TRAINER_RECORDS_DATASET_H_
