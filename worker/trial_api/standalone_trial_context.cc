#include "worker/trial_api/standalone_trial_context.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"

namespace det {
namespace {

v1::MetricReport MakeReport(int64_t trial_id, v1::MetricGroup group,
                            int64_t steps_completed,
                            const std::map<std::string, double>& m) {
  v1::MetricReport r;
  r.set_trial_id(trial_id);
  r.set_group(group);
  r.set_steps_completed(steps_completed);
  r.set_time_us(absl::ToUnixMicros(absl::Now()));
  for (const auto& [name, value] : m) (*r.mutable_metrics())[name] = value;
  return r;
}

}  // namespace

StandaloneTrialContext::StandaloneTrialContext(v1::TrialSpec spec, int rank,
                                               int world_size)
    : spec_(std::move(spec)), rank_(rank), world_size_(world_size) {}

absl::Status StandaloneTrialContext::ReportTrainingMetrics(
    int64_t steps_completed, const std::map<std::string, double>& m) {
  return PrintLine("metrics",
                   MakeReport(spec_.trial_id(), v1::METRIC_GROUP_TRAINING,
                              steps_completed, m));
}

absl::Status StandaloneTrialContext::ReportValidationMetrics(
    int64_t steps_completed, const std::map<std::string, double>& m) {
  return PrintLine("metrics",
                   MakeReport(spec_.trial_id(), v1::METRIC_GROUP_VALIDATION,
                              steps_completed, m));
}

absl::Status StandaloneTrialContext::ReportCheckpoint(
    const v1::Checkpoint& checkpoint) {
  v1::Checkpoint c = checkpoint;
  c.set_trial_id(spec_.trial_id());
  if (c.time_us() == 0) c.set_time_us(absl::ToUnixMicros(absl::Now()));
  return PrintLine("checkpoint", c);
}

absl::Status StandaloneTrialContext::PrintLine(
    const char* kind, const google::protobuf::Message& report) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string json;
  auto st = google::protobuf::util::MessageToJsonString(report, &json, opts);
  if (!st.ok()) {
    return absl::InternalError(absl::StrCat(
        "cannot print ", kind, " report as JSON: ", st.ToString()));
  }
  std::string line =
      absl::StrCat("{\"kind\":\"", kind, "\",\"report\":", json, "}\n");
  absl::MutexLock lock(&mu_);
  if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() ||
      std::fflush(stdout) != 0) {
    return absl::UnavailableError("cannot write report to stdout");
  }
  return absl::OkStatus();
}

}  // namespace det
