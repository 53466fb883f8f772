#include "worker/daemon/worker_daemon.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/archive/context_archive.h"
#include "common/openmp_env.h"
#include "common/version.h"
#include "worker/daemon/child_process.h"
#include "worker/daemon/launch_plan.h"
#include "worker/daemon/restore_choice.h"
#include "worker/daemon/slots.h"
#include "worker/daemon/worker_log.h"

extern char** environ;

namespace det::worker {
namespace {

namespace fs = std::filesystem;

// Extra time, beyond the stop timeout, that shutdown waits for a run to be
// reported (the supervisor kills at the timeout, then drains pipes).
constexpr absl::Duration kReportGrace = absl::Seconds(5);
constexpr absl::Duration kControlTick = absl::Milliseconds(200);

std::string NewIncarnation() {
  std::random_device rd;
  return absl::StrFormat("%08x%08x", rd(), rd());
}

// Variables of the worker's own environment that trials must not inherit:
// the worker's secrets and settings (DET_*) and what the worker sets per
// trial.
bool Inherited(absl::string_view entry) {
  return !absl::StartsWith(entry, "DET_") &&
         !absl::StartsWith(entry, "CUDA_VISIBLE_DEVICES=") &&
         !absl::StartsWith(entry, "CUDA_DEVICE_ORDER=") &&
         !absl::StartsWith(entry, "OMP_NUM_THREADS=");
}

// The PATH trials inherit from the worker ("" when unset).
absl::string_view PathVariable() {
  const char* p = std::getenv("PATH");
  return p == nullptr ? absl::string_view() : absl::string_view(p);
}

}  // namespace

WorkerDaemon::WorkerDaemon(WorkerOptions options)
    : options_(std::move(options)),
      incarnation_(NewIncarnation()),
      outbox_(options_.outbox_limits) {}

absl::StatusOr<std::unique_ptr<WorkerDaemon>> WorkerDaemon::Create(
    WorkerOptions options) {
  if (options.master.empty()) {
    return absl::InvalidArgumentError(
        "no master address: pass --master HOST:PORT or set DET_MASTER");
  }
  if (options.slots.empty()) {
    return absl::InvalidArgumentError("the worker has no slots to offer");
  }
  if (options.worker_id.empty()) {
    return absl::InvalidArgumentError("the worker id is empty");
  }
  std::error_code ec;
  fs::create_directories(options.work_dir, ec);
  if (ec || !fs::is_directory(options.work_dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot use work directory '", options.work_dir,
                     "': ", ec ? ec.message() : "not a directory"));
  }
  // Spare trial directories a previous worker left (see spare_dirs_).
  for (fs::directory_iterator it(options.work_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (absl::StartsWith(it->path().filename().string(), ".spare-")) {
      std::error_code rec;
      fs::remove_all(it->path(), rec);
    }
  }
  std::unique_ptr<WorkerDaemon> agent(new WorkerDaemon(std::move(options)));
  WorkerDaemon* self = agent.get();
  TrialApiServer::Handlers handlers;
  handlers.on_metrics = [self](int64_t trial, int32_t run,
                               const v1::MetricReport& r) {
    v1::TrialEvent ev;
    *ev.mutable_metrics() = r;
    return self->OnReport(trial, run, std::move(ev), r.steps_completed());
  };
  handlers.on_checkpoint = [self](int64_t trial, int32_t run,
                                  const v1::Checkpoint& c) {
    v1::TrialEvent ev;
    *ev.mutable_checkpoint() = c;
    return self->OnReport(trial, run, std::move(ev), c.steps_completed());
  };
  auto api = TrialApiServer::Start(std::move(handlers));
  if (!api.ok()) return api.status();
  agent->api_ = std::move(*api);
  return agent;
}

WorkerDaemon::~WorkerDaemon() {
  if (link_ != nullptr) link_->Stop();
  StopAll(/*kill=*/true);
  std::map<RunKey, RunEntry> runs;
  {
    absl::MutexLock lock(&mu_);
    runs.swap(runs_);
  }
  runs.clear();  // joins the supervisors
  api_.reset();
}

void WorkerDaemon::Post(Command c) {
  absl::MutexLock lock(&mu_);
  commands_.push_back(std::move(c));
}

void WorkerDaemon::Shutdown() {
  Command c;
  c.kind = Command::Kind::kShutdown;
  Post(std::move(c));
}

absl::Status WorkerDaemon::OnReport(int64_t trial_id, int32_t run_id,
                                    v1::TrialEvent event, int64_t steps) {
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find({trial_id, run_id});
    // Not in the table yet: TrialStarted has not been queued, and nothing
    // of a run may reach the master before it. The trial retries.
    if (it == runs_.end()) {
      return absl::UnavailableError("the worker is still starting this run");
    }
    it->second.run->NoteSteps(steps);
  }
  event.set_trial_id(trial_id);
  event.set_run_id(run_id);
  v1::WorkerMessage m;
  *m.mutable_trial_event() = std::move(event);
  absl::StatusOr<int64_t> seq = outbox_.Add(std::move(m));
  // Full: the trial backs off and retries, which slows it down rather than
  // losing its report.
  if (!seq.ok()) return absl::UnavailableError(seq.status().message());
  return absl::OkStatus();
}

void WorkerDaemon::Emit(v1::TrialEvent event, bool force) {
  v1::WorkerMessage m;
  *m.mutable_trial_event() = std::move(event);
  absl::StatusOr<int64_t> seq = outbox_.Add(std::move(m), force);
  if (!seq.ok()) WorkerLog("dropping an event: %s", seq.status().ToString());
}

v1::Hello WorkerDaemon::MakeHello() {
  v1::Hello h;
  h.set_worker_id(options_.worker_id);
  h.set_protocol_version(kProtocolVersion);
  h.set_version(kVersion);
  h.set_host(options_.advertise_host);
  h.set_incarnation(incarnation_);
  h.set_checkpoint_root(options_.checkpoint_root);
  std::map<int32_t, int64_t> busy;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, entry] : runs_) {
    if (entry.run->done()) continue;
    v1::RunningTrial* r = h.add_running();
    r->set_trial_id(key.first);
    r->set_run_id(key.second);
    for (int32_t s : entry.slot_ids) {
      r->add_slot_ids(s);
      busy[s] = key.first;
    }
  }
  // Runs that ended while their exit report waits for an ack: the master
  // must not count them lost before the report reaches it.
  for (const auto& [trial, run] : outbox_.UnackedExits()) {
    bool listed = false;
    for (const v1::RunningTrial& r : h.running()) {
      listed = listed || (r.trial_id() == trial && r.run_id() == run);
    }
    if (listed) continue;
    v1::RunningTrial* r = h.add_running();
    r->set_trial_id(trial);
    r->set_run_id(run);
    r->set_exited(true);
  }
  for (v1::Slot s : options_.slots) {
    auto it = busy.find(s.id());
    s.set_trial_id(it == busy.end() ? 0 : it->second);
    *h.add_slots() = std::move(s);
  }
  return h;
}

void WorkerDaemon::ReportStartFailure(const v1::TrialSpec& spec,
                                      const std::string& why) {
  WorkerLog("trial %d run %d could not start: %s", spec.trial_id(),
            spec.run_id(), why);
  v1::TrialEvent ev;
  ev.set_trial_id(spec.trial_id());
  ev.set_run_id(spec.run_id());
  v1::LogLine* line = ev.mutable_logs()->add_lines();
  line->set_time_us(absl::ToUnixMicros(absl::Now()));
  line->set_source("worker");
  line->set_line(absl::StrCat("the trial could not start: ", why));
  Emit(ev, /*force=*/true);
  ev.clear_logs();
  v1::TrialExited* ex = ev.mutable_exited();
  ex->set_reason(v1::EXIT_REASON_ERRORED);
  ex->set_exit_code(-1);
  ex->set_message(absl::StrCat("the trial could not start: ", why));
  Emit(std::move(ev), /*force=*/true);
}

std::vector<std::string> WorkerDaemon::ChildEnvironment(
    const v1::TrialSpec& spec, const std::string& token, int rank,
    const std::vector<int32_t>& slots) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (Inherited(*e)) env.emplace_back(*e);
  }
  bool gpu = false;
  std::vector<std::string> devices;
  for (int32_t id : slots) {
    const v1::Slot& s = options_.slots[id];
    if (s.type() == "cuda") {
      gpu = true;
      devices.push_back(absl::StrCat(s.id()));
    }
  }
  const int threads =
      ThreadsFor(static_cast<int>(slots.size()),
                 static_cast<int>(options_.slots.size()), options_.cores);
  auto set = [&](const char* name, const std::string& value) {
    env.push_back(absl::StrCat(name, "=", value));
  };
  set("DET_TRIAL_API_ADDR", api_->address());
  set("DET_TRIAL_TOKEN", token);
  set("DET_TRIAL_ID", absl::StrCat(spec.trial_id()));
  set("DET_RUN_ID", absl::StrCat(spec.run_id()));
  set("DET_EXPERIMENT_ID", absl::StrCat(spec.experiment_id()));
  set("DET_RANK", absl::StrCat(rank));
  set("DET_WORLD_SIZE", absl::StrCat(std::max(1, spec.world_size())));
  if (spec.world_size() > 1) set("DET_RENDEZVOUS", spec.rendezvous());
  set("DET_WORKER_ID", options_.worker_id);
  set("DET_SLOT_IDS", absl::StrJoin(slots, ","));
  set("DET_NUM_THREADS", absl::StrCat(threads));
  set("OMP_NUM_THREADS", absl::StrCat(threads));
  // Slots share the machine's cores, so OpenMP threads should sleep after a
  // short spin rather than spin on (see det-trial's main.cc for the
  // measurements); the worker's own setting wins. det-trial would otherwise
  // re-exec itself to get this (OpenMP reads it only at load), loading
  // libtorch twice: ~0.37 s of every trial's start.
  for (const auto& [name, value] : OpenMpWaitDefaults()) set(name, value);
  set("CUDA_VISIBLE_DEVICES", gpu ? absl::StrJoin(devices, ",") : "");
  if (gpu) set("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
  if (!options_.data_dir.empty()) set("DET_DATA_DIR", options_.data_dir);
  if (!spec.checkpoint_dir().empty()) {
    set("DET_CHECKPOINT_DIR", spec.checkpoint_dir());
  }
  if (std::string warm = WarmStartPath(spec); !warm.empty()) {
    set("DET_WARM_START_DIR", warm);
  }
  // The experiment's environment_variables, for this run's slot type.
  ApplyUserEnvironment(
      gpu ? spec.environment_variables_cuda() : spec.environment_variables(),
      &env);
  return env;
}

void WorkerDaemon::StartTrial(const v1::StartTrial& start) {
  v1::TrialSpec spec = start.spec();
  // Check the request before touching anything.
  LaunchContext ctx;
  ctx.num_slots = static_cast<int>(options_.slots.size());
  ctx.work_dir = options_.work_dir;
  ctx.trial_binary = options_.trial_binary;
  ctx.trial_binary_executable =
      !options_.trial_binary.empty() &&
      access(options_.trial_binary.c_str(), X_OK) == 0;
  ctx.find_program = [](const std::string& command) {
    return PlainCommandArgv(command, PathVariable());
  };
  absl::StatusOr<LaunchPlan> plan = PlanLaunch(start, ctx);
  if (!plan.ok()) {
    if (spec.trial_id() <= 0) {
      WorkerLog("ignoring a StartTrial: %s", plan.status().message());
      return;
    }
    return ReportStartFailure(spec, std::string(plan.status().message()));
  }
  const std::vector<int32_t> slot_ids(start.slot_ids().begin(),
                                      start.slot_ids().end());

  // An older run of the same trial that still runs here is superseded.
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, entry] : runs_) {
      if (key.first != spec.trial_id() || entry.run->done()) continue;
      if (key.second == spec.run_id()) {
        WorkerLog(
            "trial %d run %d is already running; ignoring a repeated "
            "StartTrial",
            key.first, key.second);
        return;
      }
      WorkerLog("trial %d run %d replaces run %d, which is killed", key.first,
                spec.run_id(), key.second);
      entry.run->Stop(/*kill=*/true);
    }
  }

  std::error_code ec;
  fs::create_directories(spec.checkpoint_dir(), ec);
  if (ec) {
    return ReportStartFailure(
        spec, absl::StrCat("cannot create checkpoint directory '",
                           spec.checkpoint_dir(), "': ", ec.message()));
  }
  {
    std::vector<std::string> notes;
    spec.set_restore_uuid(ChooseRestoreCheckpoint(spec, &notes));
    if (!notes.empty()) {
      v1::TrialEvent ev;
      ev.set_trial_id(spec.trial_id());
      ev.set_run_id(spec.run_id());
      for (const std::string& n : notes) {
        WorkerLog("trial %d: %s", spec.trial_id(), n);
        v1::LogLine* line = ev.mutable_logs()->add_lines();
        line->set_time_us(absl::ToUnixMicros(absl::Now()));
        line->set_source("worker");
        line->set_line(n);
      }
      Emit(std::move(ev), /*force=*/true);
    }
  }
  if (!spec.restore_uuid().empty()) {
    spec.clear_warm_start();  // its own checkpoint wins
    spec.clear_warm_start_dir();
  } else if (absl::Status warm = CheckWarmStart(spec); !warm.ok()) {
    return ReportStartFailure(spec, std::string(warm.message()));
  }
  const std::string& dir = plan->dir;
  ec = MakeTrialDir(dir);
  if (ec) {
    return ReportStartFailure(
        spec, absl::StrCat("cannot create trial directory '", dir,
                           "': ", ec.message()));
  }
  if (!spec.context().empty()) {
    absl::Status s = UnpackContext(spec.context(), dir);
    if (!s.ok()) {
      fs::remove_all(dir, ec);
      return ReportStartFailure(
          spec,
          absl::StrCat("cannot unpack the context directory: ", s.message()));
    }
    spec.clear_context();  // the trial has it as its working directory
  }

  const std::string token = api_->RegisterRun(spec);
  std::vector<TrialRun::Process> procs;
  for (const LaunchPlan::Process& p : plan->processes) {
    const int rank = p.rank;
    ChildSpec cs;
    cs.argv = plan->argv;
    cs.shell_on_noexec = plan->shell_on_noexec;
    cs.env = ChildEnvironment(spec, token, rank, p.slots);
    cs.cwd = dir;
    absl::StatusOr<Child> child = SpawnChild(cs);
    if (!child.ok()) {
      for (TrialRun::Process& p : procs) {
        SignalGroup(p.child.pid, SIGKILL);
        int status;
        while (waitpid(p.child.pid, &status, 0) < 0 && errno == EINTR) {
        }
        close(p.child.stdout_fd);
        close(p.child.stderr_fd);
      }
      api_->UnregisterRun(spec.trial_id(), spec.run_id());
      fs::remove_all(dir, ec);
      return ReportStartFailure(spec, std::string(child.status().message()));
    }
    procs.push_back({rank, *child});
  }

  WorkerLog("trial %d run %d started: %d process(es), first pid %d, slots [%s]",
            spec.trial_id(), spec.run_id(), procs.size(), procs[0].child.pid,
            absl::StrJoin(slot_ids, ","));
  v1::TrialEvent started;
  started.set_trial_id(spec.trial_id());
  started.set_run_id(spec.run_id());
  started.mutable_started()->set_pid(procs[0].child.pid);
  Emit(std::move(started), /*force=*/true);

  TrialRun::Options ro;
  ro.trial_id = spec.trial_id();
  ro.run_id = spec.run_id();
  ro.stop_timeout = options_.stop_timeout;
  auto on_logs = [this](v1::TrialEvent ev) -> absl::Status {
    v1::WorkerMessage m;
    *m.mutable_trial_event() = std::move(ev);
    return outbox_.Add(std::move(m)).status();
  };
  auto on_exit = [this](v1::TrialEvent ev) {
    const v1::TrialExited& ex = ev.exited();
    WorkerLog("trial %d run %d exited: %s (code %d)%s", ev.trial_id(),
              ev.run_id(), v1::ExitReason_Name(ex.reason()), ex.exit_code(),
              ex.message().empty() ? "" : ": " + ex.message());
    Emit(std::move(ev), /*force=*/true);
  };
  RunEntry entry;
  entry.run =
      std::make_unique<TrialRun>(ro, std::move(procs), on_logs, on_exit);
  entry.slot_ids = slot_ids;
  entry.dir = dir;
  absl::MutexLock lock(&mu_);
  runs_[{spec.trial_id(), spec.run_id()}] = std::move(entry);
}

void WorkerDaemon::StopTrial(int64_t trial_id, int32_t run_id, bool kill,
                             absl::Duration timeout) {
  bool found = false;
  absl::MutexLock lock(&mu_);
  for (auto& [key, entry] : runs_) {
    if (key.first != trial_id || entry.run->done()) continue;
    if (run_id != 0 && key.second != run_id) continue;
    found = true;
    api_->RequestStop(key.first, key.second);
    entry.run->Stop(kill, timeout);
    WorkerLog("trial %d run %d: %s", key.first, key.second,
              kill ? "killing"
                   : absl::StrCat("stopping (kill after ",
                                  absl::FormatDuration(timeout), ")"));
  }
  if (!found)
    WorkerLog("StopTrial for trial %d, which is not running here", trial_id);
}

void WorkerDaemon::StopAll(bool kill) {
  absl::MutexLock lock(&mu_);
  for (auto& [key, entry] : runs_) {
    if (entry.run->done()) continue;
    if (api_ != nullptr) api_->RequestStop(key.first, key.second);
    entry.run->Stop(kill);
  }
}

void WorkerDaemon::ReapFinished() {
  std::vector<RunEntry> finished;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = runs_.begin(); it != runs_.end();) {
      if (it->second.run->done()) {
        api_->UnregisterRun(it->first.first, it->first.second);
        finished.push_back(std::move(it->second));
        it = runs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (RunEntry& e : finished) {
    e.run.reset();  // joins its supervisor, which is finishing
    RecycleTrialDir(e.dir);
  }
}

std::error_code WorkerDaemon::MakeTrialDir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  while (!spare_dirs_.empty()) {
    const std::string spare = std::move(spare_dirs_.back());
    spare_dirs_.pop_back();
    fs::rename(spare, dir, ec);
    if (!ec) return ec;
    fs::remove_all(spare, ec);
  }
  fs::create_directories(dir, ec);
  return ec;
}

void WorkerDaemon::RecycleTrialDir(const std::string& dir) {
  std::error_code ec;
  const size_t keep = std::max<size_t>(4, options_.slots.size());
  if (spare_dirs_.size() < keep && fs::is_directory(dir, ec)) {
    // Empty it, keeping the directory itself.
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      std::error_code rec;
      fs::remove_all(it->path(), rec);
    }
    const std::string spare =
        (fs::path(options_.work_dir) / absl::StrCat(".spare-", spares_made_++))
            .string();
    if (!ec && fs::is_empty(dir, ec) && !ec) {
      fs::rename(dir, spare, ec);
      if (!ec) {
        spare_dirs_.push_back(spare);
        return;
      }
    }
  }
  fs::remove_all(dir, ec);
}

void WorkerDaemon::RemoveSpareDirs() {
  std::error_code ec;
  for (const std::string& d : spare_dirs_) fs::remove_all(d, ec);
  spare_dirs_.clear();
}

void WorkerDaemon::StopTrialsIfMasterLost() {
  absl::Time now = absl::Now();
  if (link_->welcomed()) {
    last_with_master_ = now;
    stopped_for_lost_master_ = false;
    return;
  }
  if (stopped_for_lost_master_ || master_lost_after_ <= absl::ZeroDuration() ||
      now - last_with_master_ <= master_lost_after_) {
    return;
  }
  stopped_for_lost_master_ = true;
  bool any = false;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, entry] : runs_) any = any || !entry.run->done();
  }
  if (!any) return;
  // The master has declared this worker lost by now and restarts its trials
  // elsewhere; running on would make two copies of each.
  WorkerLog("no master for %s: stopping every trial (checkpoint and exit)",
            absl::FormatDuration(now - last_with_master_));
  StopAll(/*kill=*/false);
}

void WorkerDaemon::DeleteCheckpoints(const v1::DeleteCheckpoints& d) {
  // For the crash tests only: after the first removal, name a file and
  // wait while another exists, so a test can kill the worker mid-way.
  const char* stall = std::getenv("DET_WORKER_TEST_GC_STALL");
  v1::WorkerMessage m;
  v1::CheckpointsDeleted* done = m.mutable_checkpoints_deleted();
  for (const std::string& uuid : d.uuids()) {
    if (uuid.empty() || uuid == "." || uuid == ".." ||
        uuid.find('/') != std::string::npos || d.dir().empty()) {
      WorkerLog(
          "not deleting checkpoint '%s' under '%s': not a checkpoint "
          "folder name",
          uuid, d.dir());
      continue;
    }
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(d.dir()) / uuid, ec);
    if (ec) {
      WorkerLog("deleting checkpoint %s under %s: %s (the master asks again)",
                uuid, d.dir(), ec.message());
      continue;
    }
    done->add_uuids(uuid);
    if (stall != nullptr && *stall != '\0') {
      std::string reached = absl::StrCat(stall, ".reached");
      std::FILE* f = std::fopen(reached.c_str(), "w");
      if (f != nullptr) std::fclose(f);
      while (std::filesystem::exists(stall, ec)) {
        absl::SleepFor(absl::Milliseconds(20));
      }
    }
  }
  if (done->uuids_size() == 0) return;
  WorkerLog("deleted %d checkpoint(s) under %s", done->uuids_size(), d.dir());
  absl::StatusOr<int64_t> seq = outbox_.Add(std::move(m), /*force=*/true);
  if (!seq.ok()) {
    WorkerLog("reporting deleted checkpoints: %s (the master asks again)",
              seq.status().ToString());
  }
}

absl::Status WorkerDaemon::Run() {
  last_with_master_ = absl::Now();
  MasterLink::Options lo;
  lo.target = options_.master;
  lo.token = options_.token;
  lo.tls_ca_pem = options_.tls_ca_pem;
  lo.tls_server_name = options_.tls_server_name;
  lo.heartbeat = options_.heartbeat;
  MasterLink::Callbacks cb;
  cb.make_hello = [this] { return MakeHello(); };
  cb.on_welcome = [this](const v1::Welcome& w) {
    Command c;
    c.kind = Command::Kind::kWelcome;
    c.welcome = w;
    Post(std::move(c));
  };
  cb.on_message = [this](const v1::MasterMessage& m) {
    Command c;
    c.kind = m.has_start_trial() ? Command::Kind::kStart : Command::Kind::kStop;
    if (m.has_delete_checkpoints()) c.kind = Command::Kind::kDeleteCheckpoints;
    if (!m.has_start_trial() && !m.has_stop_trial() &&
        !m.has_delete_checkpoints()) {
      return;
    }
    c.message = m;
    Post(std::move(c));
  };
  cb.on_refused = [this](const absl::Status& s) {
    Command c;
    c.kind = Command::Kind::kRefused;
    c.status = s;
    Post(std::move(c));
  };
  link_ = std::make_unique<MasterLink>(lo, &outbox_, cb);
  WorkerLog(
      "worker %s (incarnation %s) with %d %s slot(s), trial API on %s, "
      "work dir %s; connecting to %s",
      options_.worker_id, incarnation_, options_.slots.size(),
      options_.slots[0].type(), api_->address(), options_.work_dir,
      options_.master);
  link_->Start();

  absl::Status result;
  for (bool running = true; running;) {
    std::deque<Command> batch;
    {
      absl::MutexLock lock(&mu_);
      auto has_command = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !commands_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&has_command), kControlTick);
      batch.swap(commands_);
    }
    for (Command& c : batch) {
      if (!running) break;
      switch (c.kind) {
        case Command::Kind::kStart:
          StartTrial(c.message.start_trial());
          break;
        case Command::Kind::kStop: {
          const v1::StopTrial& st = c.message.stop_trial();
          StopTrial(st.trial_id(), st.run_id(), st.kill(),
                    st.timeout_ms() > 0 ? absl::Milliseconds(st.timeout_ms())
                                        : options_.stop_timeout);
          break;
        }
        case Command::Kind::kWelcome:
          if (c.welcome.agent_timeout_ms() > 0) {
            master_lost_after_ =
                absl::Milliseconds(c.welcome.agent_timeout_ms());
          }
          for (int64_t id : c.welcome.stop_trial_ids()) {
            StopTrial(id, /*run_id=*/0, /*kill=*/false, options_.stop_timeout);
          }
          break;
        case Command::Kind::kDeleteCheckpoints:
          DeleteCheckpoints(c.message.delete_checkpoints());
          break;
        case Command::Kind::kShutdown:
          WorkerLog("shutting down: stopping every trial");
          running = false;
          break;
        case Command::Kind::kRefused:
          result = c.status;
          running = false;
          break;
      }
    }
    ReapFinished();
    StopTrialsIfMasterLost();
  }

  StopAll(/*kill=*/false);
  std::vector<TrialRun*> live;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, entry] : runs_) live.push_back(entry.run.get());
  }
  for (TrialRun* run : live) {
    if (!run->WaitDone(options_.stop_timeout + kReportGrace)) {
      run->Stop(/*kill=*/true);
      run->WaitDone(kReportGrace);
    }
  }
  ReapFinished();
  RemoveSpareDirs();
  if (result.ok() && link_->welcomed() &&
      !outbox_.WaitAllAcked(options_.final_ack_timeout)) {
    WorkerLog("the master did not acknowledge %d message(s) before shutdown",
              outbox_.pending_messages());
  }
  link_->Stop();
  return result;
}

}  // namespace det::worker
