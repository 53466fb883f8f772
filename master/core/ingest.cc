// Ingest: what workers report about their trials, in batches of messages
// per stream, each batch one transaction with the worker's sequence number.
// Owns the rules for stored reports (idempotent, kept even for runs the
// master no longer tracks), a trial's best validation and the
// experiment's best trial, and feeding validations to the searcher.
//
// A message that can never be stored is rejected: this is decided by the
// store's first write for it (a metric report, a checkpoint, log lines),
// before the master's memory changes, so rejecting it leaves nothing to
// undo.
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"
#include "master/core/placement.h"
#include "master/core/worker_sessions.h"

namespace det::master {
namespace {

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

// What a worker message carries, for the log of a rejected one.
const char* MessageKind(const v1::WorkerMessage& m) {
  if (!m.has_trial_event()) return "message";
  switch (m.trial_event().event_case()) {
    case v1::TrialEvent::kStarted:
      return "start report";
    case v1::TrialEvent::kMetrics:
      return "metric report";
    case v1::TrialEvent::kCheckpoint:
      return "checkpoint report";
    case v1::TrialEvent::kLogs:
      return "log batch";
    case v1::TrialEvent::kExited:
      return "exit report";
    default:
      return "trial event";
  }
}

// True when `v` beats `best` for the searcher metric's direction.
bool Better(double v, double best, bool smaller_is_better) {
  return smaller_is_better ? v < best : v > best;
}

}  // namespace

bool IsPermanentMessageFailure(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<int64_t> Master::WorkerMessage(const std::string& worker_id,
                                              const v1::WorkerMessage& m) {
  WorkerBatchResult r = WorkerMessages(worker_id, absl::MakeConstSpan(&m, 1));
  if (!r.status.ok()) return r.status;
  return r.ack_seq;
}

Master::WorkerBatchResult Master::WorkerMessages(
    const std::string& worker_id, absl::Span<const v1::WorkerMessage> batch) {
  WorkerBatchResult result;
  absl::MutexLock l(&mu_);
  auto ait = workers_.find(worker_id);
  if (ait == workers_.end()) {
    result.status = absl::FailedPreconditionError("worker is not registered");
    return result;
  }
  WorkerSession& a = ait->second;
  a.last_seen = absl::Now();
  a.agent.set_last_heartbeat_us(NowUs());
  // Resent messages (already stored) and heartbeats (nothing to keep; a
  // later stored seq covers them) need no transaction.
  bool any_event = false;
  for (const v1::WorkerMessage& m : batch) {
    if (m.seq() > a.last_seq && !m.has_heartbeat()) {
      any_event = true;
      break;
    }
  }
  if (!any_event) {
    for (const v1::WorkerMessage& m : batch) {
      a.last_seq = std::max(a.last_seq, m.seq());
      result.ack_seq = std::max(result.ack_seq, m.seq());
    }
    return result;
  }
  // One transaction for the batch; each event in its own savepoint. A
  // message that can never be stored is rejected and acknowledged, and the
  // batch goes on; after any other failure the ones before it commit (and
  // are acknowledged), the rest is not acknowledged (the worker resends it
  // after reconnecting), and the master reloads: the failed event may have
  // changed memory before its write failed.
  struct Rejection {
    const v1::WorkerMessage* m;
    absl::Status why;
  };
  std::vector<Rejection> rejections;
  const int64_t first_seq = a.last_seq;
  const std::string seq_key = SeqKey(worker_id, a.incarnation);
  int64_t done_seq = first_seq;
  int64_t ack_seq = 0;
  absl::Status failed;
  absl::Status st = Transact([&]() -> absl::Status {
    for (const v1::WorkerMessage& m : batch) {
      if (m.seq() <= done_seq) {  // resent; already stored
        ack_seq = std::max(ack_seq, m.seq());
        continue;
      }
      if (m.has_trial_event() || m.has_checkpoints_deleted()) {
        absl::Status s = store_->RunInTransaction([&] {
          if (m.has_checkpoints_deleted()) {
            const auto& u = m.checkpoints_deleted().uuids();
            return MarkCheckpointsDeleted({u.begin(), u.end()});
          }
          return OnTrialEvent(worker_id, m.trial_event());
        });
        if (!s.ok() && IsPermanentMessageFailure(s)) {
          rejections.push_back({&m, s});
          NoteRejected(worker_id, m, s);
        } else if (!s.ok()) {
          failed = absl::Status(
              s.code(), absl::StrCat("message ", m.seq(), ": ", s.message()));
          break;
        }
      }
      done_seq = m.seq();
      ack_seq = done_seq;
    }
    if (done_seq == first_seq) return absl::OkStatus();
    return store_->SetWorkerSeq(seq_key, done_seq);
  });
  if (!st.ok()) {
    result.status = st;  // nothing of the batch is stored; master reloaded
    return result;
  }
  // Logged and counted once committed: a batch whose commit failed is
  // resent, and its bad messages rejected then.
  for (const Rejection& r : rejections) {
    std::fprintf(stderr,
                 "master: worker %s: rejected %s seq %lld of trial %lld "
                 "(run %d): %s; it can never be stored, so it is dropped "
                 "and acknowledged\n",
                 worker_id.c_str(), MessageKind(*r.m),
                 static_cast<long long>(r.m->seq()),
                 static_cast<long long>(r.m->trial_event().trial_id()),
                 r.m->trial_event().run_id(),
                 std::string(r.why.message()).c_str());
  }
  if (options_.metrics != nullptr) {
    options_.metrics->CountRejectedWorkerMessages(
        static_cast<int>(rejections.size()));
  }
  result.ack_seq = ack_seq;
  result.rejected = static_cast<int>(rejections.size());
  if (!failed.ok()) {
    // The prefix is stored; memory may hold part of the failed event.
    OnStoreFailure(failed);
    result.status = failed;
    return result;
  }
  workers_.at(worker_id).last_seq = done_seq;
  ScheduleLocked();
  return result;
}

void Master::NoteRejected(const std::string& worker_id,
                          const v1::WorkerMessage& m, const absl::Status& why) {
  v1::LogLine line;
  line.set_time_us(NowUs());
  line.set_source("master");
  line.set_line(absl::StrCat(
      "the master rejected a ", MessageKind(m), " of run ",
      m.trial_event().run_id(), " (worker ", worker_id, ", message ", m.seq(),
      "): ", absl::StatusCodeToString(why.code()), ": ", why.message(),
      "; it can never be stored and was dropped"));
  // In its own savepoint: a trial that does not exist (NOT_FOUND) has no
  // logs to note it in, and that is all.
  absl::Status s = store_->RunInTransaction(
      [&] { return store_->AddLogs(m.trial_event().trial_id(), {line}); });
  if (!s.ok() && !absl::IsNotFound(s)) {
    std::fprintf(stderr,
                 "master: noting a rejected message in the logs of trial "
                 "%lld: %s\n",
                 static_cast<long long>(m.trial_event().trial_id()),
                 std::string(s.message()).c_str());
  }
}

absl::Status Master::OnTrialEvent(const std::string& worker_id,
                                  const v1::TrialEvent& ev) {
  auto found = FindLiveTrial(ev.trial_id());
  if (!found.ok()) {
    // A trial the master no longer tracks: keep its reports and logs (they
    // are idempotent), ignore the rest.
    if (ev.has_metrics()) {
      v1::MetricReport r = ev.metrics();
      r.set_trial_id(ev.trial_id());
      return store_->AddMetricReport(r).status();
    }
    if (ev.has_logs()) {
      std::vector<v1::LogLine> lines(ev.logs().lines().begin(),
                                     ev.logs().lines().end());
      return store_->AddLogs(ev.trial_id(), lines);
    }
    return absl::OkStatus();
  }
  auto [e, t] = *found;
  const bool current = ev.run_id() == t->rec.run_id;
  switch (ev.event_case()) {
    case v1::TrialEvent::kMetrics: {
      v1::MetricReport r = ev.metrics();
      r.set_trial_id(ev.trial_id());
      return OnMetrics(e, t, r, current);
    }
    case v1::TrialEvent::kCheckpoint: {
      v1::Checkpoint c = ev.checkpoint();
      c.set_trial_id(ev.trial_id());
      DET_RETURN_IF_ERROR(store_->AddCheckpoint(c));
      if (!t->rec.trial.has_latest_checkpoint() ||
          NewerCheckpoint(c, t->rec.trial.latest_checkpoint())) {
        *t->rec.trial.mutable_latest_checkpoint() = c;
        DET_RETURN_IF_ERROR(SaveTrial(t));
      }
      Touch(e);
      return CollectCheckpoints(e, ev.trial_id());
    }
    case v1::TrialEvent::kLogs: {
      std::vector<v1::LogLine> lines(ev.logs().lines().begin(),
                                     ev.logs().lines().end());
      return store_->AddLogs(ev.trial_id(), lines);
    }
    case v1::TrialEvent::kExited: {
      if (!current) return absl::OkStatus();  // a superseded run
      DET_RETURN_IF_ERROR(OnExit(e, t, ev.exited()));
      // An ended trial is restored from no more: its spare checkpoints go.
      auto after = FindLiveTrial(ev.trial_id());
      if (after.ok() && IsTerminal(after->second->rec.trial.state()) &&
          !IsTerminal(after->first->rec.experiment.state())) {
        return CollectCheckpoints(after->first, ev.trial_id());
      }
      return absl::OkStatus();
    }
    case v1::TrialEvent::kStarted:
      if (current) {
        t->rec.trial.set_started_run(ev.run_id());
        return SaveTrial(t);
      }
      if (ev.run_id() < t->rec.run_id) {
        // A superseded run began after all (its StartTrial overtook the
        // worker's Hello): the master does not expect it, so it is killed.
        v1::MasterMessage m;
        auto* s = m.mutable_stop_trial();
        s->set_trial_id(ev.trial_id());
        s->set_run_id(ev.run_id());
        s->set_kill(true);
        SendToWorker(worker_id, std::move(m));
      }
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

absl::Status Master::OnMetrics(ExperimentState* e, TrialState* t,
                               const v1::MetricReport& r, bool current) {
  DET_ASSIGN_OR_RETURN(bool stored, store_->AddMetricReport(r));
  if (!stored) return absl::OkStatus();  // a duplicate
  if (options_.metrics != nullptr) options_.metrics->CountMetricReports(1);
  v1::Trial& pt = t->rec.trial;
  if (r.steps_completed() > pt.steps_completed()) {
    pt.set_steps_completed(r.steps_completed());
  }
  if (r.group() != v1::METRIC_GROUP_VALIDATION) return SaveTrial(t);
  *pt.mutable_latest_validation_metrics() = r.metrics();
  const std::string& metric = e->config.searcher.metric;
  auto mit = r.metrics().find(metric);
  if (mit == r.metrics().end()) {
    pt.set_message(absl::StrCat("validation at step ", r.steps_completed(),
                                " did not report the searcher metric '", metric,
                                "'"));
    return SaveTrial(t);
  }
  const double v = mit->second;
  const bool sib = e->config.searcher.smaller_is_better;
  // The checkpoint at these steps has its metric now: the best may change.
  DET_RETURN_IF_ERROR(CollectCheckpoints(e, pt.id()));
  if (!pt.has_best_metric() || Better(v, pt.best_metric(), sib)) {
    pt.set_has_best_metric(true);
    pt.set_best_metric(v);
    *pt.mutable_best_validation_metrics() = r.metrics();
    v1::Experiment& x = e->rec.experiment;
    auto bit = x.best_validation_metrics().find(metric);
    if (x.best_trial_id() == 0 || bit == x.best_validation_metrics().end() ||
        Better(v, bit->second, sib)) {
      x.set_best_trial_id(pt.id());
      *x.mutable_best_validation_metrics() = r.metrics();
    }
  }
  // How far the trial has come in the searcher's terms: batches, or the
  // reported time_metric. It feeds the largest validation point at or
  // below that which was not fed yet.
  const SearcherConfig& sc = e->config.searcher;
  double progress = static_cast<double>(r.steps_completed());
  if (sc.metric_length) {
    auto tm = r.metrics().find(sc.time_metric);
    if (tm == r.metrics().end()) {
      pt.set_message(absl::StrCat("validation at step ", r.steps_completed(),
                                  " did not report the time_metric '",
                                  sc.time_metric, "'"));
      return SaveTrial(t);
    }
    progress = tm->second;
  }
  std::optional<std::pair<int64_t, int64_t>> point;  // (point, units)
  for (const auto& [p, u] : t->units_at_batches) {
    if (static_cast<double>(p) > progress) break;
    if (p > pt.fed_point()) point = std::make_pair(p, u);
  }
  std::optional<JournalEvent> event;
  if (current && point && !pt.closing() && !IsTerminal(pt.state())) {
    if (pt.rung() >= 0) {
      int rung = 0;
      for (auto& [p, u] : t->units_at_batches) {
        if (p < point->first) rung++;
      }
      pt.set_rung(rung);
    }
    pt.set_fed_point(point->first);
    event = JournalEvent::Validation(t->rec.request_id, v, point->second);
  }
  DET_RETURN_IF_ERROR(SaveTrial(t));
  if (!event) return ProcessOps(e, {});
  DET_RETURN_IF_ERROR(FeedAndProcess(e, *event));
  // A trial counting a reported metric does not know its length: once the
  // searcher has no further point for it, the master stops it (its exit
  // then completes it, as after an ASHA stop).
  if (sc.metric_length && t->running && !pt.closing() &&
      !IsTerminal(pt.state()) &&
      (t->rec.validation_points.empty() ||
       t->rec.validation_points.back() <= pt.fed_point())) {
    pt.set_closing(true);
    StopTrialProcess(t, /*kill=*/false);
    DET_RETURN_IF_ERROR(SaveTrial(t));
  }
  return absl::OkStatus();
}

}  // namespace det::master
