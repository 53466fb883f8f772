#include "master/store/record_codec.h"

#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace det::store {

absl::Status CheckMetricReportKey(const v1::MetricReport& r) {
  if (r.group() != v1::METRIC_GROUP_TRAINING &&
      r.group() != v1::METRIC_GROUP_VALIDATION) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric report of trial ", r.trial_id(),
        " has no group (training or validation); it is part of the key"));
  }
  if (r.steps_completed() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric report of trial ", r.trial_id(),
                     " has negative steps_completed ", r.steps_completed()));
  }
  return absl::OkStatus();
}

std::string NewUuid() {
  std::random_device rd;
  unsigned char b[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = rd();
    for (int j = 0; j < 4; ++j)
      b[i + j] = static_cast<unsigned char>(r >> (8 * j));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 1
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex += '-';
    absl::StrAppendFormat(&hex, "%02x", b[i]);
  }
  return hex;
}

std::string EncodePoints(const std::vector<int64_t>& points) {
  return absl::StrJoin(points, ",");
}

absl::StatusOr<std::vector<int64_t>> DecodePoints(absl::string_view text,
                                                  int64_t trial_id) {
  std::vector<int64_t> points;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v)) {
      return absl::DataLossError(
          absl::StrCat("store: trial ", trial_id,
                       " has corrupt validation points '", text, "'"));
    }
    points.push_back(v);
  }
  return points;
}

absl::Status CheckCheckpointTransition(absl::string_view uuid,
                                       v1::CheckpointState from,
                                       v1::CheckpointState to, bool* noop) {
  *noop = false;
  if (to != v1::CHECKPOINT_STATE_DELETING &&
      to != v1::CHECKPOINT_STATE_DELETED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint ", uuid, ": state can only be set to DELETING or ",
        "DELETED, not ", v1::CheckpointState_Name(to)));
  }
  if (from == to) {
    *noop = true;
    return absl::OkStatus();
  }
  if ((from == v1::CHECKPOINT_STATE_ACTIVE &&
       to == v1::CHECKPOINT_STATE_DELETING) ||
      (from == v1::CHECKPOINT_STATE_DELETING &&
       to == v1::CHECKPOINT_STATE_DELETED)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("checkpoint ", uuid, " is ", v1::CheckpointState_Name(from),
                   "; it cannot become ", v1::CheckpointState_Name(to),
                   " (a checkpoint goes ACTIVE -> DELETING -> DELETED)"));
}

}  // namespace det::store
