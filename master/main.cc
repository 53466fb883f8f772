// det-master: the cluster's master daemon.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/flags/help_flags.h"
#include "common/version.h"
#include "det/v1/worker.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "master/api/api_service.h"
#include "master/api/health.h"
#include "master/api/reflection_service.h"
#include "master/api/worker_service.h"
#include "master/core/master.h"
#include "master/http/http_server.h"
#include "master/http/metrics_registry.h"
#include "master/master_config.h"
#include "master/slurm/slurm_source.h"
#include "master/store/open_store.h"

ABSL_FLAG(std::string, config, "", "master.yaml (flags below override it)");
ABSL_FLAG(std::string, grpc_address, "", "gRPC listen address (host:port)");
ABSL_FLAG(std::string, http_address, "", "HTTP listen address; 'off' disables");
ABSL_FLAG(std::string, db, "", "SQLite database file, or a postgresql:// URL");
ABSL_FLAG(std::string, checkpoint_root, "", "default checkpoint host_path");
ABSL_FLAG(std::string, port_file, "", "write the bound gRPC port here");
ABSL_FLAG(std::string, token, "",
          "token workers and clients must present (default: $DET_TOKEN)");
ABSL_FLAG(std::string, tls_cert, "", "TLS certificate (PEM) for gRPC");
ABSL_FLAG(std::string, tls_key, "", "TLS private key (PEM) for gRPC");
ABSL_FLAG(int64_t, searcher_snapshot_every, 0,
          "searcher snapshot every N journaled events (0: 1 + trials/32)");
ABSL_FLAG(double, agent_timeout_s, 0,
          "declare a silent worker lost after this");
ABSL_FLAG(double, heartbeat_interval_s, 0, "worker heartbeat interval");

namespace {

std::string Home() {
  const char* h = std::getenv("HOME");
  return h ? h : "/tmp";
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "det-master: %s\n", msg.c_str());
  return 1;
}

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built with mutex deadlock detection on: a lock-order
  // graph updated on every lock, a debugging aid that costs CPU on every
  // event here. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  det::ListOwnFlagsInHelp("master/");
  absl::SetProgramUsageMessage(
      "det-master [--config master.yaml] [--grpc_address HOST:PORT] ...");
  absl::ParseCommandLine(argc, argv);

  det::master::MasterConfig cfg;
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    bool ok = false;
    std::string text = ReadFile(path, &ok);
    if (!ok) return Fail(absl::StrCat("cannot read config file ", path));
    auto parsed = det::master::ParseMasterConfig(text);
    if (!parsed.ok()) {
      return Fail(absl::StrCat(path, ": ", parsed.status().message()));
    }
    cfg = *parsed;
  }
  if (auto v = absl::GetFlag(FLAGS_grpc_address); !v.empty())
    cfg.grpc_address = v;
  if (auto v = absl::GetFlag(FLAGS_http_address); !v.empty()) {
    cfg.http_address = v == "off" ? "" : v;
  }
  if (auto v = absl::GetFlag(FLAGS_db); !v.empty()) cfg.db_path = v;
  if (auto v = absl::GetFlag(FLAGS_checkpoint_root); !v.empty()) {
    cfg.checkpoint_root = v;
  }
  if (auto v = absl::GetFlag(FLAGS_port_file); !v.empty()) cfg.port_file = v;
  if (auto v = absl::GetFlag(FLAGS_agent_timeout_s); v > 0) {
    cfg.agent_timeout = absl::Seconds(v);
  }
  if (auto v = absl::GetFlag(FLAGS_heartbeat_interval_s); v > 0) {
    cfg.heartbeat_interval = absl::Seconds(v);
  }
  if (auto v = absl::GetFlag(FLAGS_token); !v.empty()) cfg.token = v;
  if (auto v = absl::GetFlag(FLAGS_tls_cert); !v.empty()) cfg.tls_cert = v;
  if (auto v = absl::GetFlag(FLAGS_tls_key); !v.empty()) cfg.tls_key = v;
  if (const char* t = std::getenv("DET_TOKEN"); t && cfg.token.empty()) {
    cfg.token = t;
  }
  if (cfg.db_path.empty()) cfg.db_path = Home() + "/.det/master.db";
  if (cfg.checkpoint_root.empty())
    cfg.checkpoint_root = Home() + "/.det/checkpoints";
  std::error_code ec;
  if (!det::store::IsPostgresUrl(cfg.db_path)) {
    std::filesystem::create_directories(
        std::filesystem::path(cfg.db_path).parent_path(), ec);
  }
  std::filesystem::create_directories(cfg.checkpoint_root, ec);

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  det::http::MetricsRegistry metrics;
  const std::string db_shown = det::store::RedactDb(cfg.db_path);
  auto store = det::store::OpenStore(cfg.db_path, [&metrics](absl::Duration d) {
    metrics.ObserveStoreWrite(d);
  });
  if (!store.ok()) {
    return Fail(absl::StrCat("opening store ", db_shown, ": ",
                             store.status().message()));
  }
  det::master::MasterOptions opts;
  opts.metrics = &metrics;
  opts.snapshot_every = absl::GetFlag(FLAGS_searcher_snapshot_every);
  opts.checkpoint_root = cfg.checkpoint_root;
  opts.heartbeat_interval = cfg.heartbeat_interval;
  opts.agent_timeout = cfg.agent_timeout;
  opts.stop_timeout = cfg.stop_timeout;
  opts.grpc_address = cfg.grpc_address;
  // Declared before the master, so it outlives the master's ticker.
  std::unique_ptr<det::slurm::SlurmWorkerSource> slurm;
  if (cfg.slurm) {
    slurm = std::make_unique<det::slurm::SlurmWorkerSource>(
        *cfg.slurm, det::slurm::MakeProcessRunner(absl::Seconds(30)));
    opts.worker_source = slurm.get();
  }
  auto master = det::master::Master::Create(std::move(*store), opts);
  if (!master.ok()) {
    return Fail(absl::StrCat("starting: ", master.status().message()));
  }

  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::InsecureServerCredentials();
  if (!cfg.tls_cert.empty() || !cfg.tls_key.empty()) {
    bool ok1 = false, ok2 = false;
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {ReadFile(cfg.tls_key, &ok1), ReadFile(cfg.tls_cert, &ok2)});
    if (!ok1 || !ok2) {
      return Fail(absl::StrCat("cannot read TLS key ", cfg.tls_key,
                               " or certificate ", cfg.tls_cert));
    }
    creds = grpc::SslServerCredentials(ssl);
  }
  det::master::ApiService api((*master).get(), cfg.token);
  det::master::WorkerService agents((*master).get(), cfg.token);
  // Reflection (behind the token) and the standard health service (open),
  // for grpcurl and health probes.
  det::master::ReflectionService reflection(
      {det::v1::Api::service_full_name(),
       det::v1::WorkerService::service_full_name(), "grpc.health.v1.Health"},
      cfg.token);
  det::master::EnableHealthService();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(cfg.grpc_address, creds, &port);
  builder.RegisterService(&api);
  builder.RegisterService(&agents);
  builder.RegisterService(&reflection);
  builder.SetMaxReceiveMessageSize(cfg.max_message_bytes);
  builder.SetMaxSendMessageSize(cfg.max_message_bytes);
  // Let dead TCP peers be found even when nothing is being sent.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return Fail(absl::StrCat("cannot listen on ", cfg.grpc_address,
                             " (in use, or not a local address?)"));
  }
  std::string host = cfg.grpc_address.substr(0, cfg.grpc_address.rfind(':'));
  std::fprintf(stderr, "det-master %s listening on %s:%d (store %s)\n",
               det::kVersion, host.c_str(), port, db_shown.c_str());

  (*master)->SetAddresses(absl::StrCat(host, ":", port), "");
  std::unique_ptr<det::http::HttpServer> http;
  if (!cfg.http_address.empty()) {
    http = std::make_unique<det::http::HttpServer>((*master).get(), cfg.token,
                                                   &metrics);
    auto http_port = http->Start(cfg.http_address);
    if (!http_port.ok()) {
      return Fail(absl::StrCat("HTTP on ", cfg.http_address, ": ",
                               http_port.status().message()));
    }
    std::string http_host =
        cfg.http_address.substr(0, cfg.http_address.rfind(':'));
    std::string http_addr = absl::StrCat(http_host, ":", *http_port);
    (*master)->SetAddresses("", http_addr);
    std::fprintf(stderr, "det-master: web page at http://%s/\n",
                 http_addr.c_str());
  }
  if (!cfg.port_file.empty()) {
    std::string tmp = cfg.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::filesystem::rename(tmp, cfg.port_file, ec);
  }

  // The health service follows the store: NOT_SERVING while it takes no
  // writes (outage mode), polled twice a second (one lock, no I/O).
  absl::Notification stop_health;
  std::thread health([&] {
    bool last = true;
    do {
      bool ok = (*master)->GetStoreHealth().available;
      if (ok != last) det::master::SetStoreHealth(server.get(), ok);
      last = ok;
    } while (
        !stop_health.WaitForNotificationWithTimeout(absl::Milliseconds(500)));
  });

  int sig = 0;
  sigwait(&stop_signals, &sig);
  stop_health.Notify();
  health.join();
  std::fprintf(stderr, "det-master: signal %d, shutting down\n", sig);
  if (http) http->Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
  master->reset();
  return 0;
}
