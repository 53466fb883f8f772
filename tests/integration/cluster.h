// Test harness for integration tests: starts real det-master and det-worker
// processes on loopback with free ports inside a temporary directory, runs
// the det CLI, and cleans everything up (process groups killed) even when
// a test fails.
#ifndef DET_TESTS_INTEGRATION_CLUSTER_H_
#define DET_TESTS_INTEGRATION_CLUSTER_H_

#include <sys/types.h>

#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "det/v1/api.grpc.pb.h"
#include "gtest/gtest.h"

namespace det::testing {

// A child process in its own process group, with stdout+stderr in a file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
          const std::string& log_path);
  ~Process();  // SIGKILLs the process group if still running
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `sig` to the process group, waits up to `timeout` for the exit;
  // SIGKILL after that. Returns the wait status.
  int Stop(int sig, absl::Duration timeout);
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string log_path_;
};

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class Cluster {
 public:
  Cluster();
  ~Cluster();

  const std::string& dir() const { return dir_; }
  std::string master_address() const;

  // The store the master uses: `db` (a SQLite path or a postgresql://
  // URL); default a SQLite file in dir(). Call before StartMaster.
  void SetDb(const std::string& db) { db_ = db; }

  // A master started with --token and TLS: the CLI (DET_TOKEN,
  // DET_MASTER_CERT_FILE) and api() then use `token` and trust `ca_file`.
  void SetSecurity(const std::string& token, const std::string& ca_file) {
    token_ = token;
    ca_file_ = ca_file;
    stub_.reset();
  }
  // Workers started from now on run under `prefix` (e.g. {"ip", "netns",
  // "exec", "NAME"}); empty: directly.
  void SetWorkerPrefix(std::vector<std::string> prefix) {
    worker_prefix_ = std::move(prefix);
  }

  // Starts det-master (or restarts it on the same store and port).
  void StartMaster(const std::vector<std::string>& extra = {});
  void StopMaster(int sig = SIGTERM);
  Process* master() { return master_.get(); }

  // Starts a worker with `slots` CPU slots; returns its index.
  int StartWorker(const std::string& name, int slots,
                  const std::vector<std::string>& extra = {});
  Process* worker(int i) { return workers_.at(i).get(); }
  void StopWorker(int i, int sig = SIGTERM);

  // Runs the det CLI with DET_MASTER set; input is not a terminal.
  // `cwd` empty: the test's directory.
  CliResult Cli(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {},
                const std::string& cwd = "");
  // Runs `script` with /bin/sh -c (PATH has the det binaries first).
  CliResult Shell(const std::string& script, const std::string& cwd = "");

  // A gRPC stub to the master.
  v1::Api::Stub* api();

  // Creates an experiment from YAML text through the CLI; returns its id.
  int64_t CreateExperiment(const std::string& yaml,
                           const std::vector<std::string>& extra = {});
  // Polls until the experiment is terminal or the timeout passes.
  absl::StatusOr<v1::Experiment> WaitTerminal(int64_t id,
                                              absl::Duration timeout);
  std::vector<v1::Trial> Trials(int64_t experiment_id);
  std::vector<v1::MetricReport> Metrics(int64_t trial_id,
                                        v1::MetricGroup group);
  // Polls `pred` every 100 ms up to `timeout`.
  static bool WaitFor(const std::function<bool()>& pred,
                      absl::Duration timeout);

  // Dumps the logs of every process to stderr (call on failure).
  void DumpLogs();

  static std::string Bin(const std::string& name);
  static std::string DataDir();  // DET_TEST_DATA_DIR or the cache
  // A config running det-fake-trial; `body` holds the rest of it.
  static std::string FakeTrialConfig(const std::string& body);
  // Live (not zombie) children of `pid`: a worker's trial processes.
  static std::vector<pid_t> ChildrenOf(pid_t pid);

 private:
  CliResult Run(const std::vector<std::string>& argv,
                const std::map<std::string, std::string>& env,
                const std::string& cwd);

  // Adds the token to a call to the master.
  void Authorize(grpc::ClientContext* ctx) const;

  std::string dir_;
  std::string db_;
  std::string token_;
  std::string ca_file_;
  std::vector<std::string> worker_prefix_;
  int port_ = 0;
  std::unique_ptr<Process> master_;
  int master_starts_ = 0;
  std::vector<std::unique_ptr<Process>> workers_;
  std::unique_ptr<v1::Api::Stub> stub_;
};

// The fixture of most integration tests: one Cluster, whose processes'
// logs are printed when the test failed. A fixture with members that must
// outlive the cluster's processes (network namespaces) keeps its own.
class ClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) cluster_.DumpLogs();
  }
  Cluster cluster_;
};

}  // namespace det::testing

#endif  // DET_TESTS_INTEGRATION_CLUSTER_H_
