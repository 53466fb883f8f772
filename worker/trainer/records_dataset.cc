#include "worker/trainer/records_dataset.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace det::records {
namespace {

absl::Status Append(const Schema& schema, const Record& r, EncodedSet* set) {
  set->x.resize(set->x.size() + static_cast<size_t>(set->features));
  set->y.emplace_back();
  ++set->rows;
  return EncodeRecord(schema, r, set->x.data() + set->x.size() - set->features,
                      &set->y.back());
}

}  // namespace

absl::StatusOr<RecordsData> LoadRecords(const RecordsOptions& options,
                                        const Schema* saved) {
  // With a split, the training file is counted first: only the records
  // before the validation tail may shape the schema.
  int64_t train_rows = -1;  // -1: all of data.path
  if (options.validation_split > 0) {
    absl::StatusOr<int64_t> n = ForEachRecord(
        options.path, [](const Record&) { return absl::OkStatus(); });
    if (!n.ok()) return n.status();
    const int64_t validation =
        static_cast<int64_t>(std::llround(*n * options.validation_split));
    train_rows = *n - validation;
    if (*n > 0 && (validation == 0 || train_rows == 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.path, ": ", *n, " records with validation_split ",
          options.validation_split, " leave ", train_rows, " to train and ",
          validation, " to validate; both need at least one"));
    }
  }
  auto in_train = [&](int64_t index) {
    return train_rows < 0 || index < train_rows;
  };

  RecordsData data;
  if (saved != nullptr) {
    if (saved->label != options.label || saved->task != options.task) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the checkpoint's records schema predicts '", saved->label,
          "', this trial's data.label is '", options.label,
          "' (or the task differs); resume with the same data section"));
    }
    data.schema = *saved;
  } else {
    SchemaInference inference(options);
    int64_t index = 0;
    auto observe = [&](const Record& r) {
      return in_train(index++) ? inference.Observe(r) : absl::OkStatus();
    };
    if (absl::StatusOr<int64_t> n = ForEachRecord(options.path, observe);
        !n.ok()) {
      return n.status();
    }
    if (inference.NeedsSecondPass()) {
      index = 0;
      auto durations = [&](const Record& r) {
        return in_train(index++) ? inference.ObserveDurations(r)
                                 : absl::OkStatus();
      };
      if (absl::StatusOr<int64_t> n = ForEachRecord(options.path, durations);
          !n.ok()) {
        return n.status();
      }
    }
    absl::StatusOr<Schema> schema = inference.Finish();
    if (!schema.ok()) return schema.status();
    data.schema = *std::move(schema);
  }

  const int64_t features = data.schema.feature_count();
  data.train.features = data.validation.features = features;
  int64_t index = 0;
  auto encode = [&](const Record& r) {
    return Append(data.schema, r,
                  in_train(index++) ? &data.train : &data.validation);
  };
  if (absl::StatusOr<int64_t> n = ForEachRecord(options.path, encode); !n.ok())
    return n.status();
  if (!options.validation_path.empty()) {
    auto encode_validation = [&](const Record& r) {
      return Append(data.schema, r, &data.validation);
    };
    absl::StatusOr<int64_t> n =
        ForEachRecord(options.validation_path, encode_validation);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.validation_path,
          ": no records (the validation file is empty); a records file holds "
          "one JSON object per line"));
    }
  }
  if (data.train.rows == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.path, ": no records (the training file is empty)"));
  }
  if (features == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.path, ": the records have no field besides the label '",
        options.label, "' to learn from"));
  }
  return data;
}

}  // namespace det::records
