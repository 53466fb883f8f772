#include "tests/integration/cluster.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"

namespace det::testing {
namespace fs = std::filesystem;

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t Spawn(const std::vector<std::string>& argv,
            const std::map<std::string, std::string>& env,
            const std::string& out_path, const std::string& err_path,
            const std::string& cwd = "") {
  pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, 0);
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int err = err_path == out_path
                ? out
                : open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int in = open("/dev/null", O_RDONLY);
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  std::fprintf(stderr, "exec %s failed\n", args[0]);
  _exit(127);
}

}  // namespace

// ---------------------------------------------------------------- Process

Process::Process(std::vector<std::string> argv,
                 std::map<std::string, std::string> env,
                 const std::string& log_path)
    : log_path_(log_path) {
  pid_ = Spawn(argv, env, log_path, log_path);
  setpgid(pid_, pid_);  // also from the parent, to avoid a race
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) Stop(SIGKILL, absl::Seconds(10));
  // Whatever the process group still holds (trial children) goes too.
  if (pid_ > 0) kill(-pid_, SIGKILL);
}

bool Process::Running() {
  if (reaped_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

int Process::Stop(int sig, absl::Duration timeout) {
  if (!Running()) return status_;
  kill(pid_, sig);
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!Running()) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  reaped_ = true;
  return status_;
}

// ---------------------------------------------------------------- Cluster

Cluster::Cluster() {
  std::string tmpl = (fs::temp_directory_path() / "det-it.XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  dir_ = mkdtemp(buf.data());
}

Cluster::~Cluster() {
  workers_.clear();
  master_.reset();
  if (std::getenv("DET_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string Cluster::Bin(const std::string& name) {
  return absl::StrCat(DET_BIN_DIR, "/", name);
}

std::string Cluster::DataDir() {
  if (const char* d = std::getenv("DET_TEST_DATA_DIR")) return d;
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : "/root",
                      "/.cache/det/cifar-10-batches-bin");
}

std::string Cluster::master_address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void Cluster::StartMaster(const std::vector<std::string>& extra) {
  std::string port_file = absl::StrCat(dir_, "/master.port");
  std::error_code ec;
  fs::remove(port_file, ec);
  std::vector<std::string> argv = {
      Bin("det-master"),
      "--grpc_address",
      absl::StrCat("127.0.0.1:", port_),
      "--http_address",
      "off",
      "--db",
      db_.empty() ? absl::StrCat(dir_, "/master.db") : db_,
      "--checkpoint_root",
      absl::StrCat(dir_, "/checkpoints"),
      "--port_file",
      port_file};
  argv.insert(argv.end(), extra.begin(), extra.end());
  master_ = std::make_unique<Process>(
      argv, std::map<std::string, std::string>{},
      absl::StrCat(dir_, "/master.", master_starts_++, ".log"));
  bool up = WaitFor([&] { return fs::exists(port_file); }, absl::Seconds(30));
  if (!up) {
    DumpLogs();
    std::cerr << "det-master did not start\n";
    std::abort();
  }
  std::string text(absl::StripAsciiWhitespace(ReadAll(port_file)));
  int port = 0;
  (void)absl::SimpleAtoi(text, &port);
  port_ = port;
  stub_.reset();
}

void Cluster::StopMaster(int sig) {
  if (master_) master_->Stop(sig, absl::Seconds(10));
}

int Cluster::StartWorker(const std::string& name, int slots,
                         const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {Bin("det-worker"),
                                   "--master",
                                   master_address(),
                                   "--slots",
                                   std::to_string(slots),
                                   "--name",
                                   name,
                                   "--work_dir",
                                   absl::StrCat(dir_, "/work-", name),
                                   "--data_dir",
                                   DataDir()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.begin(), worker_prefix_.begin(), worker_prefix_.end());
  workers_.push_back(std::make_unique<Process>(
      argv, std::map<std::string, std::string>{},
      absl::StrCat(dir_, "/worker-", name, ".", workers_.size(), ".log")));
  return static_cast<int>(workers_.size()) - 1;
}

void Cluster::StopWorker(int i, int sig) {
  workers_.at(i)->Stop(sig, absl::Seconds(40));
}

CliResult Cluster::Shell(const std::string& script, const std::string& cwd) {
  std::map<std::string, std::string> env;
  const char* path = std::getenv("PATH");
  env["PATH"] = absl::StrCat(DET_BIN_DIR, ":", path ? path : "/usr/bin:/bin");
  return Run({"/bin/sh", "-c", script}, env, cwd);
}

CliResult Cluster::Cli(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env,
                       const std::string& cwd) {
  std::vector<std::string> argv = {Bin("det")};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, env, cwd);
}

CliResult Cluster::Run(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env,
                       const std::string& cwd) {
  static int n = 0;
  std::string out = absl::StrCat(dir_, "/cli.", n, ".out");
  std::string err = absl::StrCat(dir_, "/cli.", n, ".err");
  n++;
  std::map<std::string, std::string> e = env;
  if (!e.count("DET_MASTER")) e["DET_MASTER"] = master_address();
  if (!token_.empty() && !e.count("DET_TOKEN")) e["DET_TOKEN"] = token_;
  if (!ca_file_.empty() && !e.count("DET_MASTER_CERT_FILE")) {
    e["DET_MASTER_CERT_FILE"] = ca_file_;
  }
  pid_t pid = Spawn(argv, e, out, err, cwd.empty() ? dir_ : cwd);
  int status = 0;
  absl::Time deadline = absl::Now() + absl::Minutes(5);
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (absl::Now() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CliResult res;
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  res.out = ReadAll(out);
  res.err = ReadAll(err);
  return res;
}

v1::Api::Stub* Cluster::api() {
  if (!stub_) {
    std::shared_ptr<grpc::ChannelCredentials> creds =
        grpc::InsecureChannelCredentials();
    if (!ca_file_.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ReadAll(ca_file_);
      creds = grpc::SslCredentials(ssl);
    }
    stub_ = v1::Api::NewStub(grpc::CreateChannel(master_address(), creds));
  }
  return stub_.get();
}

void Cluster::Authorize(grpc::ClientContext* ctx) const {
  if (!token_.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }
}

int64_t Cluster::CreateExperiment(const std::string& yaml,
                                  const std::vector<std::string>& extra) {
  static int n = 0;
  std::string path = absl::StrCat(dir_, "/experiment.", n++, ".yaml");
  std::ofstream(path) << yaml;
  std::vector<std::string> args = {"experiment", "create", path};
  args.insert(args.end(), extra.begin(), extra.end());
  CliResult r = Cli(args);
  std::string marker = "Created experiment ";
  size_t at = r.out.find(marker);
  int64_t id = 0;
  if (r.exit_code != 0 || at == std::string::npos) {
    std::cerr << "det experiment create failed (" << r.exit_code << "):\n"
              << r.out << r.err;
    return 0;
  }
  std::string rest = r.out.substr(at + marker.size());
  (void)absl::SimpleAtoi(rest.substr(0, rest.find_first_not_of("0123456789")),
                         &id);
  return id;
}

absl::StatusOr<v1::Experiment> Cluster::WaitTerminal(int64_t id,
                                                     absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  v1::Experiment x;
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    Authorize(&ctx);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    v1::GetExperimentRequest req;
    req.set_experiment_id(id);
    grpc::Status st = api()->GetExperiment(&ctx, req, &x);
    if (st.ok() &&
        (x.state() == v1::STATE_COMPLETED || x.state() == v1::STATE_CANCELED ||
         x.state() == v1::STATE_ERROR)) {
      return x;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "experiment ", id, " not terminal after ", absl::FormatDuration(timeout),
      "; last state ", v1::State_Name(x.state())));
}

std::vector<v1::Trial> Cluster::Trials(int64_t experiment_id) {
  grpc::ClientContext ctx;
  Authorize(&ctx);
  v1::ListTrialsRequest req;
  req.set_experiment_id(experiment_id);
  v1::ListTrialsResponse resp;
  grpc::Status st = api()->ListTrials(&ctx, req, &resp);
  if (!st.ok()) return {};
  return {resp.trials().begin(), resp.trials().end()};
}

std::vector<v1::MetricReport> Cluster::Metrics(int64_t trial_id,
                                               v1::MetricGroup group) {
  grpc::ClientContext ctx;
  Authorize(&ctx);
  v1::GetTrialMetricsRequest req;
  req.set_trial_id(trial_id);
  req.set_group(group);
  v1::GetTrialMetricsResponse resp;
  grpc::Status st = api()->GetTrialMetrics(&ctx, req, &resp);
  if (!st.ok()) return {};
  return {resp.reports().begin(), resp.reports().end()};
}

bool Cluster::WaitFor(const std::function<bool()>& pred,
                      absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

void Cluster::DumpLogs() {
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().extension() != ".log") continue;
    std::string text = ReadAll(entry.path().string());
    if (text.size() > 6000) text = "..." + text.substr(text.size() - 6000);
    std::cerr << "==== " << entry.path().filename().string() << "\n"
              << text << "\n";
  }
}

std::string Cluster::FakeTrialConfig(const std::string& body) {
  return absl::StrCat("entrypoint: ", Bin("det-fake-trial"), "\n", body);
}

std::vector<pid_t> Cluster::ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    pid_t p = static_cast<pid_t>(std::atoi(e->d_name));
    if (p <= 0) continue;
    std::ifstream in(absl::StrCat("/proc/", p, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    // The command name may hold spaces and parentheses: the fields after
    // it start at the last ')'.
    size_t close = stat.rfind(')');
    char state = 0;
    int ppid = 0;
    if (close != std::string::npos &&
        sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 &&
        ppid == pid && state != 'Z') {
      out.push_back(p);
    }
  }
  closedir(d);
  return out;
}

}  // namespace det::testing
