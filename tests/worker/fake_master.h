// A scriptable stand-in for det-master's WorkerService, for testing the real
// det-worker binary: it records everything a worker sends, answers Hello
// with a Welcome (or a refusal), acknowledges (or not), sends commands and
// can drop the stream.
#ifndef DET_TESTS_WORKER_FAKE_MASTER_H_
#define DET_TESTS_WORKER_FAKE_MASTER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "det/v1/worker.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace det::testing {

class FakeMaster final : public v1::WorkerService::Service {
 public:
  // One received message and the connection (1, 2, ...) it came on.
  struct Received {
    int connection;
    v1::WorkerMessage msg;
  };

  FakeMaster();
  ~FakeMaster() override;

  // "127.0.0.1:port".
  const std::string& address() const { return address_; }

  // Behaviour for the next connections.
  void SetRefusal(grpc::Status status);  // answer Hello with this error
  void SetAutoAck(bool on);
  void SetWelcome(v1::Welcome welcome);

  // Sends to the current stream; false when there is none.
  bool Send(const v1::MasterMessage& m);
  // Ends the current stream from the master's side.
  void DropStream();

  int connections() const;
  std::vector<v1::Hello> hellos() const;
  std::vector<Received> received() const;
  // Trial events only, in arrival order.
  std::vector<Received> TrialEvents(int64_t trial_id = 0) const;

  // Waits until `pred(received())` holds; false after `timeout`.
  bool WaitFor(const std::function<bool(const std::vector<Received>&)>& pred,
               absl::Duration timeout = absl::Seconds(15)) const;
  // Waits for the TrialExited of `trial_id` and returns it (reason
  // UNSPECIFIED after the timeout).
  v1::TrialExited WaitExited(int64_t trial_id,
                             absl::Duration timeout = absl::Seconds(15)) const;

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::MasterMessage, v1::WorkerMessage>* stream)
      override;

 private:
  std::unique_ptr<grpc::Server> server_;
  std::string address_;

  mutable absl::Mutex mu_;
  grpc::Status refusal_ ABSL_GUARDED_BY(mu_);
  bool auto_ack_ ABSL_GUARDED_BY(mu_) = true;
  v1::Welcome welcome_ ABSL_GUARDED_BY(mu_);
  int connections_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::Hello> hellos_ ABSL_GUARDED_BY(mu_);
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  grpc::ServerContext* current_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ServerReaderWriter<v1::MasterMessage, v1::WorkerMessage>* current_
      ABSL_GUARDED_BY(mu_) = nullptr;
  // Serialises writes to the current stream (acks vs. Send).
  absl::Mutex write_mu_;
};

}  // namespace det::testing

#endif  // DET_TESTS_WORKER_FAKE_MASTER_H_
