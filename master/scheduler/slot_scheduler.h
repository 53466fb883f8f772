// Placement of trials onto worker slots: pure logic, no clock or network.
//
// Requests are served by priority (lower first), then submission order.
// A request for n slots goes best-fit onto one worker (the worker with the
// fewest free slots that still fit n); when no single worker fits, onto
// whole idle workers (all of their slots) whose slots add up to n exactly or
// more, fewest workers first. An experiment's max_slots caps how many slots
// its trials hold at once. A request that could never fit (n larger than
// the sum of all slots of all connected workers) is reported as such.
//
// A trial spanning workers holds exactly n slots: it takes every slot of
// each idle worker chosen, except on the last one, which is the smallest
// idle worker that covers the remainder and keeps its spare slots free.
//
// There is no preemption and no reservation for big requests: backfilling
// lets smaller requests behind a big one run, so a big request waits until
// enough workers are idle at the moment Schedule() runs.
//
// Not thread-safe: the master calls it under its own lock. Costs: Schedule()
// is O(Q + P·log W) for Q queued requests, P placements and W workers, and
// stops early once nothing more can fit; the other calls are O(log) in the
// queue and cluster sizes, except RemoveWorker and Unschedulable, which are
// linear in what they look at.
#ifndef DET_MASTER_SCHEDULER_SLOT_SCHEDULER_H_
#define DET_MASTER_SCHEDULER_SLOT_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace det::scheduler {

struct Request {
  int64_t trial_id = 0;
  int64_t experiment_id = 0;
  int32_t slots = 1;
  int32_t priority = 42;
  // Submission order: smaller first among equal priorities (then trial id).
  int64_t order = 0;
  std::optional<int32_t> experiment_max_slots;
};

// Where a trial goes: one or more workers and the slot ids on each.
struct Placement {
  int64_t trial_id = 0;
  // worker id -> slot ids on it (ascending); more than one worker for a
  // spanning trial.
  std::map<std::string, std::vector<int32_t>> slots;
};

class SlotScheduler {
 public:
  // Workers and their slots (ids 0 .. num_slots-1). Adding a worker id that
  // is already known does nothing (remove it first to change its slots).
  void AddWorker(const std::string& worker_id, int32_t num_slots);
  // Forgets the worker and its slots. Removing a worker frees nothing else:
  // the trials that had slots on it keep their slots on other workers until
  // the caller Release()s them (after stopping their other processes) and
  // reschedules them. Returns those trials, ascending.
  std::vector<int64_t> RemoveWorker(const std::string& worker_id);

  // Queue a trial. Trial ids are positive (0 means a free slot inside);
  // others are ignored. Re-adding a queued trial id, or one that holds
  // slots, is a no-op. A request for fewer than 1 slot can never be placed and
  // is reported by Unschedulable().
  void Enqueue(const Request& r);
  // Drop a queued trial (canceled before it was placed). Unknown: no-op.
  void Dequeue(int64_t trial_id);
  // Give back the slots a trial holds. Holding none: no-op.
  void Release(int64_t trial_id);
  // Mark slots as held by a trial without going through the queue (a
  // worker that reconnects with trials still running). False if any slot is
  // unknown or taken by another trial, when no slot is named, or when the
  // trial id is not positive; then nothing changes. Slots the
  // trial already holds count as its own (a spanning trial's workers
  // reconnect one by one). A queued request for the trial is dropped: a
  // running trial must not be placed a second time. max_slots is not
  // applied: the trial is already running.
  bool Reserve(int64_t trial_id, int64_t experiment_id,
               const std::map<std::string, std::vector<int32_t>>& slots);

  // Places every queued request that fits now, in queue order. A request
  // that does not fit is skipped (backfilling), so small trials do not wait
  // behind a big one.
  std::vector<Placement> Schedule();

  // Queued requests that can never fit on the current cluster (more slots
  // than all connected workers have, more than the experiment's max_slots,
  // or fewer than one), in queue order. They stay queued: workers may join.
  std::vector<int64_t> Unschedulable() const;

  int32_t TotalSlots() const;
  int32_t UsedSlots() const;
  size_t QueueLength() const;
  // Slots the queued requests ask for together (after a Schedule(): what
  // the connected workers cannot give now).
  int64_t QueuedSlots() const;
  bool IsQueued(int64_t trial_id) const;
  // Slots held per worker by a trial, empty when it holds none.
  std::map<std::string, std::vector<int32_t>> SlotsOf(int64_t trial_id) const;

 private:
  struct Worker {
    int32_t num_slots = 0;
    std::vector<int64_t> slot_trial;  // slot id -> trial id, 0 = free
    std::set<int32_t> free;           // free slot ids, ascending
  };
  struct Holding {
    int64_t experiment_id = 0;
    int32_t count = 0;  // slots held, over all workers
    std::map<std::string, std::vector<int32_t>> slots;
  };
  // Queue position: (priority, order, trial id).
  using QueueKey = std::tuple<int32_t, int64_t, int64_t>;
  // Worker index entry: (free or total slots, worker id).
  using SizeKey = std::pair<int32_t, std::string>;

  static QueueKey KeyOf(const Request& r) {
    return {r.priority, r.order, r.trial_id};
  }
  static bool NeverFits(const Request& r, int32_t total_slots);

  // The workers that a request for n slots goes to now, with the number of
  // slots to take on each; empty when it does not fit.
  std::vector<std::pair<std::string, int32_t>> Choose(int32_t n) const;
  // Takes `count` free slots (lowest ids) of a worker for a trial.
  std::vector<int32_t> Take(const std::string& worker_id, int32_t count,
                            int64_t trial_id);
  // Marks one slot free or held, keeping the indexes below in step.
  static void SetSlot(Worker& w, int32_t slot, int64_t trial_id);
  void Unindex(const std::string& worker_id, const Worker& w);
  void Index(const std::string& worker_id, const Worker& w);

  std::map<std::string, Worker> workers_;
  // Workers with at least one free slot, by (free slots, id): best-fit is
  // the first entry with at least n free.
  std::set<SizeKey> by_free_;
  // Workers with every slot free, by (slots, id).
  std::set<SizeKey> idle_;
  int32_t idle_slots_ = 0;  // slots of the workers in idle_
  int32_t total_slots_ = 0;
  int32_t used_slots_ = 0;

  std::map<QueueKey, Request> queue_;             // in serving order
  std::unordered_map<int64_t, QueueKey> queued_;  // trial id -> position
  std::unordered_map<int64_t, Holding> held_;     // trial id -> its slots
  std::unordered_map<int64_t, int32_t> experiment_used_;  // slots held
};

}  // namespace det::scheduler

#endif  // DET_MASTER_SCHEDULER_SLOT_SCHEDULER_H_
