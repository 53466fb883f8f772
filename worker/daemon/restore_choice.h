// Which checkpoint a trial resumes from: the newest of the master's
// candidates whose files are intact, so a truncated or corrupt checkpoint
// (a crash mid-write on a filesystem without atomic rename, bit rot, a full
// disk) falls back to the previous one instead of failing every restart.
#ifndef DET_WORKER_DAEMON_RESTORE_CHOICE_H_
#define DET_WORKER_DAEMON_RESTORE_CHOICE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "det/v1/common.pb.h"

namespace det::worker {

// The uuid to restore ("" to start from scratch). Candidates are checked
// newest first under spec.checkpoint_dir() against their file_sha256; each
// one skipped adds a line to `notes` saying why. No candidates: a fresh
// start. (The master chooses the candidates and their order; this only
// checks their files.)
std::string ChooseRestoreCheckpoint(const v1::TrialSpec& spec,
                                    std::vector<std::string>* notes);

// A warm start (spec.warm_start, under spec.warm_start_dir) checked like a
// restore candidate: OK when its files match their SHA-256s. A run with a
// warm start it cannot use does not start (a fresh start would silently
// train something else than asked): the error says which checkpoint, where,
// and why. OK when the spec has no warm start or restores its own.
absl::Status CheckWarmStart(const v1::TrialSpec& spec);

// <warm_start_dir>/<uuid> of a usable warm start, "" for none (what the
// trial process gets as DET_WARM_START_DIR).
std::string WarmStartPath(const v1::TrialSpec& spec);

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_RESTORE_CHOICE_H_
