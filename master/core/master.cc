#include "master/core/master.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/version.h"
#include "master/core/spec_builder.h"

namespace det::master {
namespace {

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

#define DET_RETURN_IF_ERROR(expr) \
  do {                            \
    absl::Status _st = (expr);    \
    if (!_st.ok()) return _st;    \
  } while (0)

bool IsLiveTrialState(v1::State s) { return !IsTerminal(s); }

// A metric value for the journal. The journal is JSON, which has no NaN or
// infinities (det::Value writes them as null, which reads back as no
// number at all): those are kept as strings.
Value JournalNumber(double d) {
  if (std::isfinite(d)) return Value(d);
  return Value(std::isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
}

// Reads back what JournalNumber wrote. A null (a NaN or infinity journaled
// before they were kept as strings) reads as NaN, which every searcher
// ranks last.
double JournalNumberValue(const Value& v) {
  if (v.is_number()) return v.as_number();
  double d = 0;
  if (v.is_string() && absl::SimpleAtod(v.as_string(), &d)) return d;
  return std::numeric_limits<double>::quiet_NaN();
}

// Trials created per transaction when the searcher asks for many at once
// (an experiment's first trials): each chunk is committed and scheduled
// before the next is created, so a trial waits for at most one chunk's
// work between being queued and its StartTrial going out. Small, because
// a commit that stalls (a WAL checkpoint, the CPU taken away) delays every
// trial of its chunk; a chunk costs ~2 commits, tens of microseconds.
constexpr int64_t kCreateChunk = 8;

// One searcher call, written as a journal entry so it can be replayed on
// the restored snapshot after a restart. Pure: the same event on the same
// searcher state gives the same operations.
searcher::Operations ApplySearcherEvent(searcher::SearchMethod* s,
                                        const Value& ev) {
  const std::string& kind = ev["e"].as_string();
  int64_t r =
      ev["r"].is_number() ? static_cast<int64_t>(ev["r"].as_number()) : 0;
  if (kind == "init") return s->InitialOperations();
  if (kind == "created") return s->TrialCreated(r);
  if (kind == "val") {
    return s->ValidationCompleted(r, JournalNumberValue(ev["m"]),
                                  static_cast<int64_t>(ev["l"].as_number()));
  }
  if (kind == "closed") return s->TrialClosed(r);
  return s->TrialExitedEarly(r, static_cast<searcher::ExitedReason>(
                                    static_cast<int>(ev["why"].as_number())));
}

Value SearcherEvent(const char* kind, int64_t request_id = 0) {
  return Value(ValueMap{{"e", Value(kind)}, {"r", Value(request_id)}});
}

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

std::string StateName(v1::State s) {
  std::string n = v1::State_Name(s);
  return n.rfind("STATE_", 0) == 0 ? n.substr(6) : n;
}

}  // namespace

bool IsTerminal(v1::State s) {
  return s == v1::STATE_COMPLETED || s == v1::STATE_CANCELED ||
         s == v1::STATE_ERROR;
}

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

// ---------------------------------------------------------------- outbox

void AgentOutbox::Push(v1::MasterMessage m) {
  absl::MutexLock l(&mu_);
  if (!closed_) queue_.push_back(std::move(m));
}

std::optional<v1::MasterMessage> AgentOutbox::Pop(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closed_ || !queue_.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (queue_.empty() || closed_) return std::nullopt;
  v1::MasterMessage m = std::move(queue_.front());
  queue_.pop_front();
  return m;
}

void AgentOutbox::Close() {
  absl::MutexLock l(&mu_);
  closed_ = true;
}

bool AgentOutbox::closed() const {
  absl::MutexLock l(&mu_);
  return closed_;
}

// ---------------------------------------------------------------- life

Master::Master(std::unique_ptr<store::Store> store, MasterOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      start_time_(absl::Now()) {}

absl::StatusOr<std::unique_ptr<Master>> Master::Create(
    std::unique_ptr<store::Store> store, MasterOptions options) {
  std::unique_ptr<Master> m(new Master(std::move(store), std::move(options)));
  auto id = m->store_->ClusterId();
  if (!id.ok()) return id.status();
  m->cluster_id_ = *id;
  {
    absl::MutexLock l(&m->mu_);
    DET_RETURN_IF_ERROR(m->Load());
    for (auto& [id, e] : m->experiments_) {
      if (!e->pending.empty()) {
        DET_RETURN_IF_ERROR(m->CarryOutPending(e.get()));
      }
    }
  }
  Master* p = m.get();
  m->ticker_ = std::thread([p] {
    while (true) {
      {
        absl::MutexLock l(&p->mu_);
        auto stop = [p]() ABSL_SHARED_LOCKS_REQUIRED(p->mu_) {
          return p->stopping_;
        };
        p->mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Seconds(1));
        if (p->stopping_) return;
      }
      p->Tick();
    }
  });
  return m;
}

Master::~Master() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    for (auto& [id, a] : agents_) {
      if (a.outbox) a.outbox->Close();
    }
    changed_.SignalAll();
  }
  if (ticker_.joinable()) ticker_.join();
}

absl::Status Master::Load() {
  loaded_at_ = absl::Now();
  auto records = store_->ListNonTerminalExperiments();
  if (!records.ok()) return records.status();
  for (auto& rec : *records) {
    auto e = std::make_unique<ExperimentState>();
    int64_t id = rec.experiment.id();
    auto cfg = ParseStoredExperimentConfig(rec.experiment.config_yaml());
    if (!cfg.ok()) {
      return absl::DataLossError(absl::StrCat(
          "experiment ", id,
          ": stored config no longer parses: ", cfg.status().message()));
    }
    e->config = std::move(*cfg);
    Value snap;
    if (!rec.searcher_snapshot.empty()) {
      auto parsed = ParseJson(rec.searcher_snapshot);
      if (!parsed.ok() || !(*parsed)["searcher"].is_string()) {
        return absl::DataLossError(absl::StrCat(
            "experiment ", id, ": stored searcher snapshot is unreadable"));
      }
      snap = std::move(*parsed);
      if (snap["seed"].is_int()) {
        e->config.experiment_seed =
            static_cast<uint64_t>(snap["seed"].as_int());
        e->config.has_experiment_seed = true;
      }
    }
    auto s = searcher::NewSearchMethod(e->config);
    if (!s.ok()) return s.status();
    e->searcher = std::move(*s);
    if (snap.is_map()) {
      DET_RETURN_IF_ERROR(e->searcher->Restore(snap["searcher"].as_string()));
      e->searcher_done = snap["done"] == Value(true);
      e->searcher_failed = snap["failed"] == Value(true);
    }
    // Events after the snapshot: their effects (trials created, stopped)
    // are in the store already; replaying them brings the searcher to the
    // state it had.
    auto events = store_->ListSearcherEvents(id);
    if (!events.ok()) return events.status();
    // The operations the replayed events ask for, in the order ProcessOps
    // carried them out (breadth first).
    std::vector<searcher::Operation> replayed;
    for (const std::string& text : *events) {
      auto ev = ParseJson(text);
      if (!ev.ok() || !(*ev)["e"].is_string()) {
        return absl::DataLossError(absl::StrCat(
            "experiment ", id, ": unreadable searcher journal entry: ", text));
      }
      for (searcher::Operation& op :
           ApplySearcherEvent(e->searcher.get(), *ev)) {
        if (auto* sd = std::get_if<searcher::Shutdown>(&op)) {
          e->searcher_done = true;
          e->searcher_failed = sd->failure;
        }
        replayed.push_back(std::move(op));
      }
    }
    e->events_since_snapshot = static_cast<int64_t>(events->size());
    e->rec = std::move(rec);
    e->order = id;
    auto trials = store_->ListTrials(id);
    if (!trials.ok()) return trials.status();
    for (auto& tr : *trials) {
      TrialState t;
      t.rec = std::move(tr);
      const v1::Trial& pt = t.rec.trial;
      e->trial_by_request[t.rec.request_id] = pt.id();
      t.units_at_batches =
          UnitsAtBatches(e->config, records_per_epoch(*e), t.rec);
      if (pt.state() == v1::STATE_ACTIVE) {
        // It was running when the master stopped: wait for its worker to
        // come back and claim it, or restart it after agent_timeout.
        t.running = true;
        t.awaiting_agent = true;
        if (!pt.agent_id().empty()) t.workers.push_back(pt.agent_id());
      }
      e->trial_counts[pt.state()]++;
      e->trials.emplace(pt.id(), std::move(t));
    }
    // Every operation up to the first Create without a stored trial was
    // carried out before the master stopped (each transaction carries out
    // a prefix of them); that Create and everything after it were pending
    // (a burst of creations cut off between its chunks). Master::Create
    // carries them out before serving.
    for (size_t i = 0; i < replayed.size(); ++i) {
      auto* c = std::get_if<searcher::Create>(&replayed[i]);
      if (c != nullptr && !e->trial_by_request.count(c->request_id)) {
        e->pending.assign(std::make_move_iterator(replayed.begin() + i),
                          std::make_move_iterator(replayed.end()));
        break;
      }
    }
    ExperimentState* ep = e.get();
    experiments_[id] = std::move(e);
    for (auto& [tid, t] : ep->trials) {
      if (t.rec.trial.state() == v1::STATE_QUEUED &&
          ep->rec.experiment.state() == v1::STATE_ACTIVE) {
        Enqueue(ep, &t);
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- lookups

Master::ExperimentState* Master::FindExperiment(int64_t id) {
  auto it = experiments_.find(id);
  return it == experiments_.end() ? nullptr : it->second.get();
}

absl::StatusOr<std::pair<Master::ExperimentState*, Master::TrialState*>>
Master::FindLiveTrial(int64_t trial_id) {
  for (auto& [id, e] : experiments_) {
    auto it = e->trials.find(trial_id);
    if (it != e->trials.end()) return std::make_pair(e.get(), &it->second);
  }
  return absl::NotFoundError(absl::StrCat("trial ", trial_id, " not found"));
}

void Master::Touch(ExperimentState* e) {
  e->version++;
  changed_.SignalAll();
}

v1::Experiment Master::Describe(const ExperimentState& e) const {
  v1::Experiment x = e.rec.experiment;
  auto count = [&](v1::State s) {
    auto it = e.trial_counts.find(s);
    return it == e.trial_counts.end() ? 0 : it->second;
  };
  int total = static_cast<int>(e.trials.size());
  int queued = count(v1::STATE_QUEUED), completed = count(v1::STATE_COMPLETED),
      errored = count(v1::STATE_ERROR), canceled = count(v1::STATE_CANCELED),
      paused = count(v1::STATE_PAUSED);
  x.set_num_trials(total);
  x.set_trials_queued(queued);
  x.set_trials_running(total - queued - completed - errored - canceled -
                       paused);
  x.set_trials_completed(completed);
  x.set_trials_errored(errored);
  x.set_trials_canceled(canceled);
  x.set_progress(x.state() == v1::STATE_COMPLETED ? 1.0
                                                  : e.searcher->Progress());
  return x;
}

void Master::SetTrialState(ExperimentState* e, TrialState* t, v1::State s) {
  e->trial_counts[t->rec.trial.state()]--;
  e->trial_counts[s]++;
  t->rec.trial.set_state(s);
}

// ---------------------------------------------------------------- saving

absl::StatusOr<searcher::Operations> Master::Feed(ExperimentState* e,
                                                  const Value& event) {
  searcher::Operations ops = ApplySearcherEvent(e->searcher.get(), event);
  DET_RETURN_IF_ERROR(
      store_->AppendSearcherEvent(e->rec.experiment.id(), event.ToJson()));
  e->events_since_snapshot++;
  return ops;
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
  // The searcher's own state, plus whether it has shut down (it says so
  // only once, so that must survive a restart too).
  e->rec.searcher_snapshot =
      Value(ValueMap{{"done", Value(e->searcher_done)},
                     {"failed", Value(e->searcher_failed)},
                     {"seed",
                      Value(static_cast<int64_t>(e->config.experiment_seed))},
                     {"searcher", Value(e->searcher->Snapshot())}})
          .ToJson();
  return store_->SaveSearcherSnapshot(e->rec.experiment.id(),
                                      e->rec.searcher_snapshot);
}

absl::Status Master::SaveTrial(ExperimentState* e, TrialState* t) {
  return store_->UpdateTrial(t->rec);
}

// ---------------------------------------------------------------- searcher

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
      pt.set_state(v1::STATE_QUEUED);
      ToProto(c->hparams, pt.mutable_hparams());
      pt.set_seed(c->seed);
      pt.set_rung(e->config.searcher.name == SearcherName::kAdaptiveAsha ? 0
                                                                         : -1);
      auto id = store_->AddTrial(t.rec);
      if (!id.ok()) return id.status();
      pt.set_id(*id);
      e->trial_by_request[c->request_id] = *id;
      e->trial_counts[v1::STATE_QUEUED]++;
      e->trials.emplace(*id, std::move(t));
      auto fed = Feed(e, SearcherEvent("created", c->request_id));
      if (!fed.ok()) return fed.status();
      more = std::move(*fed);
    } else if (auto* v = std::get_if<searcher::ValidateAfter>(&op)) {
      auto rit = e->trial_by_request.find(v->request_id);
      if (rit == e->trial_by_request.end()) continue;
      TrialState& t = e->trials.at(rit->second);
      SetTrialLength(e->config, records_per_epoch(*e), *v, &t.rec);
      t.units_at_batches =
          UnitsAtBatches(e->config, records_per_epoch(*e), t.rec);
      DET_RETURN_IF_ERROR(SaveTrial(e, &t));
      if (e->rec.experiment.state() == v1::STATE_ACTIVE &&
          t.rec.trial.state() == v1::STATE_QUEUED) {
        Enqueue(e, &t);
      }
    } else if (auto* cl = std::get_if<searcher::Close>(&op)) {
      auto rit = e->trial_by_request.find(cl->request_id);
      if (rit == e->trial_by_request.end()) continue;
      TrialState& t = e->trials.at(rit->second);
      if (IsTerminal(t.rec.trial.state()) || t.closing) continue;
      t.closing = true;
      if (t.running) {
        StopTrialProcess(&t, /*kill=*/false);
      } else {
        scheduler_.Dequeue(t.rec.trial.id());
        SetTrialState(e, &t, v1::STATE_COMPLETED);
        t.rec.trial.set_end_time_us(NowUs());
        DET_RETURN_IF_ERROR(SaveTrial(e, &t));
        auto fed = Feed(e, SearcherEvent("closed", cl->request_id));
        if (!fed.ok()) return fed.status();
        more = std::move(*fed);
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

int64_t Master::records_per_epoch(const ExperimentState& e) const {
  if (e.config.records_per_epoch > 0) return e.config.records_per_epoch;
  const Value& limit = Value(e.config.data)["train_limit"];
  if (limit.is_number() && limit.as_number() > 0) {
    return std::min<int64_t>(static_cast<int64_t>(limit.as_number()),
                             options_.default_records_per_epoch);
  }
  return options_.default_records_per_epoch;
}

// ---------------------------------------------------------------- scheduling

void Master::Enqueue(ExperimentState* e, TrialState* t) {
  t->queued_at = absl::Now();
  scheduler::Request r;
  r.trial_id = t->rec.trial.id();
  r.experiment_id = e->rec.experiment.id();
  r.slots = static_cast<int32_t>(e->config.resources.slots_per_trial);
  r.priority = static_cast<int32_t>(e->config.resources.priority);
  r.order = e->order * 1000000000LL + t->rec.trial.id();
  if (e->config.resources.max_slots) {
    r.experiment_max_slots =
        static_cast<int32_t>(*e->config.resources.max_slots);
  }
  scheduler_.Enqueue(r);
}

void Master::StopTrialProcess(TrialState* t, bool kill) {
  for (const std::string& w : t->workers) {
    auto it = agents_.find(w);
    if (it == agents_.end() || !it->second.outbox) continue;
    v1::MasterMessage m;
    auto* s = m.mutable_stop_trial();
    s->set_trial_id(t->rec.trial.id());
    s->set_kill(kill);
    s->set_timeout_ms(absl::ToInt64Milliseconds(options_.stop_timeout));
    it->second.outbox->Push(std::move(m));
  }
  t->stop_sent = true;
}

void Master::ScheduleLocked() {
  std::vector<scheduler::Placement> placements = scheduler_.Schedule();
  // Placed trials, saved together once every StartTrial is out.
  std::vector<std::pair<ExperimentState*, TrialState*>> placed;
  placed.reserve(placements.size());
  for (const scheduler::Placement& p : placements) {
    auto found = FindLiveTrial(p.trial_id);
    if (!found.ok()) {
      scheduler_.Release(p.trial_id);
      continue;
    }
    auto [e, t] = *found;
    v1::Trial& pt = t->rec.trial;
    // A trial that has never run has no checkpoint to restore.
    bool ran_before = t->rec.run_id > 0;
    t->rec.run_id++;
    SetTrialState(e, t, v1::STATE_ACTIVE);
    if (pt.start_time_us() == 0) pt.set_start_time_us(NowUs());
    pt.clear_slot_ids();
    t->workers.clear();
    t->running = true;
    t->stop_sent = false;
    t->awaiting_agent = false;
    std::string rendezvous;
    if (e->config.resources.slots_per_trial > 1) {
      const AgentState& first = agents_.at(p.slots.begin()->first);
      rendezvous =
          absl::StrCat(first.host, ":", RendezvousPort(pt.id(), t->rec.run_id));
    }
    // Newest first; a few are enough to get past a corrupt one.
    std::vector<v1::Checkpoint> candidates;
    if (ran_before) {
      if (auto all = store_->ListCheckpoints(pt.id()); all.ok()) {
        candidates = std::move(*all);
        std::sort(candidates.begin(), candidates.end(),
                  [](const v1::Checkpoint& a, const v1::Checkpoint& b) {
                    return a.steps_completed() > b.steps_completed();
                  });
        if (candidates.size() > 5) candidates.resize(5);
      }
    }
    int32_t rank = 0;
    for (const auto& [worker, slots] : p.slots) {
      t->workers.push_back(worker);
      for (int32_t s : slots) pt.add_slot_ids(s);
      v1::MasterMessage m;
      v1::StartTrial* st = m.mutable_start_trial();
      BuildSpec(e->rec, e->config, t->rec,
                CheckpointDir(e->config, options_.checkpoint_root),
                records_per_epoch(*e), st->mutable_spec());
      st->mutable_spec()->set_rendezvous(rendezvous);
      for (const v1::Checkpoint& c : candidates) {
        *st->mutable_spec()->add_restore_candidates() = c;
      }
      st->mutable_spec()->set_first_rank(rank);
      for (int32_t s : slots) st->add_slot_ids(s);
      rank += static_cast<int32_t>(slots.size());
      auto it = agents_.find(worker);
      if (it != agents_.end() && it->second.outbox) {
        it->second.outbox->Push(std::move(m));
      }
    }
    // Ready -> StartTrial on the worker's stream (after the push above).
    if (options_.metrics != nullptr && t->queued_at != absl::Time()) {
      options_.metrics->ObserveSchedulingLatency(absl::Now() - t->queued_at);
    }
    pt.set_agent_id(t->workers.empty() ? "" : t->workers.front());
    placed.emplace_back(e, t);
  }
  if (!placed.empty()) {
    // One transaction for the whole pass: a commit per start would hold
    // back the StartTrials of the next chunk of a burst.
    absl::Status st = store_->RunInTransaction([&]() -> absl::Status {
      for (auto [e, t] : placed) DET_RETURN_IF_ERROR(SaveTrial(e, t));
      return absl::OkStatus();
    });
    if (!st.ok()) {
      std::fprintf(stderr, "master: saving %zu placed trials: %s\n",
                   placed.size(), std::string(st.message()).c_str());
    }
    for (auto [e, t] : placed) Touch(e);
  }
  // Trials that can never fit on this cluster are reported on their
  // experiment rather than left pending silently.
  std::set<int64_t> unschedulable;
  for (int64_t id : scheduler_.Unschedulable()) unschedulable.insert(id);
  // The walk below is over every trial: skip it in the common case where
  // nothing is unschedulable now and no message from before needs clearing.
  if (unschedulable.empty() && !unschedulable_reported_) return;
  unschedulable_reported_ = !unschedulable.empty();
  for (auto& [eid, e] : experiments_) {
    if (IsTerminal(e->rec.experiment.state())) continue;
    std::string msg;
    for (auto& [tid, t] : e->trials) {
      if (unschedulable.count(tid)) {
        msg = absl::StrFormat(
            "trial %d needs %d slots, more than the %d slots of all "
            "connected workers together; it waits for more workers",
            tid, e->config.resources.slots_per_trial, scheduler_.TotalSlots());
        break;
      }
    }
    std::string& cur = *e->rec.experiment.mutable_message();
    bool had = cur.rfind("trial ", 0) == 0 && cur.find("needs") != cur.npos;
    if (!msg.empty() && cur != msg) {
      cur = msg;
      Touch(e.get());
    } else if (msg.empty() && had) {
      cur.clear();
      Touch(e.get());
    }
  }
}

// ---------------------------------------------------------------- finish

absl::Status Master::MaybeFinish(ExperimentState* e) {
  v1::Experiment& x = e->rec.experiment;
  v1::State s = x.state();
  if (IsTerminal(s)) return absl::OkStatus();
  // From the counts: this runs after every event, so no walk over trials.
  auto count = [&](v1::State st) {
    auto it = e->trial_counts.find(st);
    return it == e->trial_counts.end() ? 0 : it->second;
  };
  int completed = count(v1::STATE_COMPLETED);
  bool any_live = static_cast<int>(e->trials.size()) - completed -
                      count(v1::STATE_ERROR) - count(v1::STATE_CANCELED) >
                  0;
  bool any_completed = completed > 0;
  v1::State final_state = v1::STATE_UNSPECIFIED;
  if (s == v1::STATE_STOPPING_CANCELED || s == v1::STATE_STOPPING_KILLED) {
    for (auto& [id, t] : e->trials) {
      if (t.running) return absl::OkStatus();
    }
    for (auto& [id, t] : e->trials) {
      if (IsLiveTrialState(t.rec.trial.state())) {
        scheduler_.Dequeue(id);
        SetTrialState(e, &t, v1::STATE_CANCELED);
        t.rec.trial.set_end_time_us(NowUs());
        DET_RETURN_IF_ERROR(SaveTrial(e, &t));
      }
    }
    final_state = v1::STATE_CANCELED;
  } else if (e->searcher_done && !any_live) {
    final_state = any_completed || e->trials.empty() ? v1::STATE_COMPLETED
                                                     : v1::STATE_ERROR;
  } else {
    return absl::OkStatus();
  }
  x.set_state(final_state);
  x.set_end_time_us(NowUs());
  if (final_state == v1::STATE_ERROR) x.set_message("every trial failed");
  DET_RETURN_IF_ERROR(SaveExperiment(e, /*force=*/true));
  Touch(e);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- API

absl::StatusOr<v1::Experiment> Master::CreateExperiment(
    const std::string& yaml, const std::string& context, bool activate,
    bool validate_only, std::vector<std::string>* warnings) {
  auto cfg = ParseExperimentConfig(yaml);
  if (!cfg.ok()) return cfg.status();
  if (!cfg->has_experiment_seed) {
    // Unseeded searches must not all sample the same trials. The seed is
    // kept with the searcher's snapshot (the user's YAML is stored as
    // written), so a restarted master continues the same search.
    absl::BitGen gen;
    cfg->experiment_seed = absl::Uniform<uint32_t>(gen, 0, 1u << 31);
    cfg->has_experiment_seed = true;
  }
  if (warnings != nullptr) {
    for (const ConfigError& w : cfg->warnings)
      warnings->push_back(w.ToString());
  }
  auto srch = searcher::NewSearchMethod(*cfg);
  if (!srch.ok()) {
    return absl::InvalidArgumentError(srch.status().message());
  }
  auto e = std::make_unique<ExperimentState>();
  e->config = std::move(*cfg);
  e->searcher = std::move(*srch);
  v1::Experiment& x = e->rec.experiment;
  x.set_name(e->config.name);
  x.set_description(e->config.description);
  for (const auto& l : e->config.labels) x.add_labels(l);
  x.set_state(activate ? v1::STATE_ACTIVE : v1::STATE_PAUSED);
  x.set_searcher(SearcherNameString(e->config.searcher.name));
  x.set_metric(e->config.searcher.metric);
  x.set_smaller_is_better(e->config.searcher.smaller_is_better);
  x.set_config_yaml(yaml);
  x.set_start_time_us(NowUs());
  x.set_priority(static_cast<int32_t>(e->config.resources.priority));
  e->rec.context = context;
  if (validate_only) return x;

  absl::MutexLock l(&mu_);
  ExperimentState* ep = e.get();
  absl::Status st = store_->RunInTransaction([&]() -> absl::Status {
    auto id = store_->AddExperiment(e->rec);
    if (!id.ok()) return id.status();
    x.set_id(*id);
    ep->order = *id;
    experiments_[*id] = std::move(e);
    // The first snapshot carries the experiment seed; it must exist before
    // any journal entry is replayed. It is taken before "init", so the
    // journal keeps "init" until every trial it asks for is created.
    DET_RETURN_IF_ERROR(SaveExperiment(ep, /*force=*/true));
    if (!activate) return absl::OkStatus();
    auto fed = Feed(ep, SearcherEvent("init"));
    if (!fed.ok()) return fed.status();
    return ProcessOps(ep, std::move(*fed), kCreateChunk);
  });
  if (!st.ok()) {
    experiments_.erase(ep->rec.experiment.id());
    return st;
  }
  ScheduleLocked();
  // The experiment is stored; the rest of its first trials follow.
  DET_RETURN_IF_ERROR(CarryOutPending(ep));
  return Describe(*ep);
}

absl::Status Master::CarryOutPending(ExperimentState* e) {
  while (!e->pending.empty()) {
    absl::Status st = store_->RunInTransaction(
        [&]() -> absl::Status { return ProcessOps(e, {}, kCreateChunk); });
    if (!st.ok()) {
      return absl::Status(
          st.code(),
          absl::StrCat("experiment ", e->rec.experiment.id(),
                       ": creating its trials: ", st.message(),
                       " (those not created yet are created when the "
                       "master restarts)"));
    }
    ScheduleLocked();
  }
  // The snapshot the chunks left out, if one is due.
  return store_->RunInTransaction(
      [&]() -> absl::Status { return SaveExperiment(e); });
}

absl::StatusOr<v1::Experiment> Master::GetExperiment(int64_t id) {
  {
    absl::MutexLock l(&mu_);
    if (ExperimentState* e = FindExperiment(id)) return Describe(*e);
  }
  auto rec = store_->GetExperiment(id);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) {
      return absl::NotFoundError(absl::StrCat("experiment ", id, " not found"));
    }
    return rec.status();
  }
  return rec->experiment;
}

absl::StatusOr<std::vector<v1::Experiment>> Master::ListExperiments() {
  auto list = store_->ListExperiments();
  if (!list.ok()) return list.status();
  absl::MutexLock l(&mu_);
  for (v1::Experiment& x : *list) {
    if (ExperimentState* e = FindExperiment(x.id())) x = Describe(*e);
  }
  return list;
}

absl::StatusOr<std::vector<v1::Trial>> Master::ListTrials(
    int64_t experiment_id) {
  {
    absl::MutexLock l(&mu_);
    if (ExperimentState* e = FindExperiment(experiment_id)) {
      std::vector<v1::Trial> out;
      for (auto& [id, t] : e->trials) out.push_back(t.rec.trial);
      return out;
    }
  }
  auto rec = store_->GetExperiment(experiment_id);
  if (!rec.ok()) {
    return absl::NotFoundError(
        absl::StrCat("experiment ", experiment_id, " not found"));
  }
  auto trials = store_->ListTrials(experiment_id);
  if (!trials.ok()) return trials.status();
  std::vector<v1::Trial> out;
  for (auto& t : *trials) out.push_back(t.trial);
  return out;
}

absl::StatusOr<v1::Trial> Master::GetTrial(int64_t trial_id) {
  {
    absl::MutexLock l(&mu_);
    auto found = FindLiveTrial(trial_id);
    if (found.ok()) return found->second->rec.trial;
  }
  auto t = store_->GetTrial(trial_id);
  if (!t.ok()) {
    return absl::NotFoundError(absl::StrCat("trial ", trial_id, " not found"));
  }
  return t->trial;
}

absl::StatusOr<std::vector<v1::MetricReport>> Master::GetTrialMetrics(
    int64_t trial_id, v1::MetricGroup group) {
  auto t = GetTrial(trial_id);
  if (!t.ok()) return t.status();
  return store_->GetMetricReports(trial_id, group);
}

absl::StatusOr<std::vector<v1::Checkpoint>> Master::ListCheckpoints(
    int64_t trial_id) {
  auto t = GetTrial(trial_id);
  if (!t.ok()) return t.status();
  return store_->ListCheckpoints(trial_id);
}

absl::StatusOr<std::vector<v1::TrialLogLine>> Master::GetTrialLogs(
    int64_t trial_id, int64_t after_id, int limit) {
  auto t = GetTrial(trial_id);
  if (!t.ok()) return t.status();
  return store_->GetLogs(trial_id, after_id, limit);
}

bool Master::TrialIsLive(int64_t trial_id) {
  absl::MutexLock l(&mu_);
  auto found = FindLiveTrial(trial_id);
  return found.ok() && IsLiveTrialState(found->second->rec.trial.state());
}

absl::StatusOr<v1::Experiment> Master::WaitExperimentChange(
    int64_t id, int64_t* version, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  ExperimentState* e = FindExperiment(id);
  if (e == nullptr) {
    mu_.Unlock();
    auto x = GetExperiment(id);
    mu_.Lock();
    return x;
  }
  absl::Time deadline = absl::Now() + timeout;
  while (e->version == *version && !stopping_) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;
  }
  *version = e->version;
  return Describe(*e);
}

absl::StatusOr<v1::Experiment> Master::PauseExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_PAUSED);
}
absl::StatusOr<v1::Experiment> Master::ActivateExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_ACTIVE);
}
absl::StatusOr<v1::Experiment> Master::CancelExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_STOPPING_CANCELED);
}
absl::StatusOr<v1::Experiment> Master::KillExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_STOPPING_KILLED);
}

absl::StatusOr<v1::Experiment> Master::ChangeState(int64_t id,
                                                   v1::State target) {
  absl::MutexLock l(&mu_);
  ExperimentState* e = FindExperiment(id);
  if (e == nullptr) {
    mu_.Unlock();
    auto x = GetExperiment(id);
    mu_.Lock();
    if (!x.ok()) return x.status();
    return absl::FailedPreconditionError(
        absl::StrCat("experiment ", id, " is ", StateName(x->state()),
                     "; it has ended and its state can no longer change"));
  }
  v1::Experiment& x = e->rec.experiment;
  v1::State cur = x.state();
  auto illegal = [&](const char* what) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot ", what, " experiment ", id, ": it is ", StateName(cur)));
  };
  if (IsTerminal(cur)) {
    switch (target) {
      case v1::STATE_PAUSED:
        return illegal("pause");
      case v1::STATE_ACTIVE:
        return illegal("activate");
      case v1::STATE_STOPPING_CANCELED:
        return illegal("cancel");
      default:
        return illegal("kill");
    }
  }
  bool first_trials = false;  // activated for the first time
  absl::Status st = store_->RunInTransaction([&]() -> absl::Status {
    switch (target) {
      case v1::STATE_PAUSED: {
        if (cur == v1::STATE_PAUSED) return absl::OkStatus();
        if (cur != v1::STATE_ACTIVE) return illegal("pause");
        x.set_state(v1::STATE_PAUSED);
        for (auto& [tid, t] : e->trials) {
          if (IsTerminal(t.rec.trial.state())) continue;
          if (t.running) {
            StopTrialProcess(&t, false);
          } else {
            scheduler_.Dequeue(tid);
            SetTrialState(e, &t, v1::STATE_PAUSED);
            DET_RETURN_IF_ERROR(SaveTrial(e, &t));
          }
        }
        return SaveExperiment(e);
      }
      case v1::STATE_ACTIVE: {
        if (cur == v1::STATE_ACTIVE) return absl::OkStatus();
        if (cur != v1::STATE_PAUSED) return illegal("activate");
        x.set_state(v1::STATE_ACTIVE);
        if (e->trials.empty() && !e->searcher_done) {
          auto fed = Feed(e, SearcherEvent("init"));
          if (!fed.ok()) return fed.status();
          first_trials = true;
          return ProcessOps(e, std::move(*fed), kCreateChunk);
        }
        for (auto& [tid, t] : e->trials) {
          if (t.rec.trial.state() == v1::STATE_PAUSED && !t.running) {
            SetTrialState(e, &t, v1::STATE_QUEUED);
            DET_RETURN_IF_ERROR(SaveTrial(e, &t));
            Enqueue(e, &t);
          }
        }
        return SaveExperiment(e);
      }
      case v1::STATE_STOPPING_CANCELED:
      case v1::STATE_STOPPING_KILLED: {
        bool kill = target == v1::STATE_STOPPING_KILLED;
        if (cur == v1::STATE_STOPPING_KILLED && !kill) {
          return absl::OkStatus();  // already being killed
        }
        x.set_state(target);
        for (auto& [tid, t] : e->trials) {
          if (t.running) {
            StopTrialProcess(&t, kill);
          } else {
            // Queued trials must not be placed on the slots the stopped
            // ones free; MaybeFinish marks them CANCELED.
            scheduler_.Dequeue(tid);
          }
        }
        DET_RETURN_IF_ERROR(SaveExperiment(e));
        return MaybeFinish(e);
      }
      default:
        return absl::InvalidArgumentError("unsupported state change");
    }
  });
  if (!st.ok()) return st;
  Touch(e);
  ScheduleLocked();
  if (first_trials) DET_RETURN_IF_ERROR(CarryOutPending(e));
  return Describe(*e);
}

std::vector<v1::Agent> Master::ListAgents() {
  absl::MutexLock l(&mu_);
  std::vector<v1::Agent> out;
  for (auto& [id, a] : agents_) {
    v1::Agent x = a.agent;
    for (v1::Slot& s : *x.mutable_slots()) s.set_trial_id(0);
    for (auto& [eid, e] : experiments_) {
      for (auto& [tid, t] : e->trials) {
        if (!t.running) continue;
        auto held = scheduler_.SlotsOf(tid);
        auto it = held.find(id);
        if (it == held.end()) continue;
        for (int32_t sid : it->second) {
          for (v1::Slot& s : *x.mutable_slots()) {
            if (s.id() == sid) s.set_trial_id(tid);
          }
        }
      }
    }
    out.push_back(std::move(x));
  }
  return out;
}

void Master::SetAddresses(const std::string& grpc, const std::string& http) {
  absl::MutexLock l(&mu_);
  if (!grpc.empty()) options_.grpc_address = grpc;
  if (!http.empty()) options_.http_address = http;
}

v1::MasterInfo Master::GetMasterInfo() {
  absl::MutexLock l(&mu_);
  v1::MasterInfo info;
  info.set_version(kVersion);
  info.set_cluster_id(cluster_id_);
  info.set_start_time_us(absl::ToUnixMicros(start_time_));
  info.set_grpc_address(options_.grpc_address);
  info.set_http_address(options_.http_address);
  info.set_protocol_version(kProtocolVersion);
  int n = 0;
  for (auto& [id, a] : agents_) n += a.agent.connected() ? 1 : 0;
  info.set_num_agents(n);
  info.set_slots_total(scheduler_.TotalSlots());
  info.set_slots_used(scheduler_.UsedSlots());
  return info;
}

// ---------------------------------------------------------------- workers

absl::StatusOr<v1::Welcome> Master::AgentConnected(
    const v1::Hello& hello, const std::string& peer,
    std::shared_ptr<AgentOutbox> outbox) {
  if (hello.protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "worker %s speaks protocol version %d but this master speaks "
        "version %d (master %s, worker %s); upgrade the older one",
        hello.worker_id(), hello.protocol_version(), kProtocolVersion, kVersion,
        hello.version()));
  }
  if (hello.worker_id().empty()) {
    return absl::InvalidArgumentError("worker sent an empty worker_id");
  }
  absl::MutexLock l(&mu_);
  const std::string& id = hello.worker_id();
  AgentState& a = agents_[id];
  if (a.outbox && a.outbox != outbox) a.outbox->Close();
  bool restarted =
      !a.incarnation.empty() && a.incarnation != hello.incarnation();
  a.incarnation = hello.incarnation();
  a.outbox = std::move(outbox);
  a.last_seen = absl::Now();
  a.host = hello.host().empty() ? HostOfPeer(peer) : hello.host();
  a.lost = false;
  v1::Agent& ag = a.agent;
  ag.set_id(id);
  ag.set_address(peer);
  ag.set_version(hello.version());
  ag.set_connected(true);
  ag.clear_slots();
  for (const v1::Slot& s : hello.slots()) *ag.add_slots() = s;
  ag.set_registered_time_us(NowUs());
  ag.set_last_heartbeat_us(NowUs());

  if (a.in_scheduler) scheduler_.RemoveWorker(id);
  scheduler_.AddWorker(id, static_cast<int32_t>(hello.slots_size()));
  a.in_scheduler = true;

  v1::Welcome w;
  w.set_cluster_id(cluster_id_);
  w.set_heartbeat_interval_ms(
      absl::ToInt64Milliseconds(options_.heartbeat_interval));
  w.set_agent_timeout_ms(absl::ToInt64Milliseconds(options_.agent_timeout));
  auto seq = store_->GetWorkerSeq(SeqKey(id, a.incarnation));
  if (!seq.ok()) return seq.status();
  w.set_last_seq(*seq);
  a.last_seq = *seq;

  // Trials the worker still runs: keep those the master wants, stop others.
  std::set<int64_t> claimed;
  for (const v1::RunningTrial& r : hello.running()) {
    auto found = FindLiveTrial(r.trial_id());
    bool keep = false;
    if (found.ok()) {
      auto [e, t] = *found;
      bool ours = std::find(t->workers.begin(), t->workers.end(), id) !=
                  t->workers.end();
      keep = t->running && t->rec.run_id == r.run_id() &&
             (ours || t->awaiting_agent) && !IsTerminal(t->rec.trial.state());
      if (keep) {
        std::map<std::string, std::vector<int32_t>> slots;
        slots[id].assign(r.slot_ids().begin(), r.slot_ids().end());
        keep = scheduler_.Reserve(r.trial_id(), e->rec.experiment.id(), slots);
      }
      if (keep) {
        t->awaiting_agent = false;
        if (!ours) t->workers.push_back(id);
        claimed.insert(r.trial_id());
        if (t->closing || e->rec.experiment.state() != v1::STATE_ACTIVE) {
          // A stop sent while the worker was away may have been lost.
          bool kill = e->rec.experiment.state() == v1::STATE_STOPPING_KILLED;
          StopTrialProcess(t, kill);
        }
      }
    }
    if (!keep) w.add_stop_trial_ids(r.trial_id());
  }
  // A new worker process: trials the old one ran died with it.
  if (restarted) {
    absl::Status st = store_->RunInTransaction([&]() -> absl::Status {
      for (auto& [eid, e] : experiments_) {
        for (auto& [tid, t] : e->trials) {
          if (!t.running || claimed.count(tid)) continue;
          if (std::find(t.workers.begin(), t.workers.end(), id) ==
              t.workers.end()) {
            continue;
          }
          DET_RETURN_IF_ERROR(OnTrialLost(
              e.get(), &t, absl::StrCat("worker ", id, " restarted")));
        }
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
  }
  absl::Status st = store_->UpsertAgent(ag);
  if (!st.ok()) return st;
  ScheduleLocked();
  return w;
}

void Master::AgentDisconnected(const std::string& worker_id,
                               const std::shared_ptr<AgentOutbox>& outbox) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(worker_id);
  if (it == agents_.end() || it->second.outbox != outbox) return;
  AgentState& a = it->second;
  a.outbox->Close();
  a.outbox.reset();
  a.agent.set_connected(false);
  a.last_seen = absl::Now();
  // No new work goes to it; its running trials wait for it to come back
  // until agent_timeout (Tick), then restart elsewhere.
  if (a.in_scheduler) {
    scheduler_.RemoveWorker(worker_id);
    a.in_scheduler = false;
  }
  (void)store_->UpsertAgent(a.agent);
}

void Master::AgentLost(const std::string& worker_id) {
  auto it = agents_.find(worker_id);
  if (it == agents_.end()) return;
  AgentState& a = it->second;
  a.lost = true;
  if (a.outbox) {
    a.outbox->Close();
    a.outbox.reset();
  }
  a.agent.set_connected(false);
  if (a.in_scheduler) {
    scheduler_.RemoveWorker(worker_id);
    a.in_scheduler = false;
  }
  absl::Status st = store_->RunInTransaction([&]() -> absl::Status {
    for (auto& [eid, e] : experiments_) {
      for (auto& [tid, t] : e->trials) {
        if (!t.running) continue;
        if (std::find(t.workers.begin(), t.workers.end(), worker_id) ==
            t.workers.end()) {
          continue;
        }
        DET_RETURN_IF_ERROR(OnTrialLost(
            e.get(), &t,
            absl::StrCat("worker ", worker_id, " lost (no heartbeat for ",
                         absl::FormatDuration(options_.agent_timeout), ")")));
      }
    }
    return store_->UpsertAgent(a.agent);
  });
  if (!st.ok()) {
    std::fprintf(stderr, "master: handling lost worker %s: %s\n",
                 worker_id.c_str(), std::string(st.message()).c_str());
  }
}

void Master::Tick() {
  absl::MutexLock l(&mu_);
  absl::Time now = absl::Now();
  std::vector<std::string> lost;
  for (auto& [id, a] : agents_) {
    if (a.lost) continue;
    if (now - a.last_seen > options_.agent_timeout) lost.push_back(id);
  }
  for (const std::string& id : lost) AgentLost(id);
  // Trials that were running when the master restarted and whose worker
  // never came back to claim them.
  if (now - loaded_at_ > options_.agent_timeout) {
    absl::Status st = store_->RunInTransaction([&]() -> absl::Status {
      for (auto& [eid, e] : experiments_) {
        for (auto& [tid, t] : e->trials) {
          if (t.awaiting_agent) {
            t.awaiting_agent = false;
            DET_RETURN_IF_ERROR(OnTrialLost(
                e.get(), &t,
                "its worker did not return after a master restart"));
          }
        }
      }
      return absl::OkStatus();
    });
    if (!st.ok()) {
      std::fprintf(stderr, "master: %s\n", std::string(st.message()).c_str());
    }
  }
  ScheduleLocked();
}

absl::StatusOr<int64_t> Master::AgentMessage(const std::string& worker_id,
                                             const v1::WorkerMessage& m) {
  AgentBatchResult r = AgentMessages(worker_id, absl::MakeConstSpan(&m, 1));
  if (!r.status.ok()) return r.status;
  return r.ack_seq;
}

Master::AgentBatchResult Master::AgentMessages(
    const std::string& worker_id, absl::Span<const v1::WorkerMessage> batch) {
  AgentBatchResult result;
  absl::MutexLock l(&mu_);
  auto ait = agents_.find(worker_id);
  if (ait == agents_.end()) {
    result.status = absl::FailedPreconditionError("worker is not registered");
    return result;
  }
  AgentState& a = ait->second;
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
  // One transaction for the batch; each event in its own savepoint, so a
  // failing one is undone alone and the ones before it still commit (and
  // are acknowledged). A message that can never be stored is rejected and
  // acknowledged, and the batch goes on; after any other failure the
  // failing message and those after it are not acknowledged: the stream
  // ends and the worker resends them after reconnecting.
  struct Rejection {
    const v1::WorkerMessage* m;
    absl::Status why;
  };
  std::vector<Rejection> rejections;
  int64_t done_seq = a.last_seq;
  int64_t ack_seq = 0;
  absl::Status failed;
  absl::Status st = store_->RunInTransaction([&]() -> absl::Status {
    for (const v1::WorkerMessage& m : batch) {
      if (m.seq() <= done_seq) {  // resent; already stored
        ack_seq = std::max(ack_seq, m.seq());
        continue;
      }
      if (m.has_trial_event()) {
        absl::Status s = store_->RunInTransaction(
            [&] { return OnTrialEvent(worker_id, m.trial_event()); });
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
    if (done_seq == a.last_seq) return absl::OkStatus();
    return store_->SetWorkerSeq(SeqKey(worker_id, a.incarnation), done_seq);
  });
  if (!st.ok()) {
    result.status = st;  // nothing of the batch is stored
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
  a.last_seq = done_seq;
  result.ack_seq = ack_seq;
  result.status = failed;
  result.rejected = static_cast<int>(rejections.size());
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
  bool current = ev.run_id() == t->rec.run_id;
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
      if (c.steps_completed() >=
          t->rec.trial.latest_checkpoint().steps_completed()) {
        *t->rec.trial.mutable_latest_checkpoint() = c;
        DET_RETURN_IF_ERROR(SaveTrial(e, t));
      }
      Touch(e);
      return absl::OkStatus();
    }
    case v1::TrialEvent::kLogs: {
      std::vector<v1::LogLine> lines(ev.logs().lines().begin(),
                                     ev.logs().lines().end());
      return store_->AddLogs(ev.trial_id(), lines);
    }
    case v1::TrialEvent::kExited:
      if (!current) return absl::OkStatus();  // a superseded run
      return OnExit(e, t, ev.exited());
    case v1::TrialEvent::kStarted:
    default:
      return absl::OkStatus();
  }
}

absl::Status Master::OnMetrics(ExperimentState* e, TrialState* t,
                               const v1::MetricReport& r, bool current) {
  auto stored = store_->AddMetricReport(r);
  if (!stored.ok()) return stored.status();
  if (!*stored) return absl::OkStatus();  // a duplicate
  if (options_.metrics != nullptr) options_.metrics->CountMetricReports(1);
  v1::Trial& pt = t->rec.trial;
  if (r.steps_completed() > pt.steps_completed()) {
    pt.set_steps_completed(r.steps_completed());
  }
  if (r.group() != v1::METRIC_GROUP_VALIDATION) {
    return SaveTrial(e, t);
  }
  *pt.mutable_latest_validation_metrics() = r.metrics();
  const std::string& metric = e->config.searcher.metric;
  auto mit = r.metrics().find(metric);
  if (mit == r.metrics().end()) {
    pt.set_message(absl::StrCat("validation at step ", r.steps_completed(),
                                " did not report the searcher metric '", metric,
                                "'"));
    return SaveTrial(e, t);
  }
  double v = mit->second;
  bool sib = e->config.searcher.smaller_is_better;
  if (!pt.has_best_metric() ||
      (sib ? v < pt.best_metric() : v > pt.best_metric())) {
    pt.set_has_best_metric(true);
    pt.set_best_metric(v);
    *pt.mutable_best_validation_metrics() = r.metrics();
    v1::Experiment& x = e->rec.experiment;
    bool better = true;
    if (x.best_trial_id() != 0) {
      auto bit = x.best_validation_metrics().find(metric);
      if (bit != x.best_validation_metrics().end()) {
        better = sib ? v < bit->second : v > bit->second;
      }
    }
    if (better) {
      x.set_best_trial_id(pt.id());
      *x.mutable_best_validation_metrics() = r.metrics();
    }
  }
  auto uit = t->units_at_batches.find(r.steps_completed());
  searcher::Operations ops;
  if (current && uit != t->units_at_batches.end() && !t->closing &&
      !IsTerminal(pt.state())) {
    if (pt.rung() >= 0) {
      int rung = 0;
      for (auto& [b, u] : t->units_at_batches) {
        if (b < r.steps_completed()) rung++;
      }
      pt.set_rung(rung);
    }
    Value ev = SearcherEvent("val", t->rec.request_id);
    ev.as_map()["m"] = JournalNumber(v);
    ev.as_map()["l"] = Value(uit->second);
    auto fed = Feed(e, ev);
    if (!fed.ok()) return fed.status();
    ops = std::move(*fed);
  }
  DET_RETURN_IF_ERROR(SaveTrial(e, t));
  return ProcessOps(e, std::move(ops));
}

absl::Status Master::OnExit(ExperimentState* e, TrialState* t,
                            const v1::TrialExited& x) {
  v1::Trial& pt = t->rec.trial;
  int64_t tid = pt.id();
  t->running = false;
  t->stop_sent = false;
  t->workers.clear();
  scheduler_.Release(tid);
  pt.clear_agent_id();
  pt.clear_slot_ids();
  if (IsTerminal(pt.state())) return absl::OkStatus();
  v1::State es = e->rec.experiment.state();
  searcher::Operations ops;
  auto finish = [&](v1::State s, v1::ExitReason reason) {
    SetTrialState(e, t, s);
    pt.set_exit_reason(reason);
    pt.set_end_time_us(NowUs());
  };
  if (es == v1::STATE_STOPPING_CANCELED || es == v1::STATE_STOPPING_KILLED) {
    finish(v1::STATE_CANCELED, x.reason());
  } else if (x.reason() == v1::EXIT_REASON_COMPLETED ||
             (t->closing && (x.reason() == v1::EXIT_REASON_STOPPED ||
                             x.reason() == v1::EXIT_REASON_KILLED))) {
    finish(v1::STATE_COMPLETED, x.reason());
    auto fed = Feed(e, SearcherEvent("closed", t->rec.request_id));
    if (!fed.ok()) return fed.status();
    ops = std::move(*fed);
  } else if (x.reason() == v1::EXIT_REASON_STOPPED) {
    // Stopped for a pause, or by its worker shutting down: not a failure.
    if (es == v1::STATE_ACTIVE) {
      SetTrialState(e, t, v1::STATE_QUEUED);
      Enqueue(e, t);
    } else {
      SetTrialState(e, t, v1::STATE_PAUSED);
    }
  } else if (x.reason() == v1::EXIT_REASON_INVALID_HP) {
    finish(v1::STATE_ERROR, x.reason());
    pt.set_message(absl::StrCat("invalid hyperparameters: ", x.message()));
    Value ev = SearcherEvent("exited", t->rec.request_id);
    ev.as_map()["why"] =
        Value(static_cast<int64_t>(searcher::ExitedReason::kInvalidHP));
    auto fed = Feed(e, ev);
    if (!fed.ok()) return fed.status();
    ops = std::move(*fed);
  } else {
    return OnTrialLost(e, t,
                       x.message().empty()
                           ? absl::StrCat("exited with code ", x.exit_code())
                           : x.message());
  }
  DET_RETURN_IF_ERROR(SaveTrial(e, t));
  return ProcessOps(e, std::move(ops));
}

absl::Status Master::OnTrialLost(ExperimentState* e, TrialState* t,
                                 const std::string& why) {
  v1::Trial& pt = t->rec.trial;
  t->running = false;
  t->awaiting_agent = false;
  t->workers.clear();
  scheduler_.Release(pt.id());
  pt.clear_agent_id();
  pt.clear_slot_ids();
  if (IsTerminal(pt.state())) return absl::OkStatus();
  v1::State es = e->rec.experiment.state();
  searcher::Operations ops;
  if (es == v1::STATE_STOPPING_CANCELED || es == v1::STATE_STOPPING_KILLED) {
    SetTrialState(e, t, v1::STATE_CANCELED);
    pt.set_end_time_us(NowUs());
  } else if (t->closing) {
    // The searcher had already decided to stop it.
    SetTrialState(e, t, v1::STATE_COMPLETED);
    pt.set_end_time_us(NowUs());
    auto fed = Feed(e, SearcherEvent("closed", t->rec.request_id));
    if (!fed.ok()) return fed.status();
    ops = std::move(*fed);
  } else if (pt.restarts() < e->config.max_restarts) {
    pt.set_restarts(pt.restarts() + 1);
    pt.set_message(absl::StrCat("restart ", pt.restarts(), " of ",
                                e->config.max_restarts, " after: ", why));
    if (es == v1::STATE_ACTIVE) {
      SetTrialState(e, t, v1::STATE_QUEUED);
      Enqueue(e, t);
    } else {
      SetTrialState(e, t, v1::STATE_PAUSED);
    }
  } else {
    SetTrialState(e, t, v1::STATE_ERROR);
    pt.set_exit_reason(v1::EXIT_REASON_ERRORED);
    pt.set_end_time_us(NowUs());
    pt.set_message(
        absl::StrCat("failed after ", pt.restarts(), " restarts: ", why));
    Value ev = SearcherEvent("exited", t->rec.request_id);
    ev.as_map()["why"] =
        Value(static_cast<int64_t>(searcher::ExitedReason::kErrored));
    auto fed = Feed(e, ev);
    if (!fed.ok()) return fed.status();
    ops = std::move(*fed);
  }
  DET_RETURN_IF_ERROR(SaveTrial(e, t));
  return ProcessOps(e, std::move(ops));
}

}  // namespace det::master
