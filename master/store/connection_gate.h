// Who may use a SQL store's one connection, and when: one call at a time,
// or one thread for the whole of its outermost transaction, whose nested
// transactions become savepoints. SqliteStore and PostgresStore run every
// statement through a ConnectionGate; each says through a Backend how its
// database begins, ends and undoes a transaction.
#ifndef DET_MASTER_STORE_CONNECTION_GATE_H_
#define DET_MASTER_STORE_CONNECTION_GATE_H_

#include <atomic>
#include <functional>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace det::store {

class ConnectionGate {
 public:
  // The database's side. Every method runs with the gate held.
  class Backend {
   public:
    virtual ~Backend() = default;
    // Before a call or a transaction that joins none: makes the connection
    // usable (PostgreSQL replaces a broken one).
    virtual absl::Status Ready() { return absl::OkStatus(); }
    virtual absl::Status Begin() = 0;
    // Commits, or says why what ran cannot be committed.
    virtual absl::Status Commit() = 0;
    // Best effort: undoes the transaction if the database still has one.
    virtual void Rollback() = 0;
    virtual absl::Status Savepoint() = 0;
    virtual absl::Status ReleaseSavepoint() = 0;
    // Best effort: undoes the innermost savepoint and releases it, where
    // the database has not already ended the whole transaction.
    virtual void RollbackToSavepoint() = 0;
  };

  explicit ConnectionGate(Backend* backend) : backend_(backend) {}
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // Whether this thread is inside a transaction of this gate.
  bool InOwnTransaction() const {
    return tx_owner_.load(std::memory_order_relaxed) ==
           std::this_thread::get_id();
  }

  // Runs `body` with the connection to itself: inside this thread's
  // transaction as part of it, otherwise alone and timed as one write.
  absl::Status Write(absl::FunctionRef<absl::Status()> body);
  // The same for a read (not timed).
  absl::Status Read(absl::FunctionRef<absl::Status()> body);
  // Runs `fn` in a transaction (a savepoint inside one already open on
  // this thread): committed when it returns OK, undone otherwise, an
  // exception included. Other threads wait until it ends.
  absl::Status RunInTransaction(const std::function<absl::Status()>& fn);

  // Called with the duration of each standalone write and transaction.
  void SetWriteObserver(std::function<void(absl::Duration)> observer);

 private:
  // Holds the gate for one call unless this thread's transaction has it.
  class Access;

  void ReportWrite(absl::Duration d);

  Backend* const backend_;
  // Held either for one call, or by the thread in tx_owner_ for its whole
  // outermost transaction.
  absl::Mutex mu_;
  std::atomic<std::thread::id> tx_owner_{};

  absl::Mutex observer_mu_;
  std::function<void(absl::Duration)> observer_ ABSL_GUARDED_BY(observer_mu_);
};

}  // namespace det::store

#endif  // DET_MASTER_STORE_CONNECTION_GATE_H_
