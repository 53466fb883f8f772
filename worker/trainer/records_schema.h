// The columns of a JSON-records task: inferred from the training records,
// turned into numeric features, and saved with every checkpoint so that
// validation and resumed runs read the same columns. Torch-free.
//
// What each field becomes (fields sorted by name, the label left out):
//   number          one feature, standardised (training mean and std);
//   boolean         one feature, 0 or 1;
//   ISO date        one feature: days since 1970-01-01, standardised
//                   ("2024-03-01", "2024-03-01T12:30:00Z", "...+02:00");
//   other strings   one-hot: the max_categories most frequent training
//                   values, plus an "other" column for the rest and for
//                   values first seen in validation;
//   two dates       for every pair of date fields, their difference in days
//                   (later minus earlier, by training means), standardised:
//                   admission and discharge give the length of stay;
//   always null     nothing.
// A field that is missing (absent or null) in some training record also
// gets a 0/1 "missing" feature; a missing value is imputed with the
// training mean (0 after standardisation; the share of true for booleans;
// no one-hot bit for strings). A field holding two kinds of value (numbers
// and strings, say) is an error naming both lines.
//
// The label: a number for regression (standardised for training; metrics
// are in the label's own units), a string, integer or boolean for
// classification (classes are the distinct training values, sorted).
#ifndef DET_WORKER_TRAINER_RECORDS_SCHEMA_H_
#define DET_WORKER_TRAINER_RECORDS_SCHEMA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/records_options.h"
#include "worker/trainer/records_reader.h"

namespace det::records {

enum class ColumnKind { kNumber, kBoolean, kDate, kCategory, kEmpty };

// "number", "boolean", "date", "category", "empty".
const char* ColumnKindName(ColumnKind kind);

struct Column {
  std::string name;
  ColumnKind kind = ColumnKind::kEmpty;
  bool missing_indicator = false;  // some training record lacked it
  // kNumber, kDate: feature = (x - mean) / scale; kBoolean: mean is the
  // value imputed for a missing one.
  double mean = 0, scale = 1;
  std::vector<std::string> categories;  // kCategory, most frequent first
};

// end - start in days, for two date columns.
struct Duration {
  std::string start, end;
  double mean = 0, scale = 1;
  bool missing_indicator = false;
};

struct Schema {
  std::string label;
  PredictionTask task = PredictionTask::kRegression;
  double label_mean = 0, label_scale = 1;  // regression
  std::vector<std::string> classes;        // classification: JSON text of each
  std::vector<Column> columns;             // sorted by name
  std::vector<Duration> durations;

  // One name per feature, in feature order ("age", "sex=F", "sex (other)",
  // "bmi (missing)", "discharge - admission (days)").
  std::vector<std::string> FeatureNames() const;
  int64_t feature_count() const;
  // Model outputs: 1 for regression, the class count for classification.
  int64_t output_count() const;

  // Deterministic JSON text; FromJson(ToJson()) gives the same schema, with
  // every double bit for bit.
  std::string ToJson() const;
  static absl::StatusOr<Schema> FromJson(const std::string& text);
};

// Days since 1970-01-01 (UTC) of an ISO 8601 date or date-time:
// YYYY-MM-DD, optionally followed by 'T' or ' ' and HH:MM[:SS[.fff]] and
// an optional 'Z' or +HH:MM / -HH:MM. nullopt when `s` is not one.
std::optional<double> ParseIsoDate(const std::string& s);

// Infers a schema from the training records, fed in two passes (the second
// only when NeedsSecondPass: durations need each pair of dates to be known
// as dates first).
class SchemaInference {
 public:
  SchemaInference(const RecordsOptions& options);

  absl::Status Observe(const Record& record);
  bool NeedsSecondPass() const;
  absl::Status ObserveDurations(const Record& record);
  // InvalidArgument when there were no records, a field held two kinds of
  // value, the label is missing or of the wrong type somewhere, or a
  // classification label has fewer than two classes.
  absl::StatusOr<Schema> Finish();

 private:
  struct Stats {
    int64_t numbers = 0, booleans = 0, strings = 0, dates = 0;
    int64_t first_number_line = 0, first_boolean_line = 0,
            first_string_line = 0, first_non_date_line = 0;
    double mean = 0, m2 = 0;            // Welford over numbers
    double date_mean = 0, date_m2 = 0;  // over strings that are dates
    int64_t trues = 0;
    std::map<std::string, int64_t> counts;  // strings
  };
  struct PairStats {
    int64_t n = 0;
    double mean = 0, m2 = 0;
  };
  ColumnKind KindOf(const Stats& s) const;

  RecordsOptions options_;
  std::string file_;
  int64_t records_ = 0;
  std::map<std::string, Stats> stats_;
  std::vector<std::string> date_columns_;  // after the first pass
  std::map<std::pair<size_t, size_t>, PairStats> pairs_;
  double label_mean_ = 0, label_m2_ = 0;
  std::map<std::string, int64_t> classes_;
};

// Features and target of one record, as `schema` says: `features` gets
// feature_count() values; `target` the label (regression, in its own
// units) or the class index. InvalidArgument naming the record (file,
// line) and field when a value does not fit the schema (a string where the
// training records had numbers, a class the training records lack, a
// missing label).
absl::Status EncodeRecord(const Schema& schema, const Record& record,
                          float* features, float* target);

}  // namespace det::records

#endif  // DET_WORKER_TRAINER_RECORDS_SCHEMA_H_
