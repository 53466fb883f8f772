#include "worker/daemon/trial_run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace det::worker {
namespace {

// Longer lines are cut into pieces of at most this size.
constexpr size_t kMaxLine = 16 << 10;

// The length of the UTF-8 sequence that byte `b` starts; 0 when `b` starts
// none (a continuation byte, or one that never occurs in UTF-8).
size_t Utf8Length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// The length of the well-formed UTF-8 character at s[i] (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0.
size_t Utf8CharAt(absl::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const size_t n = Utf8Length(byte(i));
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  const unsigned char b0 = byte(i);
  const unsigned char b1 = n > 1 ? byte(i + 1) : 0;
  if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F) ||
      (b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 > 0x8F)) {
    return 0;
  }
  return n;
}

// `line` with every byte that is not part of a well-formed UTF-8 character
// replaced by U+FFFD. Log lines travel in protobuf string fields, which
// must be UTF-8: the master cannot parse a message with one that is not,
// and would never acknowledge it (the worker would resend it forever).
std::string ToValidUtf8(std::string line) {
  size_t i = 0;
  while (i < line.size()) {  // the common case: valid, returned as it is
    const size_t n = Utf8CharAt(line, i);
    if (n == 0) break;
    i += n;
  }
  if (i == line.size()) return line;
  std::string out = line.substr(0, i);
  while (i < line.size()) {
    const size_t n = Utf8CharAt(line, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(line, i, n);
      i += n;
    }
  }
  return out;
}

// Where to cut `s` so that the piece before the cut does not end inside a
// UTF-8 character: before a lead byte whose sequence is not complete.
size_t Utf8CutPoint(absl::string_view s) {
  const size_t size = s.size();
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const auto b = static_cast<unsigned char>(s[size - back]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further
    return Utf8Length(b) > back ? size - back : size;
  }
  return size;
}
// After the processes exited, how long their pipes may stay open (held by
// something they started) before the run is reported anyway.
constexpr absl::Duration kDrainTimeout = absl::Seconds(2);
// Without pidfds, how often to look for exited processes.
constexpr absl::Duration kReapPoll = absl::Milliseconds(50);

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

bool Failed(int status) {
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

std::string Describe(int status) {
  if (WIFEXITED(status)) {
    return absl::StrCat("exited with code ", WEXITSTATUS(status));
  }
  const int sig = WTERMSIG(status);
  return absl::StrCat("was killed by signal ", sig, " (", strsignal(sig),
                      WCOREDUMP(status) ? ", core dumped" : "", ")");
}

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

struct TrialRun::Stream {
  int fd = -1;
  const char* source = "stdout";
  int rank = 0;
  std::string partial;
  bool just_cut = false;  // the partial line was just emitted as a piece
};

struct TrialRun::Proc {
  int rank = 0;
  pid_t pid = -1;
  int pidfd = -1;
  bool exited = false;
  int status = 0;
};

TrialRun::TrialRun(Options options, std::vector<Process> processes,
                   LogSink on_logs, ExitSink on_exit)
    : options_(std::move(options)),
      on_logs_(std::move(on_logs)),
      on_exit_(std::move(on_exit)),
      stop_timeout_(options_.stop_timeout) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (const Process& p : processes) {
    Proc& proc = procs_.emplace_back();
    proc.rank = p.rank;
    proc.pid = p.child.pid;
    proc.pidfd = PidfdOpen(p.child.pid);
    for (auto [fd, source] : {std::pair{p.child.stdout_fd, "stdout"},
                              std::pair{p.child.stderr_fd, "stderr"}}) {
      if (fd < 0) continue;
      Stream& s = streams_.emplace_back();
      s.fd = fd;
      s.source = source;
      s.rank = p.rank;
    }
  }
  thread_ = std::thread([this] { Supervise(); });
}

TrialRun::~TrialRun() {
  if (thread_.joinable()) {
    if (!done()) Stop(/*kill=*/true);
    thread_.join();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

void TrialRun::Stop(bool kill, absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    if (kill) {
      kill_requested_ = true;
    } else {
      stop_requested_ = true;
      if (timeout > absl::ZeroDuration()) stop_timeout_ = timeout;
    }
  }
  const uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void TrialRun::NoteSteps(int64_t steps) {
  int64_t cur = steps_.load();
  while (steps > cur && !steps_.compare_exchange_weak(cur, steps)) {
  }
}

bool TrialRun::WaitDone(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto is_done = [this] { return done_.load(); };
  return mu_.AwaitWithTimeout(absl::Condition(&is_done), timeout);
}

std::vector<std::string> TrialRun::Tail(size_t n) const {
  absl::MutexLock lock(&mu_);
  const size_t from = ring_.size() > n ? ring_.size() - n : 0;
  return std::vector<std::string>(ring_.begin() + from, ring_.end());
}

void TrialRun::SignalLive(int sig) {
  for (const Proc& p : procs_) {
    if (!p.exited) SignalGroup(p.pid, sig);
  }
}

void TrialRun::ApplyStopRequest() {
  bool kill, stop;
  absl::Duration timeout;
  {
    absl::MutexLock lock(&mu_);
    kill = kill_requested_ && !kill_applied_;
    stop = stop_requested_ && !stop_applied_;
    timeout = stop_timeout_;
  }
  const bool any_live = std::any_of(procs_.begin(), procs_.end(),
                                    [](const Proc& p) { return !p.exited; });
  if (kill) {
    kill_applied_ = true;
    if (any_live) {
      SignalLive(SIGKILL);
      killed_by_worker_ = true;
      was_stopped_ = true;
      kill_reason_ = "killed on request";
    }
  } else if (stop) {
    stop_applied_ = true;
    if (any_live) {
      SignalLive(SIGTERM);
      was_stopped_ = true;
      kill_deadline_ = std::min(kill_deadline_, absl::Now() + timeout);
      deadline_from_stop_ = true;
      kill_reason_ = absl::StrCat("killed after not stopping within ",
                                  absl::FormatDuration(timeout), " of SIGTERM");
    }
  }
}

void TrialRun::ReapExited() {
  for (size_t i = 0; i < procs_.size(); ++i) {
    Proc& p = procs_[i];
    if (p.exited) continue;
    int status = 0;
    pid_t r = waitpid(p.pid, &status, WNOHANG);
    if (r == 0) continue;
    if (r < 0 && errno == EINTR) continue;
    p.exited = true;
    p.status = r == p.pid ? status : (1 << 8);  // lost: count as exit 1
    if (p.pidfd >= 0) {
      close(p.pidfd);
      p.pidfd = -1;
    }
    if (Failed(p.status) && first_failure_ < 0) {
      first_failure_ = static_cast<int>(i);
    }
  }
}

void TrialRun::AddLine(const std::string& source, std::string line, int rank) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  line = ToValidUtf8(std::move(line));
  if (procs_.size() > 1 || rank != 0) {
    line = absl::StrCat("[rank ", rank, "] ", line);
  }
  if (batch_.empty()) batch_start_ = absl::Now();
  v1::LogLine& l = batch_.emplace_back();
  l.set_time_us(NowUs());
  l.set_source(source);
  l.set_line(line);
  batch_bytes_ += line.size() + 32;
  {
    absl::MutexLock lock(&mu_);
    ring_.push_back(absl::StrCat(source, ": ", line));
    while (ring_.size() > options_.ring_lines) ring_.pop_front();
    if (source == "stderr") {
      stderr_tail_.push_back(std::move(line));
      while (stderr_tail_.size() > options_.message_tail_lines) {
        stderr_tail_.pop_front();
      }
    }
  }
  // A flood of output goes out in bounded batches as it is read.
  if (batch_.size() >= options_.batch_lines ||
      batch_bytes_ >= options_.batch_bytes) {
    FlushLogs(/*force=*/true);
  }
}

void TrialRun::ReadStream(Stream& s) {
  char buf[64 << 10];
  for (;;) {
    ssize_t n = read(s.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // EOF or a broken pipe: this stream is over
      if (!s.partial.empty()) AddLine(s.source, std::move(s.partial), s.rank);
      s.partial.clear();
      close(s.fd);
      s.fd = -1;
      return;
    }
    // Appends buf[from, to) to the partial line, cutting it into pieces of
    // at most kMaxLine bytes so one endless line cannot grow without bound;
    // a cut falls between UTF-8 characters, never inside one.
    auto append = [&](size_t from, size_t to) {
      while (from < to) {
        const size_t take = std::min(to - from, kMaxLine - s.partial.size());
        s.partial.append(buf + from, take);
        from += take;
        s.just_cut = false;
        if (s.partial.size() == kMaxLine) {
          const size_t cut = Utf8CutPoint(s.partial);
          std::string rest = s.partial.substr(cut);
          s.partial.resize(cut);
          AddLine(s.source, std::move(s.partial), s.rank);
          s.partial = std::move(rest);
          s.just_cut = s.partial.empty();
        }
      }
    };
    size_t start = 0;
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      if (buf[i] == '\n') {
        append(start, i);
        // A line of exactly kMaxLine bytes was already emitted whole.
        if (!(s.partial.empty() && s.just_cut)) {
          AddLine(s.source, std::move(s.partial), s.rank);
        }
        s.partial.clear();
        s.just_cut = false;
        start = i + 1;
      }
    }
    append(start, static_cast<size_t>(n));
  }
}

void TrialRun::FlushLogs(bool force) {
  if (batch_.empty()) return;
  if (!force && batch_.size() < options_.batch_lines &&
      batch_bytes_ < options_.batch_bytes &&
      absl::Now() - batch_start_ < options_.batch_age) {
    return;
  }
  v1::TrialEvent ev;
  ev.set_trial_id(options_.trial_id);
  ev.set_run_id(options_.run_id);
  v1::LogBatch* logs = ev.mutable_logs();
  if (dropped_lines_ > 0) {
    v1::LogLine* note = logs->add_lines();
    note->set_time_us(NowUs());
    note->set_source("worker");
    note->set_line(absl::StrCat(
        dropped_lines_,
        " log lines were dropped: the worker's buffer was full while the "
        "master was unreachable"));
  }
  for (v1::LogLine& l : batch_) *logs->add_lines() = std::move(l);
  const int64_t lines = static_cast<int64_t>(batch_.size());
  batch_.clear();
  batch_bytes_ = 0;
  if (on_logs_(std::move(ev)).ok()) {
    dropped_lines_ = 0;
  } else {
    dropped_lines_ += lines;
  }
}

v1::TrialEvent TrialRun::ExitEvent() {
  v1::TrialEvent ev;
  ev.set_trial_id(options_.trial_id);
  ev.set_run_id(options_.run_id);
  v1::TrialExited* ex = ev.mutable_exited();
  ex->set_steps_completed(steps_.load());
  const bool single = procs_.size() == 1;
  auto who = [&](const Proc& p) {
    return single ? std::string("the trial process")
                  : absl::StrCat("rank ", p.rank);
  };
  std::string tail;
  {
    absl::MutexLock lock(&mu_);
    if (!stderr_tail_.empty()) {
      tail = absl::StrCat("\nlast lines of stderr:\n",
                          absl::StrJoin(stderr_tail_, "\n"));
    }
  }
  if (killed_by_worker_) {
    ex->set_reason(v1::EXIT_REASON_KILLED);
    ex->set_exit_code(-SIGKILL);
    ex->set_message(kill_reason_);
    return ev;
  }
  if (first_failure_ < 0) {
    ex->set_reason(was_stopped_ ? v1::EXIT_REASON_STOPPED
                                : v1::EXIT_REASON_COMPLETED);
    ex->set_exit_code(0);
    if (was_stopped_) ex->set_message("stopped on request");
    return ev;
  }
  const Proc& p = procs_[first_failure_];
  ex->set_exit_code(ExitCode(p.status));
  if (WIFEXITED(p.status) && WEXITSTATUS(p.status) == 3) {
    ex->set_reason(v1::EXIT_REASON_INVALID_HP);
    ex->set_message(absl::StrCat(
        who(p), " rejected its hyperparameters (exit code 3)", tail));
  } else if (was_stopped_ && WIFSIGNALED(p.status) &&
             WTERMSIG(p.status) == SIGTERM) {
    // It asked for nothing more than what we asked of it: to go away.
    ex->set_reason(v1::EXIT_REASON_STOPPED);
    ex->set_message(absl::StrCat(
        "stopped on request; ", who(p),
        " ended by SIGTERM without exiting on its own (no checkpoint may "
        "have been written)"));
  } else {
    ex->set_reason(v1::EXIT_REASON_ERRORED);
    ex->set_message(absl::StrCat(who(p), " ", Describe(p.status), tail));
  }
  return ev;
}

void TrialRun::Supervise() {
  std::vector<pollfd> fds;
  absl::Time drain_deadline = absl::InfiniteFuture();
  for (;;) {
    const bool all_exited = std::all_of(procs_.begin(), procs_.end(),
                                        [](const Proc& p) { return p.exited; });
    const bool streams_open =
        std::any_of(streams_.begin(), streams_.end(),
                    [](const Stream& s) { return s.fd >= 0; });
    if (all_exited) {
      if (drain_deadline == absl::InfiniteFuture()) {
        // Whatever the trial left behind in its groups goes too.
        for (const Proc& p : procs_) kill(-p.pid, SIGKILL);
        drain_deadline = absl::Now() + kDrainTimeout;
      }
      if (!streams_open || absl::Now() >= drain_deadline) break;
    }

    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    for (const Stream& s : streams_) {
      if (s.fd >= 0) fds.push_back({s.fd, POLLIN, 0});
    }
    bool need_polling = false;
    for (const Proc& p : procs_) {
      if (p.exited) continue;
      if (p.pidfd >= 0) {
        fds.push_back({p.pidfd, POLLIN, 0});
      } else {
        need_polling = true;
      }
    }
    const absl::Time now = absl::Now();
    absl::Time wake = now + (need_polling ? kReapPoll : absl::Seconds(1));
    if (!batch_.empty())
      wake = std::min(wake, batch_start_ + options_.batch_age);
    wake = std::min(wake, kill_deadline_);
    wake = std::min(wake, drain_deadline);
    const int timeout_ms = static_cast<int>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Ceil(
                                 wake - now, absl::Milliseconds(1)))));
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      // Should not happen; avoid spinning.
      absl::SleepFor(absl::Milliseconds(10));
    }
    uint64_t count;
    while (read(wake_fd_, &count, sizeof(count)) > 0) {
    }

    // Reap first, so a stop that arrives as the trial finishes on its own
    // does not turn COMPLETED into STOPPED.
    ReapExited();
    ApplyStopRequest();
    for (Stream& s : streams_) {
      if (s.fd >= 0) ReadStream(s);
    }
    ReapExited();

    const bool any_live = std::any_of(procs_.begin(), procs_.end(),
                                      [](const Proc& p) { return !p.exited; });
    if (first_failure_ >= 0 && any_live && !failure_term_sent_) {
      failure_term_sent_ = true;
      SignalLive(SIGTERM);
      kill_deadline_ =
          std::min(kill_deadline_, absl::Now() + options_.stop_timeout);
    }
    if (any_live && absl::Now() >= kill_deadline_) {
      SignalLive(SIGKILL);
      if (deadline_from_stop_ && first_failure_ < 0) killed_by_worker_ = true;
      kill_deadline_ = absl::InfiniteFuture();
    }
    FlushLogs(/*force=*/false);
  }

  for (Stream& s : streams_) {
    if (s.fd < 0) continue;
    ReadStream(s);
    if (s.fd >= 0) {  // still held open by something that outlived it
      if (!s.partial.empty()) AddLine(s.source, std::move(s.partial), s.rank);
      close(s.fd);
      s.fd = -1;
    }
  }
  FlushLogs(/*force=*/true);
  on_exit_(ExitEvent());
  absl::MutexLock lock(&mu_);
  done_.store(true);
}

}  // namespace det::worker
