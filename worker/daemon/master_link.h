// The worker's end of WorkerService.Connect: one bidirectional stream to the
// master, kept open for the life of the worker.
//
// Each connection sends Hello (seq 0, not kept in the outbox), waits for
// Welcome, resends what the outbox holds after Welcome.last_seq, then sends
// outbox messages as they come and a Heartbeat every heartbeat period. When
// the stream breaks (or the master is silent for too long: it acknowledges
// every heartbeat, so silence means a dead peer) it reconnects with capped,
// jittered exponential backoff. A refusal before Welcome that retrying
// cannot fix (wrong protocol version, bad token, bad request) is handed to
// on_refused and the link stops.
//
// Threads: the link thread supervises connections and backoff; per
// connection, a reader thread (acks, commands) and a writer thread (outbox,
// heartbeats). Callbacks run on the reader thread (on_welcome, on_message)
// or the link thread (on_refused, make_hello); they must not block for long.
#ifndef DET_WORKER_DAEMON_MASTER_LINK_H_
#define DET_WORKER_DAEMON_MASTER_LINK_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "det/v1/worker.grpc.pb.h"
#include "worker/daemon/outbox.h"

namespace det::worker {

class MasterLink {
 public:
  struct Options {
    std::string target;  // host:port
    std::string token;   // sent as "authorization: Bearer <token>" if set
    // PEM CA certificates: when set, the stream uses TLS and verifies the
    // master's certificate against them.
    std::string tls_ca_pem;
    // Name the master's certificate must carry, when it differs from the
    // host in `target` (e.g. connecting to 127.0.0.1).
    std::string tls_server_name;
    // Heartbeat period; zero: half the interval the Welcome asks for.
    absl::Duration heartbeat = absl::ZeroDuration();
    absl::Duration welcome_timeout = absl::Seconds(30);
    absl::Duration min_backoff = absl::Milliseconds(200);
    absl::Duration max_backoff = absl::Seconds(10);
  };

  struct Callbacks {
    std::function<v1::Hello()> make_hello;
    // After each Welcome, before anything else is sent on that stream.
    std::function<void(const v1::Welcome&)> on_welcome;
    // StartTrial and StopTrial (acks are handled here).
    std::function<void(const v1::MasterMessage&)> on_message;
    // The master refused this worker for good.
    std::function<void(const absl::Status&)> on_refused;
  };

  // `outbox` must outlive the link.
  MasterLink(Options options, Outbox* outbox, Callbacks callbacks);
  ~MasterLink();  // Stop()
  MasterLink(const MasterLink&) = delete;
  MasterLink& operator=(const MasterLink&) = delete;

  // Starts the link thread.
  void Start();
  // Closes the stream and joins every thread. Idempotent.
  void Stop();

  // True while a stream is open and welcomed.
  bool welcomed() const;

 private:
  void Loop();
  // One connection, from Connect to the end of the stream. Sets *welcomed
  // when the master answered Welcome.
  // *acked: the master acknowledged something on this stream.
  absl::Status RunStream(bool* welcomed, bool* acked);

  const Options options_;
  Outbox* const outbox_;
  const Callbacks callbacks_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool welcomed_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_MASTER_LINK_H_
