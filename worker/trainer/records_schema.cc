#include "worker/trainer/records_schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace det::records {
namespace {

// Pairs of date fields give durations only up to this many date fields
// (120 pairs), to keep the feature count sane.
constexpr size_t kMaxDurationDates = 16;
constexpr size_t kMaxColumns = 10000;
constexpr size_t kMaxClasses = 10000;

enum class Kind { kNull, kNumber, kBoolean, kString };

Kind KindOfValue(const Value& v) {
  if (v.is_number()) return Kind::kNumber;
  if (v.is_bool()) return Kind::kBoolean;
  if (v.is_string()) return Kind::kString;
  return Kind::kNull;
}

const char* KindText(Kind k) {
  switch (k) {
    case Kind::kNumber:
      return "a number";
    case Kind::kBoolean:
      return "a boolean";
    case Kind::kString:
      return "a string";
    case Kind::kNull:
      break;
  }
  return "null";
}

// Where a record is, for messages: "FILE:LINE (byte offset N)".
std::string At(const Record& r) {
  return absl::StrCat(r.Where(), " (line at byte offset ", r.offset, ")");
}

void Welford(double x, int64_t n, double* mean, double* m2) {
  const double delta = x - *mean;
  *mean += delta / static_cast<double>(n);
  *m2 += delta * (x - *mean);
}

double Scale(double m2, int64_t n) {
  if (n == 0) return 1;
  const double sd = std::sqrt(m2 / static_cast<double>(n));
  return sd > 1e-12 ? sd : 1;
}

bool Digits(const std::string& s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// The JSON text of a classification label, or "" when it cannot be one.
std::string ClassKey(const Value& v) {
  if (v.is_double() && std::isfinite(v.as_number()) &&
      v.as_number() == std::floor(v.as_number()) &&
      std::fabs(v.as_number()) < 9e15) {
    return Value(static_cast<int64_t>(v.as_number())).ToJson();
  }
  if (v.is_int() || v.is_string() || v.is_bool()) return v.ToJson();
  return "";
}

absl::Status LabelError(const Record& r, const Schema& s, const Value* v) {
  if (v == nullptr || v->is_null()) {
    return absl::InvalidArgumentError(
        absl::StrCat(At(r), ": the record has no label field '", s.label,
                     "' (data.label); every record needs one"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      At(r), ": label '", s.label, "' is ", KindText(KindOfValue(*v)), " (",
      v->ToJson(), "); ",
      s.task == PredictionTask::kRegression
          ? "regression needs a number"
          : "classification needs a string, an integer or a boolean"));
}

}  // namespace

const char* ColumnKindName(ColumnKind kind) {
  switch (kind) {
    case ColumnKind::kNumber:
      return "number";
    case ColumnKind::kBoolean:
      return "boolean";
    case ColumnKind::kDate:
      return "date";
    case ColumnKind::kCategory:
      return "category";
    case ColumnKind::kEmpty:
      break;
  }
  return "empty";
}

std::optional<double> ParseIsoDate(const std::string& s) {
  int y, mo, d;
  if (s.size() < 10 || !Digits(s, 0, 4, &y) || s[4] != '-' ||
      !Digits(s, 5, 2, &mo) || s[7] != '-' || !Digits(s, 8, 2, &d)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo)) return std::nullopt;
  double days = static_cast<double>(DaysFromCivil(y, mo, d));
  size_t pos = 10;
  if (pos == s.size()) return days;
  if (s[pos] != 'T' && s[pos] != ' ') return std::nullopt;
  int h, mi, sec = 0;
  if (!Digits(s, pos + 1, 2, &h) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
      !Digits(s, pos + 4, 2, &mi) || h > 23 || mi > 59) {
    return std::nullopt;
  }
  pos += 6;
  double frac = 0;
  if (pos < s.size() && s[pos] == ':') {
    if (!Digits(s, pos + 1, 2, &sec) || sec > 60) return std::nullopt;
    pos += 3;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      double unit = 0.1;
      size_t start = ++pos;
      while (pos < s.size() &&
             std::isdigit(static_cast<unsigned char>(s[pos]))) {
        frac += (s[pos] - '0') * unit;
        unit /= 10;
        ++pos;
      }
      if (pos == start) return std::nullopt;
    }
  }
  double offset_minutes = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' && pos + 1 == s.size()) {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh, om;
      if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() ||
          s[pos + 3] != ':' || !Digits(s, pos + 4, 2, &om) || oh > 23 ||
          om > 59 || pos + 6 != s.size()) {
        return std::nullopt;
      }
      offset_minutes = (s[pos] == '+' ? 1 : -1) * (oh * 60.0 + om);
      pos += 6;
    } else {
      return std::nullopt;
    }
  }
  const double minutes = h * 60.0 + mi + (sec + frac) / 60.0 - offset_minutes;
  return days + minutes / (24 * 60);
}

// ---- Schema ----

int64_t Schema::feature_count() const {
  return static_cast<int64_t>(FeatureNames().size());
}

int64_t Schema::output_count() const {
  return task == PredictionTask::kRegression
             ? 1
             : static_cast<int64_t>(classes.size());
}

std::vector<std::string> Schema::FeatureNames() const {
  std::vector<std::string> names;
  for (const Column& c : columns) {
    switch (c.kind) {
      case ColumnKind::kNumber:
      case ColumnKind::kBoolean:
        names.push_back(c.name);
        break;
      case ColumnKind::kDate:
        names.push_back(absl::StrCat(c.name, " (days since 1970)"));
        break;
      case ColumnKind::kCategory:
        for (const std::string& v : c.categories)
          names.push_back(absl::StrCat(c.name, "=", v));
        names.push_back(absl::StrCat(c.name, " (other)"));
        break;
      case ColumnKind::kEmpty:
        break;
    }
    if (c.missing_indicator && c.kind != ColumnKind::kEmpty)
      names.push_back(absl::StrCat(c.name, " (missing)"));
  }
  for (const Duration& d : durations) {
    names.push_back(absl::StrCat(d.end, " - ", d.start, " (days)"));
    if (d.missing_indicator)
      names.push_back(absl::StrCat(d.end, " - ", d.start, " (missing)"));
  }
  return names;
}

std::string Schema::ToJson() const {
  nlohmann::json j;
  j["format"] = 1;
  j["label"] = label;
  j["task"] =
      task == PredictionTask::kRegression ? "regression" : "classification";
  j["label_mean"] = label_mean;
  j["label_scale"] = label_scale;
  j["classes"] = classes;
  j["columns"] = nlohmann::json::array();
  for (const Column& c : columns) {
    j["columns"].push_back({{"name", c.name},
                            {"kind", ColumnKindName(c.kind)},
                            {"missing_indicator", c.missing_indicator},
                            {"mean", c.mean},
                            {"scale", c.scale},
                            {"categories", c.categories}});
  }
  j["durations"] = nlohmann::json::array();
  for (const Duration& d : durations) {
    j["durations"].push_back({{"start", d.start},
                              {"end", d.end},
                              {"missing_indicator", d.missing_indicator},
                              {"mean", d.mean},
                              {"scale", d.scale}});
  }
  return j.dump(1) + "\n";
}

absl::StatusOr<Schema> Schema::FromJson(const std::string& text) {
  Schema s;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.at("format").get<int>() != 1) {
      return absl::DataLossError("records schema: unknown format");
    }
    s.label = j.at("label").get<std::string>();
    const std::string task = j.at("task").get<std::string>();
    if (task != "regression" && task != "classification") {
      return absl::DataLossError(
          absl::StrCat("records schema: unknown task '", task, "'"));
    }
    s.task = task == "regression" ? PredictionTask::kRegression
                                  : PredictionTask::kClassification;
    s.label_mean = j.at("label_mean").get<double>();
    s.label_scale = j.at("label_scale").get<double>();
    s.classes = j.at("classes").get<std::vector<std::string>>();
    for (const auto& c : j.at("columns")) {
      Column col;
      col.name = c.at("name").get<std::string>();
      const std::string kind = c.at("kind").get<std::string>();
      bool known = false;
      for (ColumnKind k :
           {ColumnKind::kNumber, ColumnKind::kBoolean, ColumnKind::kDate,
            ColumnKind::kCategory, ColumnKind::kEmpty}) {
        if (kind == ColumnKindName(k)) {
          col.kind = k;
          known = true;
        }
      }
      if (!known) {
        return absl::DataLossError(
            absl::StrCat("records schema: unknown column kind '", kind, "'"));
      }
      col.missing_indicator = c.at("missing_indicator").get<bool>();
      col.mean = c.at("mean").get<double>();
      col.scale = c.at("scale").get<double>();
      col.categories = c.at("categories").get<std::vector<std::string>>();
      s.columns.push_back(std::move(col));
    }
    for (const auto& d : j.at("durations")) {
      Duration dur;
      dur.start = d.at("start").get<std::string>();
      dur.end = d.at("end").get<std::string>();
      dur.missing_indicator = d.at("missing_indicator").get<bool>();
      dur.mean = d.at("mean").get<double>();
      dur.scale = d.at("scale").get<double>();
      s.durations.push_back(std::move(dur));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("records schema: ", e.what()));
  }
  return s;
}

// ---- Inference ----

SchemaInference::SchemaInference(const RecordsOptions& options)
    : options_(options) {}

absl::Status SchemaInference::Observe(const Record& r) {
  file_ = r.file;
  ++records_;
  Schema for_messages;
  for_messages.label = options_.label;
  for_messages.task = options_.task;
  auto label = r.fields.find(options_.label);
  const Value* lv = label == r.fields.end() ? nullptr : &label->second;
  if (lv == nullptr || lv->is_null()) return LabelError(r, for_messages, lv);
  if (options_.task == PredictionTask::kRegression) {
    if (!lv->is_number()) return LabelError(r, for_messages, lv);
    Welford(lv->as_number(), records_, &label_mean_, &label_m2_);
  } else {
    const std::string key = ClassKey(*lv);
    if (key.empty()) return LabelError(r, for_messages, lv);
    ++classes_[key];
    if (classes_.size() > kMaxClasses) {
      return absl::InvalidArgumentError(
          absl::StrCat(At(r), ": label '", options_.label, "' has more than ",
                       kMaxClasses, " distinct values; is this a regression?"));
    }
  }
  for (const auto& [name, v] : r.fields) {
    if (name == options_.label) continue;
    Stats& s = stats_[name];
    if (stats_.size() > kMaxColumns) {
      return absl::InvalidArgumentError(
          absl::StrCat(At(r), ": more than ", kMaxColumns,
                       " distinct fields in the training records"));
    }
    const Kind k = KindOfValue(v);
    if (k == Kind::kNull) continue;
    // One kind of value per field: the first one seen decides.
    const std::pair<Kind, int64_t> seen[] = {
        {Kind::kNumber, s.first_number_line},
        {Kind::kBoolean, s.first_boolean_line},
        {Kind::kString, s.first_string_line}};
    for (const auto& [other, line] : seen) {
      if (other != k && line > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            At(r), ": field '", name, "' is ", KindText(k), " (", v.ToJson(),
            ") here but ", KindText(other), " at line ", line,
            "; a field must hold one kind of value (or null)"));
      }
    }
    switch (k) {
      case Kind::kNumber:
        if (s.numbers++ == 0) s.first_number_line = r.line;
        Welford(v.as_number(), s.numbers, &s.mean, &s.m2);
        break;
      case Kind::kBoolean:
        if (s.booleans++ == 0) s.first_boolean_line = r.line;
        s.trues += v.as_bool();
        break;
      case Kind::kString: {
        if (s.strings++ == 0) s.first_string_line = r.line;
        ++s.counts[v.as_string()];
        if (std::optional<double> d = ParseIsoDate(v.as_string())) {
          ++s.dates;
          Welford(*d, s.dates, &s.date_mean, &s.date_m2);
        } else if (s.first_non_date_line == 0) {
          s.first_non_date_line = r.line;
        }
        break;
      }
      case Kind::kNull:
        break;
    }
  }
  return absl::OkStatus();
}

ColumnKind SchemaInference::KindOf(const Stats& s) const {
  if (s.numbers > 0) return ColumnKind::kNumber;
  if (s.booleans > 0) return ColumnKind::kBoolean;
  if (s.strings > 0)
    return s.dates == s.strings ? ColumnKind::kDate : ColumnKind::kCategory;
  return ColumnKind::kEmpty;
}

bool SchemaInference::NeedsSecondPass() const {
  size_t dates = 0;
  for (const auto& [name, s] : stats_) dates += KindOf(s) == ColumnKind::kDate;
  return dates >= 2;
}

absl::Status SchemaInference::ObserveDurations(const Record& r) {
  if (date_columns_.empty()) {
    for (const auto& [name, s] : stats_) {
      if (KindOf(s) == ColumnKind::kDate &&
          date_columns_.size() < kMaxDurationDates)
        date_columns_.push_back(name);
    }
  }
  std::vector<std::optional<double>> days(date_columns_.size());
  for (size_t i = 0; i < date_columns_.size(); ++i) {
    auto it = r.fields.find(date_columns_[i]);
    if (it != r.fields.end() && it->second.is_string())
      days[i] = ParseIsoDate(it->second.as_string());
  }
  for (size_t i = 0; i < days.size(); ++i) {
    for (size_t j = i + 1; j < days.size(); ++j) {
      if (!days[i] || !days[j]) continue;
      PairStats& p = pairs_[{i, j}];
      ++p.n;
      Welford(*days[j] - *days[i], p.n, &p.mean, &p.m2);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Schema> SchemaInference::Finish() {
  if (records_ == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_.empty() ? options_.path : file_,
                     ": no records (the training file is empty); a records "
                     "file holds one JSON object per line"));
  }
  Schema schema;
  schema.label = options_.label;
  schema.task = options_.task;
  if (options_.task == PredictionTask::kRegression) {
    schema.label_mean = label_mean_;
    schema.label_scale = Scale(label_m2_, records_);
  } else {
    for (const auto& [key, n] : classes_) schema.classes.push_back(key);
    if (schema.classes.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          file_, ": label '", options_.label, "' has only one value (",
          schema.classes.front(),
          ") in the training records; classification needs two classes"));
    }
  }
  for (const auto& [name, s] : stats_) {
    Column c;
    c.name = name;
    c.kind = KindOf(s);
    const int64_t present = s.numbers + s.booleans + s.strings;
    c.missing_indicator = c.kind != ColumnKind::kEmpty && present < records_;
    switch (c.kind) {
      case ColumnKind::kNumber:
        c.mean = s.mean;
        c.scale = Scale(s.m2, s.numbers);
        break;
      case ColumnKind::kBoolean:
        c.mean = static_cast<double>(s.trues) / static_cast<double>(s.booleans);
        break;
      case ColumnKind::kDate:
        c.mean = s.date_mean;
        c.scale = Scale(s.date_m2, s.dates);
        break;
      case ColumnKind::kCategory: {
        std::vector<std::pair<int64_t, std::string>> by_count;
        for (const auto& [v, n] : s.counts) by_count.push_back({-n, v});
        std::sort(by_count.begin(), by_count.end());
        for (size_t i = 0; i < by_count.size() &&
                           static_cast<int64_t>(i) < options_.max_categories;
             ++i) {
          c.categories.push_back(by_count[i].second);
        }
        break;
      }
      case ColumnKind::kEmpty:
        break;
    }
    schema.columns.push_back(std::move(c));
  }
  for (const auto& [ij, p] : pairs_) {
    const std::string& a = date_columns_[ij.first];
    const std::string& b = date_columns_[ij.second];
    Duration d;
    // Later minus earlier, as the training dates' means order them, so that
    // admission and discharge give a positive length of stay.
    const bool b_later = stats_[b].date_mean >= stats_[a].date_mean;
    d.start = b_later ? a : b;
    d.end = b_later ? b : a;
    d.mean = b_later ? p.mean : -p.mean;
    d.scale = Scale(p.m2, p.n);
    d.missing_indicator = p.n < records_;
    schema.durations.push_back(std::move(d));
  }
  return schema;
}

// ---- Encoding ----

absl::Status EncodeRecord(const Schema& schema, const Record& r,
                          float* features, float* target) {
  auto label = r.fields.find(schema.label);
  const Value* lv = label == r.fields.end() ? nullptr : &label->second;
  if (lv == nullptr || lv->is_null()) return LabelError(r, schema, lv);
  if (schema.task == PredictionTask::kRegression) {
    if (!lv->is_number()) return LabelError(r, schema, lv);
    *target = static_cast<float>(lv->as_number());
  } else {
    const std::string key = ClassKey(*lv);
    if (key.empty()) return LabelError(r, schema, lv);
    auto it =
        std::lower_bound(schema.classes.begin(), schema.classes.end(), key);
    if (it == schema.classes.end() || *it != key) {
      return absl::InvalidArgumentError(
          absl::StrCat(At(r), ": label '", schema.label, "' is ", key,
                       ", a class the training records do not have (they have ",
                       absl::StrJoin(schema.classes, ", "), ")"));
    }
    *target = static_cast<float>(it - schema.classes.begin());
  }
  float* out = features;
  auto mismatch = [&](const Column& c, const Value& v) {
    return absl::InvalidArgumentError(absl::StrCat(
        At(r), ": field '", c.name, "' is ", KindText(KindOfValue(v)), " (",
        v.ToJson(), ") but the training records made it a ",
        ColumnKindName(c.kind), " column"));
  };
  for (const Column& c : schema.columns) {
    if (c.kind == ColumnKind::kEmpty) continue;
    auto it = r.fields.find(c.name);
    const Value* v =
        it == r.fields.end() || it->second.is_null() ? nullptr : &it->second;
    switch (c.kind) {
      case ColumnKind::kNumber:
        if (v != nullptr && !v->is_number()) return mismatch(c, *v);
        *out++ =
            v ? static_cast<float>((v->as_number() - c.mean) / c.scale) : 0;
        break;
      case ColumnKind::kBoolean:
        if (v != nullptr && !v->is_bool()) return mismatch(c, *v);
        *out++ = static_cast<float>(v ? (v->as_bool() ? 1.0 : 0.0) : c.mean);
        break;
      case ColumnKind::kDate: {
        if (v != nullptr && !v->is_string()) return mismatch(c, *v);
        std::optional<double> d;
        if (v != nullptr) {
          d = ParseIsoDate(v->as_string());
          if (!d) {
            return absl::InvalidArgumentError(absl::StrCat(
                At(r), ": field '", c.name, "' is ", v->ToJson(),
                ", not an ISO date (YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]) as in "
                "the training records"));
          }
        }
        *out++ = d ? static_cast<float>((*d - c.mean) / c.scale) : 0;
        break;
      }
      case ColumnKind::kCategory: {
        if (v != nullptr && !v->is_string()) return mismatch(c, *v);
        const size_t n = c.categories.size();
        std::fill(out, out + n + 1, 0.0f);
        if (v != nullptr) {
          auto cat = std::find(c.categories.begin(), c.categories.end(),
                               v->as_string());
          out[cat - c.categories.begin()] = 1;  // n: the "other" column
        }
        out += n + 1;
        break;
      }
      case ColumnKind::kEmpty:
        break;
    }
    if (c.missing_indicator) *out++ = v == nullptr ? 1 : 0;
  }
  for (const Duration& d : schema.durations) {
    auto day = [&](const std::string& name) -> std::optional<double> {
      auto it = r.fields.find(name);
      if (it == r.fields.end() || !it->second.is_string()) return std::nullopt;
      return ParseIsoDate(it->second.as_string());
    };
    std::optional<double> start = day(d.start), end = day(d.end);
    const bool have = start && end;
    *out++ = have ? static_cast<float>((*end - *start - d.mean) / d.scale) : 0;
    if (d.missing_indicator) *out++ = have ? 0 : 1;
  }
  return absl::OkStatus();
}

}  // namespace det::records
