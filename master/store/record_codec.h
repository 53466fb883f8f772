// What every Store writes and reads the same way, whatever the database:
// records as serialized det.v1 messages, a trial's validation points as
// text, the cluster id as a random UUID. One copy for SqliteStore and
// PostgresStore, so the two stores keep the same bytes and messages.
#ifndef DET_MASTER_STORE_RECORD_CODEC_H_
#define DET_MASTER_STORE_RECORD_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "det/v1/common.pb.h"

namespace det::store {

// INVALID_ARGUMENT unless the report's key (trial, group, steps) can be
// stored: a training or validation group and steps that are not negative.
absl::Status CheckMetricReportKey(const v1::MetricReport& r);

// A random RFC 4122 version-4 UUID in its usual text form.
std::string NewUuid();

// `m` serialized; INVALID_ARGUMENT (naming `what`) when it cannot be, or
// when it is longer than the database takes (`max_bytes`).
template <typename Message>
absl::StatusOr<std::string> SerializeRecord(
    const Message& m, absl::string_view what,
    size_t max_bytes = std::numeric_limits<size_t>::max()) {
  std::string out;
  if (!m.SerializeToString(&out) || out.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": the record cannot be stored (over 2 GiB, or over the ",
        "database's limit of ", max_bytes, " bytes)"));
  }
  return out;
}

// Parses a stored record; DATA_LOSS (naming `what`) when it is corrupt.
template <typename Message>
absl::Status ParseRecord(absl::string_view blob, Message* m,
                         absl::string_view what) {
  if (!m->ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
    return absl::DataLossError(
        absl::StrCat("store: the stored record of ", what, " is corrupt"));
  }
  return absl::OkStatus();
}

// A trial's validation points as "58,234,937", and back (DATA_LOSS for
// text that is not such a list).
std::string EncodePoints(const std::vector<int64_t>& points);
absl::StatusOr<std::vector<int64_t>> DecodePoints(absl::string_view text,
                                                  int64_t trial_id);

// Whether checkpoint `uuid` may go from state `from` to `to` (see
// Store::SetCheckpointState): OK to write, OK with *noop set when it is
// already there, else the error the store returns.
absl::Status CheckCheckpointTransition(absl::string_view uuid,
                                       v1::CheckpointState from,
                                       v1::CheckpointState to, bool* noop);

}  // namespace det::store

#endif  // DET_MASTER_STORE_RECORD_CODEC_H_
