// det-worker: serves one machine's slots to a det master.
//   det-worker --master HOST:PORT [--slots N] [--name ID] ...
// Exits 0 after SIGTERM/SIGINT (trials stopped gracefully), 2 when the
// master refuses the worker (protocol version, token), 1 on bad flags.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/flags/help_flags.h"
#include "worker/daemon/slots.h"
#include "worker/daemon/worker_daemon.h"
#include "worker/daemon/worker_log.h"

ABSL_FLAG(std::string, master, "",
          "master address HOST:PORT (default: $DET_MASTER)");
ABSL_FLAG(int, slots, 0,
          "slots to offer: 0 = one per GPU, or 1 CPU slot without GPUs");
ABSL_FLAG(bool, cpu_only, false, "offer CPU slots even when there are GPUs");
ABSL_FLAG(std::string, name, "",
          "worker id (default: HOSTNAME-PID); a restarted worker may reuse it");
ABSL_FLAG(std::string, token, "",
          "token the master requires (default: $DET_TOKEN)");
ABSL_FLAG(std::string, tls_ca, "",
          "CA certificate file (PEM): use TLS and verify the master with it "
          "(default: $DET_MASTER_CERT_FILE)");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the master's certificate carries, if not the --master host");
ABSL_FLAG(std::string, work_dir, "",
          "directory for trial working directories (default: a new temp dir)");
ABSL_FLAG(std::string, trial_binary, "",
          "the built-in trainer (default: det-trial next to det-worker)");
ABSL_FLAG(std::string, data_dir, "",
          "passed to trials as DET_DATA_DIR (default: $DET_DATA_DIR)");
ABSL_FLAG(int, heartbeat_ms, 0,
          "heartbeat period in ms (default: half the master's interval)");
ABSL_FLAG(absl::Duration, stop_timeout, absl::Seconds(30),
          "how long a graceful stop waits before SIGKILL");
ABSL_FLAG(std::string, checkpoint_root, "",
          "checkpoint directory to use instead of the one the master sends");
ABSL_FLAG(std::string, advertise_host, "",
          "host name or address peers reach this worker on (rendezvous)");

namespace {

namespace fs = std::filesystem;
using det::worker::WorkerLog;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// Lets flags be written --work-dir as well as --work_dir.
std::vector<char*> DashesToUnderscores(int argc, char** argv,
                                       std::vector<std::string>* storage) {
  storage->reserve(argc);
  std::vector<char*> out;
  bool flags_over = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") flags_over = true;
    if (i > 0 && !flags_over && a.size() > 2 && a[0] == '-') {
      const size_t start = a[1] == '-' ? 2 : 1;
      const size_t end = std::min(a.find('='), a.size());
      for (size_t j = start; j < end; ++j) {
        if (a[j] == '-') a[j] = '_';
      }
    }
    storage->push_back(std::move(a));
    out.push_back(storage->back().data());
  }
  return out;
}

std::string DefaultTrialBinary() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (self.parent_path() / "det-trial").string();
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') {
    return "worker";
  }
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built with mutex deadlock detection on: a lock-order
  // graph updated on every lock, a debugging aid that costs CPU on every
  // event here. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  det::ListOwnFlagsInHelp("worker/daemon/");
  absl::SetProgramUsageMessage(
      "det-worker --master HOST:PORT [--slots N] [--name ID]: runs trials "
      "for a det master on this machine's slots");
  std::vector<std::string> storage;
  std::vector<char*> args = DashesToUnderscores(argc, argv, &storage);
  std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (rest.size() > 1) {
    std::fprintf(stderr, "det-worker: unexpected argument '%s'\n", rest[1]);
    return 1;
  }

  // Signals are taken by a dedicated thread (below); every thread created
  // from here on inherits the blocked mask. Children reset it before exec.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  det::worker::WorkerOptions o;
  o.master = absl::GetFlag(FLAGS_master);
  if (o.master.empty()) o.master = EnvOr("DET_MASTER", "");
  o.token = absl::GetFlag(FLAGS_token);
  if (o.token.empty()) o.token = EnvOr("DET_TOKEN", "");
  std::string ca_file = absl::GetFlag(FLAGS_tls_ca);
  if (ca_file.empty()) ca_file = EnvOr("DET_MASTER_CERT_FILE", "");
  if (!ca_file.empty()) {
    std::ifstream in(ca_file);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in || pem.str().empty()) {
      std::fprintf(stderr, "det-worker: cannot read CA certificate file %s\n",
                   ca_file.c_str());
      return 1;
    }
    o.tls_ca_pem = pem.str();
    o.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  }
  o.worker_id = absl::GetFlag(FLAGS_name);
  if (o.worker_id.empty())
    o.worker_id = absl::StrCat(Hostname(), "-", getpid());
  o.cores = det::worker::UsableCores();
  std::string slots_note;
  auto slots = det::worker::MakeSlots(absl::GetFlag(FLAGS_slots),
                                      absl::GetFlag(FLAGS_cpu_only),
                                      det::worker::DetectGpus(), &slots_note);
  if (!slots_note.empty()) WorkerLog("%s", slots_note);
  if (!slots.ok()) {
    std::fprintf(stderr, "det-worker: %s\n",
                 std::string(slots.status().message()).c_str());
    return 1;
  }
  o.slots = *slots;
  o.trial_binary = absl::GetFlag(FLAGS_trial_binary);
  if (o.trial_binary.empty()) o.trial_binary = DefaultTrialBinary();
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (o.data_dir.empty()) o.data_dir = EnvOr("DET_DATA_DIR", "");
  o.checkpoint_root = absl::GetFlag(FLAGS_checkpoint_root);
  o.advertise_host = absl::GetFlag(FLAGS_advertise_host);
  const int heartbeat_ms = absl::GetFlag(FLAGS_heartbeat_ms);
  if (heartbeat_ms < 0) {
    std::fprintf(stderr, "det-worker: --heartbeat-ms must be >= 0\n");
    return 1;
  }
  o.heartbeat = absl::Milliseconds(heartbeat_ms);
  o.stop_timeout = absl::GetFlag(FLAGS_stop_timeout);
  if (o.stop_timeout < absl::ZeroDuration()) {
    std::fprintf(stderr, "det-worker: --stop-timeout must be >= 0\n");
    return 1;
  }
  std::string temp_work_dir;
  o.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (o.work_dir.empty()) {
    std::string tmpl =
        (fs::temp_directory_path() / "det-worker-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "det-worker: cannot create a work directory in %s\n",
                   fs::temp_directory_path().c_str());
      return 1;
    }
    o.work_dir = temp_work_dir = tmpl;
  }

  auto daemon = det::worker::WorkerDaemon::Create(o);
  if (!daemon.ok()) {
    std::fprintf(stderr, "det-worker: %s\n",
                 std::string(daemon.status().message()).c_str());
    return 1;
  }

  std::atomic<bool> finished{false};
  std::thread signals([&] {
    int received = 0;
    const timespec tick = {0, 200 * 1000 * 1000};
    while (!finished.load()) {
      int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig <= 0) continue;
      if (++received == 1) {
        WorkerLog("got %s; stopping trials (again to kill them and exit)",
                  strsignal(sig));
        (*daemon)->Shutdown();
      } else {
        // Children have PR_SET_PDEATHSIG(SIGKILL): they go with us.
        WorkerLog("got %s again; exiting now", strsignal(sig));
        std::_Exit(1);
      }
    }
  });

  absl::Status s = (*daemon)->Run();
  daemon->reset();
  finished.store(true);
  signals.join();
  if (!temp_work_dir.empty()) {
    std::error_code ec;
    fs::remove_all(temp_work_dir, ec);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "det-worker: the master refused this worker: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  WorkerLog("stopped");
  return 0;
}
