// Placement of trials onto worker slots: pure logic, no clock or network.
//
// Requests are served by priority (lower first), then submission order.
// A request for n slots goes best-fit onto one worker (the worker with the
// fewest free slots that still fit n); when no single worker fits, onto
// whole idle workers (all of their slots) whose slots add up to n exactly or
// more, fewest workers first. An experiment's max_slots caps how many slots
// its trials hold at once. A request that could never fit (n larger than
// the sum of all slots of all connected workers) is reported as such.
#ifndef DET_MASTER_SCHEDULER_SLOT_SCHEDULER_H_
#define DET_MASTER_SCHEDULER_SLOT_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace det::scheduler {

struct Request {
  int64_t trial_id = 0;
  int64_t experiment_id = 0;
  int32_t slots = 1;
  int32_t priority = 42;
  // Submission order: smaller first among equal priorities.
  int64_t order = 0;
  std::optional<int32_t> experiment_max_slots;
};

// Where a trial goes: one or more workers and the slot ids on each.
struct Placement {
  int64_t trial_id = 0;
  // worker id -> slot ids on it; more than one worker for a spanning trial.
  std::map<std::string, std::vector<int32_t>> slots;
};

class SlotScheduler {
 public:
  // Workers and their slots. Removing a worker frees nothing: the caller
  // is told which trials lost their slots and reschedules them.
  void AddWorker(const std::string& worker_id, int32_t num_slots);
  // Returns the trials that had slots on the worker.
  std::vector<int64_t> RemoveWorker(const std::string& worker_id);

  // Queue a trial. Re-adding a queued trial id is a no-op.
  void Enqueue(const Request& r);
  // Drop a queued trial (canceled before it was placed).
  void Dequeue(int64_t trial_id);
  // Give back the slots a trial holds.
  void Release(int64_t trial_id);
  // Mark slots as held by a trial without going through the queue (a
  // worker that reconnects with trials still running). False if any slot is
  // unknown or taken.
  bool Reserve(int64_t trial_id, int64_t experiment_id,
               const std::map<std::string, std::vector<int32_t>>& slots);

  // Places every queued request that fits now, in queue order. A request
  // that does not fit is skipped (backfilling), so small trials do not wait
  // behind a big one.
  std::vector<Placement> Schedule();

  // Queued requests that can never fit on the current cluster.
  std::vector<int64_t> Unschedulable() const;

  int32_t TotalSlots() const;
  int32_t UsedSlots() const;
  size_t QueueLength() const;
  bool IsQueued(int64_t trial_id) const;
  // Slots held per worker by a trial, empty when it holds none.
  std::map<std::string, std::vector<int32_t>> SlotsOf(int64_t trial_id) const;

 private:
  struct Worker {
    int32_t num_slots = 0;
    std::vector<int64_t> slot_trial;  // slot id -> trial id, 0 = free
  };
  std::map<std::string, Worker> workers_;
  std::vector<Request> queue_;  // kept sorted by (priority, order)
  std::map<int64_t, int64_t> trial_experiment_;  // placed trial -> experiment
};

}  // namespace det::scheduler

#endif  // DET_MASTER_SCHEDULER_SLOT_SCHEDULER_H_
