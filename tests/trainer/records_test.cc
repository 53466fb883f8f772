// JSON records: the bounded line reader, schema inference for every column
// kind, encoding, the checkpointed schema, and each kind of bad input.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "worker/trainer/records_dataset.h"
#include "worker/trainer/records_reader.h"
#include "worker/trainer/records_schema.h"

namespace det::records {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

RecordsOptions Options(const std::string& path, const std::string& label,
                       PredictionTask task = PredictionTask::kRegression) {
  RecordsOptions o;
  o.path = path;
  o.label = label;
  o.task = task;
  o.validation_split = 0.25;
  return o;
}

const Column& ColumnNamed(const Schema& s, const std::string& name) {
  for (const Column& c : s.columns) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no column " << name;
  static const Column none;
  return none;
}

TEST(LineReader, CutsLinesWithAndWithoutFinalNewlineAndTracksOffsets) {
  test::TempDir dir("records");
  const std::string path = dir.Write("a.jsonl", "ab\n\ncde");
  auto reader = LineReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::string_view line;
  std::vector<std::pair<std::string, int64_t>> got;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&line);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    got.push_back({std::string(line), (*reader)->line_offset()});
  }
  EXPECT_THAT(got, ElementsAre(std::pair<std::string, int64_t>{"ab", 0},
                               std::pair<std::string, int64_t>{"", 3},
                               std::pair<std::string, int64_t>{"cde", 4}));
}

TEST(LineReader, LinesAcrossManyReadChunks) {
  test::TempDir dir("records");
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "{\"x\":" + std::to_string(i) + "}\n";
  const std::string path = dir.Write("a.jsonl", text);
  int64_t sum = 0;
  absl::StatusOr<int64_t> n = ForEachRecord(
      path,
      [&](const Record& r) {
        sum += r.fields.at("x").as_int();
        EXPECT_EQ(r.line, r.fields.at("x").as_int() + 1);
        return absl::OkStatus();
      },
      /*max_line_bytes=*/64);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5000);
  EXPECT_EQ(sum, 4999 * 5000 / 2);
}

TEST(BadInput, TenGigabytesOfOneLineFailsFastWithFileLineAndOffset) {
  test::TempDir dir("records");
  const std::string path = dir.Write("huge.jsonl", "{\"a\":1}\n");
  // A sparse 10 GB file: one record, then a single line of NUL bytes.
  ASSERT_EQ(truncate(path.c_str(), int64_t{10} << 30), 0);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<int64_t> n =
      ForEachRecord(path, [](const Record&) { return absl::OkStatus(); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_FALSE(n.ok());
  EXPECT_THAT(std::string(n.status().message()),
              HasSubstr(path + ":2: line starting at "
                               "byte offset 8 is longer "
                               "than 1048576 bytes"));
  EXPECT_LT(seconds, 5.0);  // reads about 1 MiB, not 10 GB
}

TEST(BadInput, LineThatIsNotJsonNamesFileLineAndColumn) {
  test::TempDir dir("records");
  const std::string path =
      dir.Write("a.jsonl", "{\"y\":1,\"x\":2}\n{\"y\":2, \"x\": tru}\n");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr(path + ":2:"));
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("not valid JSON"));
  // nlohmann reports where the bad literal ends.
  EXPECT_THAT(std::string(d.status().message()), HasSubstr(":2:17:"));
}

TEST(BadInput, LineThatIsAListIsNotARecord) {
  test::TempDir dir("records");
  const std::string path = dir.Write("a.jsonl", "  [1, 2]\n");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(path + ":1:3: expected a JSON object ({...}), found a "
                               "list"));
}

TEST(BadInput, NestedValueIsRefusedWithItsField) {
  test::TempDir dir("records");
  const std::string path =
      dir.Write("a.jsonl", "{\"y\":1,\"vitals\":{\"hr\":70}}\n");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(path + ":1: field 'vitals' is an object"));
}

TEST(BadInput, RecordMissingTheLabel) {
  test::TempDir dir("records");
  const std::string path = dir.Write(
      "a.jsonl",
      "{\"y\":1,\"x\":2}\n{\"y\":2,\"x\":3}\n{\"x\":4}\n{\"y\":1,\"x\":1}\n");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(path + ":3 (line at byte offset 28): the record has no "
                               "label field 'y'"));
}

TEST(BadInput, MissingLabelInTheValidationTailToo) {
  test::TempDir dir("records");
  const std::string path = dir.Write("a.jsonl",
                                     "{\"y\":1,\"x\":2}\n{\"y\":2,\"x\":3}\n{"
                                     "\"y\":2,\"x\":3}\n{\"y\":null}\n");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr(path + ":4 "));
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("no label field 'y'"));
}

TEST(BadInput, LabelOfTheWrongType) {
  test::TempDir dir("records");
  const std::string path =
      dir.Write("a.jsonl", "{\"y\":1,\"x\":2}\n{\"y\":\"high\",\"x\":3}\n");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(path + ":2 (line at byte offset 14): label 'y' is a "
                               "string (\"high\"); regression needs a number"));

  const std::string cls = dir.Write(
      "b.jsonl",
      "{\"y\":\"a\",\"x\":2}\n{\"y\":0.5,\"x\":3}\n{\"y\":\"b\",\"x\":2}\n"
      "{\"y\":\"a\",\"x\":2}\n");
  d = LoadRecords(Options(cls, "y", PredictionTask::kClassification));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(cls + ":2 (line at byte offset 16): label 'y' is a "
                              "number (0.5); classification needs a string"));
}

TEST(BadInput, EmptyFile) {
  test::TempDir dir("records");
  const std::string path = dir.Write("empty.jsonl", "");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(path + ": no records"));

  const std::string blank = dir.Write("blank.jsonl", "\n  \n");
  RecordsOptions o = Options(blank, "y");
  o.validation_split = 0;
  o.validation_path = path;
  d = LoadRecords(o);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(blank + ": no records"));
}

TEST(BadInput, EmptyValidationFile) {
  test::TempDir dir("records");
  RecordsOptions o = Options(dir.Write("t.jsonl", "{\"y\":1,\"x\":1}\n"), "y");
  o.validation_split = 0;
  o.validation_path = dir.Write("v.jsonl", "");
  absl::StatusOr<RecordsData> d = LoadRecords(o);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(o.validation_path + ": no records"));
}

TEST(BadInput, MissingFile) {
  absl::StatusOr<RecordsData> d =
      LoadRecords(Options("/nonexistent/records.jsonl", "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("/nonexistent/records.jsonl"));
}

TEST(BadInput, FieldWithTwoKindsOfValueNamesBothLines) {
  test::TempDir dir("records");
  const std::string path = dir.Write("a.jsonl",
                                     "{\"y\":1,\"age\":40}\n{\"y\":1,\"age\":"
                                     "null}\n{\"y\":1,\"age\":\"old\"}\n"
                                     "{\"y\":1,\"age\":41}\n");
  absl::StatusOr<RecordsData> d = LoadRecords(Options(path, "y"));
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(path + ":3 (line at byte offset 36): field 'age' is a "
                               "string (\"old\") here but a number at line 1"));
}

TEST(BadInput, ValidationValueThatDoesNotFitTheTrainingColumn) {
  test::TempDir dir("records");
  RecordsOptions o = Options(
      dir.Write("t.jsonl", "{\"y\":1,\"age\":40}\n{\"y\":2,\"age\":50}\n"),
      "y");
  o.validation_split = 0;
  o.validation_path = dir.Write("v.jsonl", "{\"y\":1,\"age\":true}\n");
  absl::StatusOr<RecordsData> d = LoadRecords(o);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(o.validation_path + ":1 (line at byte offset 0): field "
                                            "'age' is a boolean (true) but the "
                                            "training records made it a number "
                                            "column"));
}

TEST(ParseIsoDate, DatesAndDateTimes) {
  EXPECT_EQ(ParseIsoDate("1970-01-01"), 0.0);
  EXPECT_EQ(ParseIsoDate("1970-01-02"), 1.0);
  EXPECT_EQ(ParseIsoDate("2000-03-01"), 11017.0);
  EXPECT_EQ(ParseIsoDate("1969-12-31"), -1.0);
  EXPECT_EQ(ParseIsoDate("1970-01-01T12:00"), 0.5);
  EXPECT_EQ(ParseIsoDate("1970-01-01T06:00:00Z"), 0.25);
  EXPECT_EQ(ParseIsoDate("1970-01-01 18:00:00.000"), 0.75);
  EXPECT_EQ(ParseIsoDate("1970-01-02T02:00:00+02:00"), 1.0);
  EXPECT_EQ(ParseIsoDate("2024-02-29"), ParseIsoDate("2024-03-01").value() - 1);
  EXPECT_FALSE(ParseIsoDate("2023-02-29"));
  EXPECT_FALSE(ParseIsoDate("2024-13-01"));
  EXPECT_FALSE(ParseIsoDate("2024-1-01"));
  EXPECT_FALSE(ParseIsoDate("2024-01-01T25:00"));
  EXPECT_FALSE(ParseIsoDate("2024-01-01x"));
  EXPECT_FALSE(ParseIsoDate("male"));
}

// The patients of the seed: every column kind at once.
constexpr char kPatients[] =
    R"({"age": 50, "gender": "F", "insulin": true, "glucose": 140.0, "admitted": "2024-01-01", "discharged": "2024-01-04", "stay_cost": 3})"
    "\n"
    R"({"age": 70, "gender": "M", "insulin": false, "glucose": null, "admitted": "2024-01-10", "discharged": "2024-01-11", "stay_cost": 1})"
    "\n"
    R"({"age": 60, "gender": "F", "insulin": true, "admitted": "2024-01-20", "discharged": "2024-01-26", "note": null, "stay_cost": 6})"
    "\n"
    R"({"age": 40, "gender": "X", "insulin": false, "glucose": 100, "admitted": "2024-02-01", "discharged": "2024-02-03", "stay_cost": 2})"
    "\n";

TEST(SchemaInference, EveryColumnKind) {
  test::TempDir dir("records");
  RecordsOptions o = Options(dir.Write("p.jsonl", kPatients), "stay_cost");
  o.validation_split = 0;
  o.validation_path = dir.Write(
      "v.jsonl",
      R"({"age": 55, "gender": "Z", "glucose": 120, "admitted": "2024-03-01", "discharged": "2024-03-02", "stay_cost": 1})"
      "\n");
  o.max_categories = 2;
  absl::StatusOr<RecordsData> d = LoadRecords(o);
  ASSERT_TRUE(d.ok()) << d.status();
  const Schema& s = d->schema;

  const Column& age = ColumnNamed(s, "age");
  EXPECT_EQ(age.kind, ColumnKind::kNumber);
  EXPECT_FALSE(age.missing_indicator);
  EXPECT_DOUBLE_EQ(age.mean, 55);
  EXPECT_DOUBLE_EQ(age.scale, std::sqrt(125.0));  // population std

  const Column& glucose = ColumnNamed(s, "glucose");
  EXPECT_EQ(glucose.kind, ColumnKind::kNumber);
  EXPECT_TRUE(glucose.missing_indicator);  // null once, absent once
  EXPECT_DOUBLE_EQ(glucose.mean, 120);

  const Column& gender = ColumnNamed(s, "gender");
  EXPECT_EQ(gender.kind, ColumnKind::kCategory);
  // F twice, then M and X once each (ties by value): the cap keeps two.
  EXPECT_THAT(gender.categories, ElementsAre("F", "M"));

  const Column& insulin = ColumnNamed(s, "insulin");
  EXPECT_EQ(insulin.kind, ColumnKind::kBoolean);
  EXPECT_DOUBLE_EQ(insulin.mean, 0.5);

  EXPECT_EQ(ColumnNamed(s, "admitted").kind, ColumnKind::kDate);
  EXPECT_EQ(ColumnNamed(s, "discharged").kind, ColumnKind::kDate);
  EXPECT_EQ(ColumnNamed(s, "note").kind, ColumnKind::kEmpty);

  ASSERT_EQ(s.durations.size(), 1u);
  EXPECT_EQ(s.durations[0].start, "admitted");
  EXPECT_EQ(s.durations[0].end, "discharged");
  EXPECT_DOUBLE_EQ(s.durations[0].mean, 3);  // stays of 3, 1, 6 and 2 days

  EXPECT_THAT(
      s.FeatureNames(),
      ElementsAre("admitted (days since 1970)", "age",
                  "discharged (days since 1970)", "gender=F", "gender=M",
                  "gender (other)", "glucose", "glucose (missing)", "insulin",
                  "discharged - admitted (days)"));
  ASSERT_EQ(d->train.rows, 4);
  ASSERT_EQ(d->train.features, 10);
  EXPECT_THAT(d->train.y, ElementsAre(3, 1, 6, 2));

  // The validation patient: unseen gender -> other; no insulin -> imputed
  // with the training share (no flag: training always had it); a stay of
  // one day.
  const std::vector<float> v(d->validation.x.begin(), d->validation.x.end());
  ASSERT_EQ(v.size(), 10u);
  EXPECT_FLOAT_EQ(v[1], 0.0f);  // age 55 is the mean
  EXPECT_FLOAT_EQ(v[3], 0);
  EXPECT_FLOAT_EQ(v[4], 0);
  EXPECT_FLOAT_EQ(v[5], 1);  // other
  EXPECT_FLOAT_EQ(v[6], 0);  // glucose 120 is the mean
  EXPECT_FLOAT_EQ(v[7], 0);
  EXPECT_FLOAT_EQ(v[8], 0.5f);
  const double stay_sd = std::sqrt((0 + 4 + 9 + 1) / 4.0);
  EXPECT_FLOAT_EQ(v[9], static_cast<float>((1 - 3) / stay_sd));

  // Training row 2: glucose missing -> 0 (the mean) and flagged.
  const float* row = d->train.x.data() + 2 * 10;
  EXPECT_FLOAT_EQ(row[6], 0);
  EXPECT_FLOAT_EQ(row[7], 1);
  EXPECT_FLOAT_EQ(row[8], 1);  // insulin true
  EXPECT_FLOAT_EQ(row[3], 1);  // gender F
}

TEST(SchemaInference, ClassificationLabels) {
  test::TempDir dir("records");
  RecordsOptions o = Options(dir.Write("c.jsonl",
                                       "{\"x\":1,\"y\":\"b\"}\n{\"x\":2,\"y\":"
                                       "\"a\"}\n{\"x\":3,\"y\":\"b\"}\n"
                                       "{\"x\":4,\"y\":\"c\"}\n"),
                             "y", PredictionTask::kClassification);
  absl::StatusOr<RecordsData> d = LoadRecords(o);
  // The last record (class c) validates, and c is not a training class.
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr(":4 (line at byte offset 48): label 'y' is \"c\", a "
                        "class the training records do not have"));

  o.validation_split = 0.2;  // 4 records: one validates (rounded)
  o.path = dir.Write("d.jsonl",
                     "{\"x\":1,\"y\":true}\n{\"x\":2,\"y\":false}\n"
                     "{\"x\":3,\"y\":true}\n{\"x\":4,\"y\":false}\n");
  d = LoadRecords(o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->schema.classes, ElementsAre("false", "true"));
  EXPECT_EQ(d->schema.output_count(), 2);
  EXPECT_THAT(d->train.y, ElementsAre(1, 0, 1));
  EXPECT_THAT(d->validation.y, ElementsAre(0));
  // Only the three training records shaped the standardisation.
  EXPECT_DOUBLE_EQ(d->schema.columns[0].mean, 2);
}

TEST(SchemaInference, OneClassOnlyIsAnError) {
  test::TempDir dir("records");
  RecordsOptions o =
      Options(dir.Write("c.jsonl", "{\"x\":1,\"y\":1}\n{\"x\":2,\"y\":1}\n"),
              "y", PredictionTask::kClassification);
  o.validation_split = 0;
  o.validation_path = o.path;
  absl::StatusOr<RecordsData> d = LoadRecords(o);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("has only one value (1)"));
}

TEST(Schema, JsonRoundTripIsExactAndResumeReadsTheSavedColumns) {
  test::TempDir dir("records");
  RecordsOptions o = Options(dir.Write("p.jsonl", kPatients), "stay_cost");
  absl::StatusOr<RecordsData> d = LoadRecords(o);
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<Schema> back = Schema::FromJson(d->schema.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), d->schema.ToJson());
  EXPECT_EQ(back->columns.size(), d->schema.columns.size());
  for (size_t i = 0; i < back->columns.size(); ++i) {
    EXPECT_EQ(back->columns[i].mean, d->schema.columns[i].mean);
    EXPECT_EQ(back->columns[i].scale, d->schema.columns[i].scale);
  }

  // The file changes under a resumed run (a new field, new values): the
  // saved schema keeps the features as they were.
  o.path = dir.Write(
      "p2.jsonl", std::string(kPatients) +
                      R"({"age": 1, "gender": "F", "new": 5, "stay_cost": 9})"
                      "\n");
  absl::StatusOr<RecordsData> resumed = LoadRecords(o, &*back);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->schema.ToJson(), d->schema.ToJson());
  EXPECT_EQ(resumed->train.features, d->train.features);
  const std::vector<float> first(d->train.x.begin(),
                                 d->train.x.begin() + d->train.features);
  const std::vector<float> again(resumed->train.x.begin(),
                                 resumed->train.x.begin() + d->train.features);
  EXPECT_EQ(first, again);

  EXPECT_FALSE(Schema::FromJson("{\"format\": 2}").ok());
  EXPECT_FALSE(Schema::FromJson("not json").ok());
}

}  // namespace
}  // namespace det::records
