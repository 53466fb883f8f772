#include "master/store/connection_gate.h"

#include <chrono>
#include <utility>

namespace det::store {
namespace {

absl::Duration Since(std::chrono::steady_clock::time_point start) {
  return absl::FromChrono(std::chrono::steady_clock::now() - start);
}

}  // namespace

class ConnectionGate::Access {
 public:
  explicit Access(ConnectionGate* gate)
      : gate_(gate), joined_(gate->InOwnTransaction()) {
    if (!joined_) gate_->mu_.Lock();
  }
  ~Access() {
    if (!joined_) gate_->mu_.Unlock();
  }
  Access(const Access&) = delete;
  Access& operator=(const Access&) = delete;
  bool joined() const { return joined_; }

 private:
  ConnectionGate* gate_;
  bool joined_;
};

absl::Status ConnectionGate::Write(absl::FunctionRef<absl::Status()> body) {
  if (InOwnTransaction()) return body();
  absl::Status s;
  absl::Duration took;
  {
    absl::MutexLock lock(&mu_);
    auto start = std::chrono::steady_clock::now();
    s = backend_->Ready();
    if (s.ok()) s = body();
    took = Since(start);
  }
  ReportWrite(took);
  return s;
}

absl::Status ConnectionGate::Read(absl::FunctionRef<absl::Status()> body) {
  Access access(this);
  if (!access.joined()) {
    if (absl::Status s = backend_->Ready(); !s.ok()) return s;
  }
  return body();
}

absl::Status ConnectionGate::RunInTransaction(
    const std::function<absl::Status()>& fn) {
  if (InOwnTransaction()) {
    if (absl::Status s = backend_->Savepoint(); !s.ok()) return s;
    absl::Status s = fn();
    if (s.ok()) {
      s = backend_->ReleaseSavepoint();
      if (s.ok()) return s;
    }
    backend_->RollbackToSavepoint();
    return s;
  }

  mu_.Lock();
  auto start = std::chrono::steady_clock::now();
  absl::Status begun = backend_->Ready();
  if (begun.ok()) begun = backend_->Begin();
  if (!begun.ok()) {
    mu_.Unlock();
    return begun;
  }
  tx_owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  // Ends the transaction on every path, an exception from fn included.
  struct Finish {
    ConnectionGate* gate;
    bool done = false;
    void operator()(bool committed) {
      if (!committed) gate->backend_->Rollback();
      gate->tx_owner_.store(std::thread::id(), std::memory_order_relaxed);
      gate->mu_.Unlock();
      done = true;
    }
    ~Finish() {
      if (!done) (*this)(false);
    }
  } finish{this};

  absl::Status s = fn();
  if (s.ok()) s = backend_->Commit();
  finish(s.ok());
  ReportWrite(Since(start));
  return s;
}

void ConnectionGate::SetWriteObserver(
    std::function<void(absl::Duration)> observer) {
  absl::MutexLock lock(&observer_mu_);
  observer_ = std::move(observer);
}

void ConnectionGate::ReportWrite(absl::Duration d) {
  absl::ReaderMutexLock lock(&observer_mu_);
  if (observer_) observer_(d);
}

}  // namespace det::store
