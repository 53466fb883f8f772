// The pure parts of the experiment administration commands
// (experiment_admin_cmd.cc): id lists, the describe --json shape for
// several experiments, what `list` shows, a fork's config, max-slots
// values. The commands themselves are added by AddExperimentAdminCommands
// (command.h).
#ifndef DET_CLI_EXPERIMENT_ADMIN_CMD_H_
#define DET_CLI_EXPERIMENT_ADMIN_CMD_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "det/v1/api.pb.h"

namespace det::cli {

// "3" or "1,2,3" (spaces around ids allowed): positive ids, in the order
// given, each once. INVALID_ARGUMENT naming the bad part.
absl::StatusOr<std::vector<int64_t>> ParseIdList(absl::string_view text);

// describe --json: one experiment's document as it is (an object), several
// as a JSON array of them, in the order asked.
std::string DescribeJson(const std::vector<std::string>& docs);

// describe without --json: the experiment's fields, its best trial's
// validation metrics and the trial table (cli/experiment_cmd.cc).
void PrintDescription(std::ostream& out, const v1::Experiment& e,
                      const v1::ListTrialsResponse& trials);

// The experiments `det experiment list` shows: archived ones only when
// `all`, as Determined.
v1::ListExperimentsResponse VisibleExperiments(
    const v1::ListExperimentsResponse& list, bool all);

// A fork's config: `base` (the parent's config, or --config-file's) with
// the KEY=VALUE overrides applied in order. INVALID_ARGUMENT for an
// override without '=' (pointing at --config-file for a file) or one the
// config cannot take.
absl::StatusOr<std::string> ForkConfigYaml(
    const std::string& base, const std::vector<std::string>& overrides);

// det experiment set max-slots: a positive number, or "none" (no limit),
// which is 0 on the wire.
absl::StatusOr<int32_t> ParseMaxSlots(absl::string_view text);

}  // namespace det::cli

#endif  // DET_CLI_EXPERIMENT_ADMIN_CMD_H_
