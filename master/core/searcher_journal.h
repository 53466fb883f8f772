// The searcher journal: every call the master makes on an experiment's
// searcher, written to the store as one entry, so that a restarted (or
// reloaded) master replays the entries after the last snapshot on the
// restored searcher and reaches the state it had. Also the snapshot that
// ends a journal. Pure: no store, no lock.
//
// The text forms are the stored format (JSON); DecodeJournalEvent refuses
// an entry it does not understand instead of guessing.
#ifndef DET_MASTER_CORE_SEARCHER_JOURNAL_H_
#define DET_MASTER_CORE_SEARCHER_JOURNAL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "master/searcher/searcher.h"

namespace det::master {

struct JournalEvent {
  enum class Kind { kInit, kCreated, kValidation, kClosed, kExited };
  Kind kind = Kind::kInit;
  searcher::RequestId request_id = 0;
  double metric = 0;   // kValidation; NaN and infinities survive the codec
  int64_t length = 0;  // kValidation, in searcher units
  searcher::ExitedReason exited = searcher::ExitedReason::kErrored;  // kExited

  static JournalEvent Init() { return {}; }
  static JournalEvent Created(searcher::RequestId r);
  static JournalEvent Validation(searcher::RequestId r, double metric,
                                 int64_t length);
  static JournalEvent Closed(searcher::RequestId r);
  static JournalEvent Exited(searcher::RequestId r, searcher::ExitedReason why);
};

std::string EncodeJournalEvent(const JournalEvent& ev);
// DATA_LOSS for text that is not an entry this master wrote.
absl::StatusOr<JournalEvent> DecodeJournalEvent(const std::string& text);

// The one searcher call an entry stands for. The same entry on the same
// searcher state gives the same operations.
searcher::Operations ApplyJournalEvent(searcher::SearchMethod* s,
                                       const JournalEvent& ev);

// What an experiment keeps of its searcher at a snapshot: its state, and
// whether it has shut down (it says so once, so that must survive too).
struct SearcherSnapshot {
  bool done = false;
  bool failed = false;
  // The experiment seed the searcher was made with (the user's YAML is
  // stored as written, so a seed the master picked lives here).
  bool has_seed = false;
  uint64_t seed = 0;
  // The warm-start checkpoint every trial of the experiment starts from,
  // as resolved at creation (searcher.source_trial_id names a trial whose
  // latest checkpoint changes); empty for none.
  std::string warm_start_uuid;
  std::string searcher;  // SearchMethod::Snapshot()
};

std::string EncodeSearcherSnapshot(const SearcherSnapshot& s);
absl::StatusOr<SearcherSnapshot> DecodeSearcherSnapshot(
    const std::string& text);

}  // namespace det::master

#endif  // DET_MASTER_CORE_SEARCHER_JOURNAL_H_
