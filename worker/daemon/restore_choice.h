// Which checkpoint a trial resumes from: the newest of the master's
// candidates whose files are intact, so a truncated or corrupt checkpoint
// (a crash mid-write on a filesystem without atomic rename, bit rot, a full
// disk) falls back to the previous one instead of failing every restart.
#ifndef DET_WORKER_DAEMON_RESTORE_CHOICE_H_
#define DET_WORKER_DAEMON_RESTORE_CHOICE_H_

#include <string>
#include <vector>

#include "det/v1/common.pb.h"

namespace det::worker {

// The uuid to restore ("" to start from scratch). Candidates are checked
// newest first under spec.checkpoint_dir() against their file_sha256; each
// one skipped adds a line to `notes` saying why. No candidates: a fresh
// start. (The master chooses the candidates and their order; this only
// checks their files.)
std::string ChooseRestoreCheckpoint(const v1::TrialSpec& spec,
                                    std::vector<std::string>* notes);

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_RESTORE_CHOICE_H_
