#include "common/records_options.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace det::records {
namespace {

absl::Status Bad(const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("data.", key, ": ", what));
}

const Value* Find(const ValueMap& data, const std::string& key) {
  auto it = data.find(key);
  return it == data.end() || it->second.is_null() ? nullptr : &it->second;
}

absl::Status ReadString(const ValueMap& data, const std::string& key,
                        bool required, std::string* out) {
  const Value* v = Find(data, key);
  if (v == nullptr) {
    if (!required) return absl::OkStatus();
    return Bad(key, "required for JSON records (data.format: jsonl)");
  }
  if (!v->is_string() || v->as_string().empty()) {
    return Bad(
        key, absl::StrCat("expected a non-empty string, found ", v->ToJson()));
  }
  *out = v->as_string();
  return absl::OkStatus();
}

absl::Status ReadInt(const ValueMap& data, const std::string& key, int64_t lo,
                     int64_t hi, int64_t* out) {
  const Value* v = Find(data, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_int() || v->as_int() < lo || v->as_int() > hi) {
    return Bad(key, absl::StrCat("expected an integer in [", lo, ", ", hi,
                                 "], found ", v->ToJson()));
  }
  *out = v->as_int();
  return absl::OkStatus();
}

}  // namespace

std::string ExpandHome(const std::string& path) {
  if (path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : "", path.substr(1));
}

absl::StatusOr<RecordsOptions> ParseRecordsOptions(const ValueMap& data) {
  RecordsOptions o;
  std::string task;
  for (absl::Status s :
       {ReadString(data, "path", true, &o.path),
        ReadString(data, "label", true, &o.label),
        ReadString(data, "task", true, &task),
        ReadString(data, "validation_path", false, &o.validation_path),
        ReadInt(data, "max_categories", 1, 1000, &o.max_categories),
        ReadInt(data, "report_period", 1, int64_t{1} << 40, &o.report_period),
        ReadInt(data, "validation_batch_size", 1, 1 << 20,
                &o.validation_batch_size)}) {
    if (!s.ok()) return s;
  }
  if (task == "regression") {
    o.task = PredictionTask::kRegression;
  } else if (task == "classification") {
    o.task = PredictionTask::kClassification;
  } else {
    return Bad("task", absl::StrCat("expected 'regression' or "
                                    "'classification', found '",
                                    task, "'"));
  }
  if (const Value* v = Find(data, "validation_split")) {
    if (!v->is_number() || !std::isfinite(v->as_number()) ||
        v->as_number() <= 0 || v->as_number() >= 1) {
      return Bad(
          "validation_split",
          absl::StrCat("expected a number in (0, 1), found ", v->ToJson()));
    }
    o.validation_split = v->as_number();
  }
  if (o.validation_path.empty() == (o.validation_split == 0)) {
    return Bad(
        o.validation_path.empty() ? "validation_path" : "validation_split",
        "give exactly one of validation_path (a second file) and "
        "validation_split (the last fraction of data.path)");
  }
  o.path = ExpandHome(o.path);
  if (!o.validation_path.empty())
    o.validation_path = ExpandHome(o.validation_path);
  return o;
}

}  // namespace det::records
