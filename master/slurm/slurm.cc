#include "master/slurm/slurm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace det::slurm {
namespace {

std::string Where(const YAML::Node& n, const std::string& key) {
  return absl::StrCat("line ", n.Mark().line + 1, ", column ",
                      n.Mark().column + 1, ": resource_manager.", key);
}

// sbatch options det sets itself; given in sbatch_args they would fight
// with the job det means to run.
constexpr const char* kReserved[] = {
    "--job-name", "-J",        "--output", "-o", "--error",
    "-e",         "--gres",    "--gpus",   "-G", "--wrap",
    "--nodes",    "-N",        "--ntasks", "-n", "--cpus-per-task",
    "-c",         "--parsable"};

// A word for bash, single-quoted.
std::string Quote(absl::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

bool ValidSlurmTime(absl::string_view t) {
  if (t == "UNLIMITED" || t == "INFINITE") return true;
  absl::string_view rest = t;
  size_t dash = t.find('-');
  bool days = dash != absl::string_view::npos;
  if (days) {
    if (!AllDigits(t.substr(0, dash))) return false;
    rest = t.substr(dash + 1);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, ':');
  if (parts.empty() || parts.size() > 3) return false;
  for (absl::string_view p : parts) {
    if (!AllDigits(p)) return false;
  }
  return true;
}

absl::StatusOr<SlurmOptions> ParseSlurmOptions(const YAML::Node& node) {
  SlurmOptions o;
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", node.Mark().line + 1, ", column ", node.Mark().column + 1,
        ": resource_manager: expected a mapping {type: slurm, ...}"));
  }
  std::vector<std::string> errors;
  auto str = [&](const YAML::Node& n, const std::string& key,
                 std::string* out) {
    if (!n.IsScalar()) {
      errors.push_back(Where(n, key) + ": expected a string");
    } else {
      *out = n.Scalar();
    }
  };
  auto integer = [&](const YAML::Node& n, const std::string& key, int lo,
                     int hi, int* out) {
    int v = 0;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v) || v < lo ||
        v > hi) {
      errors.push_back(absl::StrCat(Where(n, key), ": expected an integer in [",
                                    lo, ", ", hi, "]"));
    } else {
      *out = v;
    }
  };
  auto seconds = [&](const YAML::Node& n, const std::string& key,
                     absl::Duration* out) {
    double v = 0;
    if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &v) || !(v > 0)) {
      errors.push_back(Where(n, key) +
                       ": expected a positive number of seconds");
    } else {
      *out = absl::Seconds(v);
    }
  };
  const std::vector<std::string> known = {
      "type",           "partition",      "account",         "gpus_per_job",
      "cpus_per_job",   "slots_per_job",  "time_limit",      "sbatch_args",
      "max_jobs",       "idle_timeout_s", "poll_interval_s", "worker_binary",
      "master_address", "tls_ca",         "log_dir"};
  bool typed = false;
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "type") {
      typed = true;
      if (!v.IsScalar() || v.Scalar() != "slurm") {
        errors.push_back(Where(v, key) + ": only 'slurm' is supported");
      }
    } else if (key == "partition") {
      str(v, key, &o.partition);
    } else if (key == "account") {
      str(v, key, &o.account);
    } else if (key == "gpus_per_job") {
      integer(v, key, 0, 64, &o.gpus_per_job);
    } else if (key == "cpus_per_job") {
      integer(v, key, 1, 4096, &o.cpus_per_job);
    } else if (key == "slots_per_job") {
      integer(v, key, 1, 4096, &o.slots_per_job);
    } else if (key == "max_jobs") {
      integer(v, key, 1, 100000, &o.max_jobs);
    } else if (key == "time_limit") {
      str(v, key, &o.time_limit);
      if (v.IsScalar() && !ValidSlurmTime(o.time_limit)) {
        errors.push_back(Where(v, key) + ": '" + o.time_limit +
                         "' is not a Slurm time (M, H:M:S, D-H:M:S, ...)");
      }
    } else if (key == "sbatch_args") {
      if (!v.IsSequence()) {
        errors.push_back(Where(v, key) + ": expected a list of strings");
        continue;
      }
      for (size_t i = 0; i < v.size(); ++i) {
        std::string arg;
        std::string k = absl::StrCat(key, "[", i, "]");
        str(v[i], k, &arg);
        std::string name = arg.substr(0, arg.find('='));
        for (const char* r : kReserved) {
          if (name == r) {
            errors.push_back(Where(v[i], k) + ": " + name +
                             " is set by det (use gpus_per_job, cpus_per_job)");
          }
        }
        if (!arg.empty()) o.sbatch_args.push_back(arg);
      }
    } else if (key == "idle_timeout_s") {
      seconds(v, key, &o.idle_timeout);
    } else if (key == "poll_interval_s") {
      seconds(v, key, &o.poll_interval);
    } else if (key == "worker_binary") {
      str(v, key, &o.worker_binary);
    } else if (key == "master_address") {
      str(v, key, &o.master_address);
    } else if (key == "tls_ca") {
      str(v, key, &o.tls_ca);
    } else if (key == "log_dir") {
      str(v, key, &o.log_dir);
    } else {
      errors.push_back(Where(kv.first, key) + ": unknown key (known: " +
                       absl::StrJoin(known, ", ") + ")");
    }
  }
  if (!typed) {
    errors.push_back(absl::StrCat("line ", node.Mark().line + 1, ", column ",
                                  node.Mark().column + 1,
                                  ": resource_manager.type: missing (slurm)"));
  }
  if (o.master_address.empty()) {
    errors.push_back(absl::StrCat(
        "line ", node.Mark().line + 1, ", column ", node.Mark().column + 1,
        ": resource_manager.master_address: missing (the HOST:PORT the "
        "allocated nodes reach the master on)"));
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  }
  return o;
}

std::string BatchScript(const SlurmOptions& o) {
  std::vector<std::string> L = {
      "#!/bin/bash", "#SBATCH --job-name=det-worker", "#SBATCH --nodes=1",
      "#SBATCH --ntasks=1",
      absl::StrCat("#SBATCH --cpus-per-task=", o.cpus_per_job)};
  if (o.gpus_per_job > 0) {
    L.push_back(absl::StrCat("#SBATCH --gres=gpu:", o.gpus_per_job));
  }
  if (!o.partition.empty()) L.push_back("#SBATCH --partition=" + o.partition);
  if (!o.account.empty()) L.push_back("#SBATCH --account=" + o.account);
  if (!o.time_limit.empty()) L.push_back("#SBATCH --time=" + o.time_limit);
  if (!o.log_dir.empty()) {
    L.push_back("#SBATCH --output=" + o.log_dir + "/det-worker-%j.log");
  }
  for (const std::string& a : o.sbatch_args) L.push_back("#SBATCH " + a);
  L.push_back("set -eu");
  L.push_back(
      "# One det-worker on the allocated node, its slots the allocation's:");
  L.push_back(
      "# one per GPU Slurm granted (CUDA_VISIBLE_DEVICES), or CPU slots.");
  std::vector<std::string> argv = {
      Quote(o.worker_binary),
      "--master",
      Quote(o.master_address),
      "--name",
      "\"slurm-${SLURM_JOB_ID}\"",
      "--work_dir",
      "\"${TMPDIR:-/tmp}/det-worker-${SLURM_JOB_ID}\""};
  if (o.gpus_per_job > 0) {
    argv.insert(argv.end(), {"--slots", "0"});
  } else {
    argv.insert(argv.end(),
                {"--cpu_only", "--slots", absl::StrCat(o.slots_per_job)});
  }
  if (!o.tls_ca.empty()) argv.insert(argv.end(), {"--tls_ca", Quote(o.tls_ca)});
  L.push_back("exec " + absl::StrJoin(argv, " "));
  return absl::StrJoin(L, "\n") + "\n";
}

JobState ParseJobState(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s);
  // sacct writes "CANCELLED by 1000"; squeue abbreviates nothing with %T.
  absl::string_view word = s.substr(0, s.find(' '));
  if (word == "PENDING" || word == "CONFIGURING" || word == "REQUEUED" ||
      word == "REQUEUE_HOLD" || word == "REQUEUE_FED" || word == "RESIZING") {
    return JobState::kPending;
  }
  if (word == "RUNNING" || word == "COMPLETING" || word == "SUSPENDED" ||
      word == "STOPPED" || word == "SIGNALING" || word == "STAGE_OUT") {
    return JobState::kRunning;
  }
  if (word == "COMPLETED") return JobState::kCompleted;
  if (word == "CANCELLED" || word == "PREEMPTED" || word == "REVOKED") {
    return JobState::kCancelled;
  }
  if (word == "TIMEOUT") return JobState::kTimeout;
  if (word == "FAILED" || word == "NODE_FAIL" || word == "OUT_OF_MEMORY" ||
      word == "BOOT_FAIL" || word == "DEADLINE" || word == "SPECIAL_EXIT") {
    return JobState::kFailed;
  }
  return JobState::kUnknown;
}

absl::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kPending:
      return "pending";
    case JobState::kRunning:
      return "running";
    case JobState::kCompleted:
      return "completed";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
    case JobState::kTimeout:
      return "timed out";
    case JobState::kUnknown:
      break;
  }
  return "unknown";
}

// ---- SlurmClient ----

absl::StatusOr<std::string> SlurmClient::Submit(const std::string& script) {
  absl::StatusOr<CommandResult> r =
      runner_->Run({"sbatch", "--parsable"}, script);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat(
        "sbatch failed (exit ", r->exit_code,
        "): ", absl::StripAsciiWhitespace(r->err.empty() ? r->out : r->err)));
  }
  // --parsable: "JOBID" or "JOBID;CLUSTER".
  std::string out(absl::StripAsciiWhitespace(r->out));
  std::string id = out.substr(0, out.find(';'));
  if (!AllDigits(id)) {
    return absl::InternalError(
        absl::StrCat("sbatch printed no job id: '", out, "'"));
  }
  return id;
}

absl::StatusOr<std::map<std::string, JobState>> SlurmClient::States(
    const std::set<std::string>& ids) {
  std::map<std::string, JobState> out;
  if (ids.empty()) return out;
  std::string list = absl::StrJoin(ids, ",");
  absl::StatusOr<CommandResult> q = runner_->Run(
      {"squeue", "-h", "-t", "all", "-o", "%i|%T", "-j", list}, "");
  if (!q.ok()) return q.status();
  // squeue lists ended jobs too (-t all) while slurmctld keeps them
  // (MinJobAge, 300 s by default); it exits non-zero when none of the ids
  // is known any more, and its output is still what it knows. Jobs it no
  // longer lists are asked of sacct (accounting, where there is one).
  for (absl::string_view line :
       absl::StrSplit(q->out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, '|');
    if (f.size() == 2 && ids.count(f[0])) out[f[0]] = ParseJobState(f[1]);
  }
  std::set<std::string> gone;
  for (const std::string& id : ids) {
    if (!out.count(id)) gone.insert(id);
  }
  if (gone.empty()) return out;
  absl::StatusOr<CommandResult> a =
      runner_->Run({"sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j",
                    absl::StrJoin(gone, ",")},
                   "");
  if (!a.ok()) return a.status();
  for (absl::string_view line :
       absl::StrSplit(a->out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, '|');
    if (f.size() >= 2 && gone.count(f[0])) out[f[0]] = ParseJobState(f[1]);
  }
  for (const std::string& id : gone) {
    if (!out.count(id)) out[id] = JobState::kUnknown;
  }
  return out;
}

absl::Status SlurmClient::Cancel(const std::string& id) {
  absl::StatusOr<CommandResult> r = runner_->Run({"scancel", id}, "");
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::UnavailableError(
        absl::StrCat("scancel ", id, " failed (exit ", r->exit_code,
                     "): ", absl::StripAsciiWhitespace(r->err)));
  }
  return absl::OkStatus();
}

// ---- SlurmProvisioner ----

int SlurmProvisioner::JobsToSubmit(int unplaceable_slots) const {
  int per_job = std::max(1, o_.SlotsPerJob());
  int pending_slots = 0;
  for (const auto& [id, job] : jobs_) {
    if (!job.worker_seen && !job.cancelled_by_us) pending_slots += per_job;
  }
  int missing = unplaceable_slots - pending_slots;
  if (missing <= 0) return 0;
  int want = (missing + per_job - 1) / per_job;
  int room = o_.max_jobs - static_cast<int>(jobs_.size());
  return std::max(0, std::min(want, room));
}

void SlurmProvisioner::Submitted(const std::string& job_id, absl::Time now) {
  jobs_[job_id].submitted = now;
}

void SlurmProvisioner::WorkerSeen(const std::string& worker_id, bool idle,
                                  absl::Time now) {
  if (!absl::StartsWith(worker_id, "slurm-")) return;
  auto it = jobs_.find(worker_id.substr(6));
  if (it == jobs_.end()) return;
  Job& j = it->second;
  j.worker_seen = true;
  if (!idle) {
    j.idle_since.reset();
  } else if (!j.idle_since) {
    j.idle_since = now;
  }
}

std::vector<std::string> SlurmProvisioner::IdleJobsToCancel(absl::Time now) {
  std::vector<std::string> out;
  for (auto& [id, job] : jobs_) {
    if (!job.cancelled_by_us && job.idle_since &&
        now - *job.idle_since >= o_.idle_timeout) {
      job.cancelled_by_us = true;
      out.push_back(id);
    }
  }
  return out;
}

std::vector<JobEvent> SlurmProvisioner::Update(
    const std::map<std::string, JobState>& states) {
  std::vector<JobEvent> events;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    auto st = states.find(it->first);
    if (st == states.end() || st->second == JobState::kPending ||
        st->second == JobState::kRunning || st->second == JobState::kUnknown) {
      ++it;
      continue;
    }
    JobEvent e;
    e.job_id = it->first;
    e.worker_id = WorkerIdFor(it->first);
    e.state = st->second;
    e.expected = it->second.cancelled_by_us
                     ? (st->second == JobState::kCancelled ||
                        st->second == JobState::kCompleted)
                     : st->second == JobState::kCompleted;
    if (!e.expected) {
      e.message = absl::StrCat(
          "Slurm job ", it->first, " (worker ", e.worker_id, ") ",
          JobStateName(st->second),
          st->second == JobState::kCancelled ? " by someone other than det"
                                             : "",
          "; its trials restart elsewhere under max_restarts");
    }
    events.push_back(std::move(e));
    it = jobs_.erase(it);
  }
  return events;
}

std::set<std::string> SlurmProvisioner::ActiveJobs() const {
  std::set<std::string> out;
  for (const auto& [id, job] : jobs_) out.insert(id);
  return out;
}

// ---- Process runner ----

namespace {

class ProcessRunner : public CommandRunner {
 public:
  explicit ProcessRunner(absl::Duration timeout) : timeout_(timeout) {}

  absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv,
                                    const std::string& input) override {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
        pipe2(err, O_CLOEXEC) != 0) {
      return absl::ResourceExhaustedError("pipe: " +
                                          std::string(std::strerror(errno)));
    }
    pid_t pid = fork();
    if (pid < 0) {
      return absl::ResourceExhaustedError("fork: " +
                                          std::string(std::strerror(errno)));
    }
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      std::vector<char*> args;
      for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      std::fprintf(stderr, "cannot run %s: %s\n", args[0],
                   std::strerror(errno));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    // The input is small (a script): written before reading the output.
    size_t off = 0;
    signal(SIGPIPE, SIG_IGN);
    while (off < input.size()) {
      ssize_t n = write(in[1], input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(in[1]);
    CommandResult r;
    auto deadline =
        std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout_);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open = 2;
    bool killed = false;
    while (open > 0) {
      int ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now())
              .count());
      if (ms <= 0) {
        kill(pid, SIGKILL);
        killed = true;
        break;
      }
      if (poll(fds, 2, ms) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[4096];
        ssize_t n = read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          close(fds[i].fd);
          fds[i].fd = -1;
          --open;
        } else {
          (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
        }
      }
    }
    for (pollfd& f : fds) {
      if (f.fd >= 0) close(f.fd);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (killed) {
      return absl::DeadlineExceededError(absl::StrCat(
          argv[0], " did not finish within ", absl::FormatDuration(timeout_)));
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (r.exit_code == 127 && absl::StrContains(r.err, "cannot run")) {
      return absl::FailedPreconditionError(absl::StrCat(
          absl::StripAsciiWhitespace(r.err), " (is Slurm installed here?)"));
    }
    return r;
  }

 private:
  absl::Duration timeout_;
};

}  // namespace

std::unique_ptr<CommandRunner> MakeProcessRunner(absl::Duration timeout) {
  return std::make_unique<ProcessRunner>(timeout);
}

}  // namespace det::slurm
