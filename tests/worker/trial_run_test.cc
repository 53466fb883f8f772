// TrialRun and SpawnChild with /bin/sh children: output capture, exit
// classification, stop and kill.
#include "worker/daemon/trial_run.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "worker/daemon/child_process.h"

extern char** environ;

namespace det::worker {
namespace {

// Collects what a run emits.
struct Sink {
  absl::Mutex mu;
  std::vector<v1::LogLine> lines;
  std::vector<v1::TrialEvent> exits;
  std::vector<size_t> batch_bytes;
  bool refuse_logs = false;
  int refused = 0;
};

Child Sh(const std::string& script) {
  ChildSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  for (char** e = environ; *e != nullptr; ++e) spec.env.emplace_back(*e);
  spec.cwd = "/";
  absl::StatusOr<Child> child = SpawnChild(spec);
  EXPECT_TRUE(child.ok()) << child.status();
  return child.ok() ? *child : Child();
}

std::unique_ptr<TrialRun> StartRun(
    Sink* sink, std::vector<std::string> scripts,
    absl::Duration stop_timeout = absl::Seconds(5)) {
  std::vector<TrialRun::Process> procs;
  for (size_t i = 0; i < scripts.size(); ++i) {
    procs.push_back({static_cast<int>(i), Sh(scripts[i])});
  }
  TrialRun::Options o;
  o.trial_id = 4;
  o.run_id = 1;
  o.stop_timeout = stop_timeout;
  return std::make_unique<TrialRun>(
      o, std::move(procs),
      [sink](v1::TrialEvent ev) -> absl::Status {
        absl::MutexLock l(&sink->mu);
        if (sink->refuse_logs) {
          ++sink->refused;
          return absl::ResourceExhaustedError("full");
        }
        sink->batch_bytes.push_back(ev.ByteSizeLong());
        for (const v1::LogLine& line : ev.logs().lines()) {
          sink->lines.push_back(line);
        }
        return absl::OkStatus();
      },
      [sink](v1::TrialEvent ev) {
        absl::MutexLock l(&sink->mu);
        sink->exits.push_back(std::move(ev));
      });
}

v1::TrialExited Finish(TrialRun* run, Sink* sink) {
  EXPECT_TRUE(run->WaitDone(absl::Seconds(20)));
  absl::MutexLock l(&sink->mu);
  EXPECT_EQ(sink->exits.size(), 1u);
  if (sink->exits.empty()) return v1::TrialExited();
  EXPECT_EQ(sink->exits[0].trial_id(), 4);
  EXPECT_EQ(sink->exits[0].run_id(), 1);
  return sink->exits[0].exited();
}

std::vector<std::string> Lines(Sink* sink) {
  absl::MutexLock l(&sink->mu);
  std::vector<std::string> out;
  for (const v1::LogLine& line : sink->lines) {
    out.push_back(line.source() + ": " + line.line());
  }
  return out;
}

TEST(TrialRunTest, CapturesOutputAndCompletes) {
  Sink sink;
  auto run = StartRun(&sink, {"echo one; echo two >&2; printf 'no newline'"});
  run->NoteSteps(40);
  run->NoteSteps(12);  // progress never goes back
  v1::TrialExited ex = Finish(run.get(), &sink);
  EXPECT_EQ(ex.reason(), v1::EXIT_REASON_COMPLETED);
  EXPECT_EQ(ex.exit_code(), 0);
  EXPECT_EQ(ex.steps_completed(), 40);
  std::vector<std::string> lines = Lines(&sink);
  EXPECT_NE(std::find(lines.begin(), lines.end(), "stdout: one"), lines.end());
  EXPECT_NE(std::find(lines.begin(), lines.end(), "stderr: two"), lines.end());
  EXPECT_NE(std::find(lines.begin(), lines.end(), "stdout: no newline"),
            lines.end());
  EXPECT_EQ(run->Tail(10).size(), 3u);
}

TEST(TrialRunTest, SplitsVeryLongLines) {
  Sink sink;
  auto run = StartRun(&sink, {"head -c 40000 /dev/zero | tr '\\0' a; echo"});
  EXPECT_EQ(Finish(run.get(), &sink).reason(), v1::EXIT_REASON_COMPLETED);
  size_t total = 0;
  for (const std::string& l : Lines(&sink)) {
    EXPECT_LE(l.size(), (16u << 10) + 8);
    total += l.size() - std::string("stdout: ").size();
  }
  EXPECT_EQ(total, 40000u);
}

TEST(TrialRunTest, AFloodOfOutputGoesOutInBoundedBatches) {
  Sink sink;
  // 3 MB in lines of 16000 bytes, faster than any batch age.
  auto run = StartRun(
      &sink, {"head -c 3000000 /dev/zero | tr '\\0' a | fold -w 16000; echo"});
  EXPECT_EQ(Finish(run.get(), &sink).reason(), v1::EXIT_REASON_COMPLETED);
  absl::MutexLock l(&sink.mu);
  EXPECT_EQ(sink.lines.size(), 188u);
  ASSERT_GE(sink.batch_bytes.size(), 3u);
  for (size_t b : sink.batch_bytes) EXPECT_LT(b, (1u << 20) + (64u << 10));
}

TEST(TrialRunTest, ExitCodesAreClassified) {
  {
    Sink sink;
    auto run = StartRun(&sink, {"echo bad hp >&2; exit 3"});
    v1::TrialExited ex = Finish(run.get(), &sink);
    EXPECT_EQ(ex.reason(), v1::EXIT_REASON_INVALID_HP);
    EXPECT_EQ(ex.exit_code(), 3);
    EXPECT_TRUE(absl::StrContains(ex.message(), "bad hp")) << ex.message();
  }
  {
    Sink sink;
    auto run =
        StartRun(&sink, {"for i in 1 2 3; do echo line$i >&2; done; exit 7"});
    v1::TrialExited ex = Finish(run.get(), &sink);
    EXPECT_EQ(ex.reason(), v1::EXIT_REASON_ERRORED);
    EXPECT_EQ(ex.exit_code(), 7);
    EXPECT_TRUE(absl::StrContains(ex.message(), "exited with code 7"));
    EXPECT_TRUE(absl::StrContains(ex.message(), "line1\nline2\nline3"))
        << ex.message();
  }
  {
    Sink sink;
    auto run = StartRun(&sink, {"kill -SEGV $$"});
    v1::TrialExited ex = Finish(run.get(), &sink);
    EXPECT_EQ(ex.reason(), v1::EXIT_REASON_ERRORED);
    EXPECT_EQ(ex.exit_code(), -SIGSEGV);
    EXPECT_TRUE(absl::StrContains(ex.message(), "signal 11")) << ex.message();
  }
}

TEST(TrialRunTest, GracefulStopGivesStopped) {
  Sink sink;
  auto run = StartRun(&sink, {"trap 'echo bye; exit 0' TERM; echo ready; "
                              "while :; do sleep 0.02; done"});
  // Wait until the shell has installed its trap.
  for (int i = 0; i < 1000 && run->Tail(1).empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  run->Stop(/*kill=*/false);
  v1::TrialExited ex = Finish(run.get(), &sink);
  EXPECT_EQ(ex.reason(), v1::EXIT_REASON_STOPPED) << ex.message();
  EXPECT_EQ(ex.exit_code(), 0);
  std::vector<std::string> lines = Lines(&sink);
  EXPECT_NE(std::find(lines.begin(), lines.end(), "stdout: bye"), lines.end());
}

TEST(TrialRunTest, KillAndStopTimeoutGiveKilled) {
  {
    Sink sink;
    auto run = StartRun(&sink, {"while :; do sleep 0.02; done"});
    run->Stop(/*kill=*/true);
    v1::TrialExited ex = Finish(run.get(), &sink);
    EXPECT_EQ(ex.reason(), v1::EXIT_REASON_KILLED);
    EXPECT_EQ(ex.exit_code(), -SIGKILL);
  }
  {
    Sink sink;
    auto run = StartRun(
        &sink, {"trap '' TERM; echo ready; while :; do sleep 0.02; done"});
    for (int i = 0; i < 1000 && run->Tail(1).empty(); ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    run->Stop(/*kill=*/false, absl::Milliseconds(100));
    v1::TrialExited ex = Finish(run.get(), &sink);
    EXPECT_EQ(ex.reason(), v1::EXIT_REASON_KILLED);
    EXPECT_TRUE(absl::StrContains(ex.message(), "100ms")) << ex.message();
  }
}

TEST(TrialRunTest, OneFailingRankStopsTheOthers) {
  Sink sink;
  auto run = StartRun(&sink, {"while :; do sleep 0.02; done",
                              "echo rank one fails >&2; exit 2"});
  v1::TrialExited ex = Finish(run.get(), &sink);
  EXPECT_EQ(ex.reason(), v1::EXIT_REASON_ERRORED);
  EXPECT_EQ(ex.exit_code(), 2);
  EXPECT_TRUE(absl::StrContains(ex.message(), "rank 1 exited with code 2"))
      << ex.message();
  EXPECT_TRUE(absl::StrContains(ex.message(), "[rank 1] rank one fails"))
      << ex.message();
}

TEST(TrialRunTest, DroppedLogsAreCountedAndSaid) {
  Sink sink;
  {
    absl::MutexLock l(&sink.mu);
    sink.refuse_logs = true;
  }
  // "kept" is printed only once the test has seen a batch refused and
  // creates the file.
  const det::test::TempDir dir("det-dropped-logs");
  const std::string flag = dir.File("flag");
  auto run = StartRun(&sink, {"echo lost; while [ ! -e " + flag +
                              " ]; do sleep 0.01; done; echo kept"});
  {
    absl::MutexLock l(&sink.mu);
    auto refused = [&sink]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sink.mu) {
      return sink.refused > 0;
    };
    ASSERT_TRUE(
        sink.mu.AwaitWithTimeout(absl::Condition(&refused), absl::Seconds(20)));
    sink.refuse_logs = false;
  }
  std::ofstream(flag).put('x');
  Finish(run.get(), &sink);
  std::string all = absl::StrJoin(Lines(&sink), "\n");
  EXPECT_TRUE(absl::StrContains(all, "worker: 1 log lines were dropped"))
      << all;
  EXPECT_TRUE(absl::StrContains(all, "stdout: kept")) << all;
}

TEST(SpawnChildTest, MissingProgramIsAClearError) {
  ChildSpec spec;
  spec.argv = {"/nonexistent/program"};
  spec.cwd = "/";
  absl::StatusOr<Child> child = SpawnChild(spec);
  ASSERT_FALSE(child.ok());
  EXPECT_TRUE(
      absl::StrContains(child.status().message(), "/nonexistent/program"));
  EXPECT_TRUE(absl::StrContains(child.status().message(), "No such file"));
}

TEST(SpawnChildTest, ChildHasItsOwnProcessGroup) {
  Child c = Sh("sleep 5");
  ASSERT_GT(c.pid, 0);
  EXPECT_EQ(getpgid(c.pid), c.pid);
  SignalGroup(c.pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(c.pid, &status, 0), c.pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  close(c.stdout_fd);
  close(c.stderr_fd);
}

TEST(PlainCommandTest, PlainWordsAreExecedWithoutAShell) {
  auto argv = PlainCommandArgv("/bin/true --a=1  b,c\tx.y", "/usr/bin:/bin");
  ASSERT_TRUE(argv.has_value());
  EXPECT_EQ(*argv,
            (std::vector<std::string>{"/bin/true", "--a=1", "b,c", "x.y"}));
  // A bare name is looked up on PATH, in order.
  argv = PlainCommandArgv("sh -x", "/nonexistent:/bin:/usr/bin");
  ASSERT_TRUE(argv.has_value());
  EXPECT_EQ((*argv)[0], "/bin/sh");
}

TEST(PlainCommandTest, AnythingTheShellWouldInterpretGoesToTheShell) {
  for (const char* cmd :
       {"/bin/echo $HOME", "/bin/echo 'a b'", "/bin/echo \"a\"",
        "/bin/echo a\\ b", "/bin/echo *", "/bin/echo ~", "/bin/true; x",
        "/bin/true && x", "/bin/true | x", "/bin/true > f", "/bin/echo #c",
        "/bin/echo {a,b}", "/bin/echo `x`", "X=1 /bin/true", "", "   "}) {
    EXPECT_FALSE(PlainCommandArgv(cmd, "/bin").has_value()) << cmd;
  }
  // Not found, relative, a directory, or a PATH entry the shell would take
  // relative to the trial's directory.
  EXPECT_FALSE(PlainCommandArgv("no-such-program-here", "/bin").has_value());
  EXPECT_FALSE(PlainCommandArgv("./run.sh", "/bin").has_value());
  EXPECT_FALSE(PlainCommandArgv("/bin", "/bin").has_value());
  EXPECT_FALSE(PlainCommandArgv("sh", ":/bin").has_value());
  EXPECT_FALSE(PlainCommandArgv("sh", "").has_value());
}

TEST(SpawnChildTest, ExecutableWithoutShebangRunsWithTheShell) {
  const det::test::TempDir dir("det-noexec");
  const std::string script = dir.Write("script", "echo from-script \"$1\"\n");
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  ChildSpec spec;
  spec.argv = {script, "arg1"};
  spec.cwd = "/";
  spec.shell_on_noexec = true;
  absl::StatusOr<Child> child = SpawnChild(spec);
  ASSERT_TRUE(child.ok()) << child.status();
  int status = 0;
  ASSERT_EQ(waitpid(child->pid, &status, 0), child->pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char buf[128] = {};
  fcntl(child->stdout_fd, F_SETFL, 0);
  ssize_t n = read(child->stdout_fd, buf, sizeof(buf) - 1);
  EXPECT_GT(n, 0);
  EXPECT_EQ(std::string(buf), "from-script arg1\n");
  close(child->stdout_fd);
  close(child->stderr_fd);
}

}  // namespace
}  // namespace det::worker
