// Carrying out what an experiment's searcher asks for: creating trials,
// setting their lengths, closing them, shutting down. Every call on the
// searcher goes through Feed, which journals it (searcher_journal.h), and
// SaveExperiment owns the snapshot policy: a snapshot every so many
// journaled events, never while operations are pending.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"
#include "master/core/trial_lengths.h"

namespace det::master {
namespace {

// Trials created per transaction when the searcher asks for many at once
// (an experiment's first trials): each chunk is committed and scheduled
// before the next is created, so a trial waits for at most one chunk's
// work between being queued and its StartTrial going out.
constexpr int64_t kCreateChunk = 8;

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

absl::StatusOr<searcher::Operations> Master::Feed(ExperimentState* e,
                                                  const JournalEvent& event) {
  searcher::Operations ops = ApplyJournalEvent(e->searcher.get(), event);
  DET_RETURN_IF_ERROR(store_->AppendSearcherEvent(e->rec.experiment.id(),
                                                  EncodeJournalEvent(event)));
  e->events_since_snapshot++;
  return ops;
}

absl::Status Master::FeedAndProcess(ExperimentState* e,
                                    const JournalEvent& event) {
  DET_ASSIGN_OR_RETURN(searcher::Operations ops, Feed(e, event));
  return ProcessOps(e, std::move(ops));
}

absl::Status Master::StartSearch(ExperimentState* e) {
  DET_ASSIGN_OR_RETURN(searcher::Operations ops, Feed(e, JournalEvent::Init()));
  return ProcessOps(e, std::move(ops), kCreateChunk);
}

absl::Status Master::SaveExperiment(ExperimentState* e, bool force,
                                    bool may_snapshot) {
  e->rec.experiment = Describe(*e);
  DET_RETURN_IF_ERROR(store_->UpdateExperiment(e->rec.experiment));
  if (!may_snapshot) return absl::OkStatus();
  // A snapshot costs time in proportion to the trials; the journal makes
  // it safe to take one only every so many events, so that cost stays
  // constant per event however large the search grows.
  int64_t every = options_.snapshot_every > 0
                      ? options_.snapshot_every
                      : 1 + static_cast<int64_t>(e->trials.size()) / 32;
  if (!force && e->events_since_snapshot < every) return absl::OkStatus();
  // A snapshot now would drop the journal entries that asked for the
  // pending operations; a restart finds them only by replaying those.
  if (!e->pending.empty()) return absl::OkStatus();
  e->events_since_snapshot = 0;
  SearcherSnapshot snap;
  snap.done = e->searcher_done;
  snap.failed = e->searcher_failed;
  snap.has_seed = true;
  snap.seed = e->config.experiment_seed;
  snap.warm_start_uuid = e->config.searcher.source_checkpoint_uuid;
  snap.searcher = e->searcher->Snapshot();
  e->rec.searcher_snapshot = EncodeSearcherSnapshot(snap);
  return store_->SaveSearcherSnapshot(e->rec.experiment.id(),
                                      e->rec.searcher_snapshot);
}

absl::Status Master::ProcessOps(ExperimentState* e, searcher::Operations ops,
                                int64_t max_creates) {
  // Breadth first, after whatever is pending: the order in which a
  // journal replay meets the operations (see Load).
  std::deque<searcher::Operation>& todo = e->pending;
  todo.insert(todo.end(), std::make_move_iterator(ops.begin()),
              std::make_move_iterator(ops.end()));
  int64_t created = 0;
  while (!todo.empty()) {
    if (max_creates >= 0 && created >= max_creates &&
        std::holds_alternative<searcher::Create>(todo.front())) {
      break;
    }
    searcher::Operation op = std::move(todo.front());
    todo.pop_front();
    searcher::Operations more;
    if (auto* c = std::get_if<searcher::Create>(&op)) {
      created++;
      TrialState t;
      t.rec.request_id = c->request_id;
      v1::Trial& pt = t.rec.trial;
      pt.set_experiment_id(e->rec.experiment.id());
      // Made while the experiment is paused (a trial ended after the
      // pause): PAUSED, as the pause leaves queued trials, so that
      // activating it queues this one too.
      const v1::State initial = e->rec.experiment.state() == v1::STATE_PAUSED
                                    ? v1::STATE_PAUSED
                                    : v1::STATE_QUEUED;
      pt.set_state(initial);
      ToProto(c->hparams, pt.mutable_hparams());
      pt.set_seed(c->seed);
      DET_ASSIGN_OR_RETURN(std::string warm,
                           WarmStartForCreate(e, c->warm_start_from));
      pt.set_warm_start_uuid(std::move(warm));
      pt.set_rung(e->config.searcher.name == SearcherName::kAdaptiveAsha ? 0
                                                                         : -1);
      DET_ASSIGN_OR_RETURN(int64_t id, store_->AddTrial(t.rec));
      pt.set_id(id);
      e->trial_by_request[c->request_id] = id;
      e->trial_counts[initial]++;
      e->trials.emplace(id, std::move(t));
      DET_ASSIGN_OR_RETURN(more, Feed(e, JournalEvent::Created(c->request_id)));
    } else if (auto* v = std::get_if<searcher::ValidateAfter>(&op)) {
      auto rit = e->trial_by_request.find(v->request_id);
      if (rit == e->trial_by_request.end()) continue;
      TrialState& t = e->trials.at(rit->second);
      SetTrialLength(e->config, RecordsPerEpoch(*e), *v, &t.rec);
      t.units_at_batches =
          UnitsAtBatches(e->config, RecordsPerEpoch(*e), t.rec);
      DET_RETURN_IF_ERROR(SaveTrial(&t));
      if (e->rec.experiment.state() == v1::STATE_ACTIVE &&
          t.rec.trial.state() == v1::STATE_QUEUED) {
        Enqueue(e, &t);
      }
    } else if (auto* cl = std::get_if<searcher::Close>(&op)) {
      auto rit = e->trial_by_request.find(cl->request_id);
      if (rit == e->trial_by_request.end()) continue;
      TrialState& t = e->trials.at(rit->second);
      if (IsTerminal(t.rec.trial.state()) || t.rec.trial.closing()) continue;
      t.rec.trial.set_closing(true);
      if (t.running) {
        StopTrialProcess(&t, /*kill=*/false);
        DET_RETURN_IF_ERROR(SaveTrial(&t));
      } else {
        scheduler_.Dequeue(t.rec.trial.id());
        SetTrialState(e, &t, v1::STATE_COMPLETED);
        t.rec.trial.set_end_time_us(NowUs());
        DET_RETURN_IF_ERROR(SaveTrial(&t));
        DET_ASSIGN_OR_RETURN(more,
                             Feed(e, JournalEvent::Closed(cl->request_id)));
      }
    } else if (auto* sd = std::get_if<searcher::Shutdown>(&op)) {
      e->searcher_done = true;
      e->searcher_failed = sd->failure;
    }
    todo.insert(todo.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
  }
  // A chunk's trials are queued already: a snapshot (O(trials)) would hold
  // back their StartTrials; CarryOutPending takes it after the last chunk.
  DET_RETURN_IF_ERROR(SaveExperiment(e, false, max_creates < 0));
  DET_RETURN_IF_ERROR(MaybeFinish(e));
  Touch(e);
  return absl::OkStatus();
}

absl::Status Master::CarryOutPending(ExperimentState* e) {
  const int64_t id = e->rec.experiment.id();
  while (true) {
    // Looked up again each round: a failed chunk reloads the master.
    e = FindExperiment(id);
    if (e == nullptr || e->pending.empty()) break;
    absl::Status st = Transact(
        [&]() -> absl::Status { return ProcessOps(e, {}, kCreateChunk); });
    if (!st.ok()) {
      return absl::Status(
          st.code(),
          absl::StrCat("experiment ", id,
                       ": creating its trials: ", st.message(),
                       " (those not created yet are created once the store "
                       "takes writes again)"));
    }
    ScheduleLocked();
  }
  if (e == nullptr) return absl::OkStatus();
  // The snapshot the chunks left out, if one is due.
  return Transact([&]() -> absl::Status { return SaveExperiment(e); });
}

}  // namespace det::master
