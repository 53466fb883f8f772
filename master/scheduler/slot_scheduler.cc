#include "master/scheduler/slot_scheduler.h"

#include <algorithm>
#include <limits>

namespace det::scheduler {

void SlotScheduler::AddWorker(const std::string& worker_id, int32_t num_slots) {
  if (workers_.count(worker_id) > 0) return;
  Worker& w = workers_[worker_id];
  w.num_slots = std::max<int32_t>(num_slots, 0);
  w.slot_trial.assign(static_cast<size_t>(w.num_slots), 0);
  for (int32_t s = 0; s < w.num_slots; ++s) w.free.insert(w.free.end(), s);
  total_slots_ += w.num_slots;
  Index(worker_id, w);
}

std::vector<int64_t> SlotScheduler::RemoveWorker(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return {};
  Worker& w = it->second;
  Unindex(worker_id, w);
  std::vector<int64_t> affected;
  for (int64_t trial : w.slot_trial) {
    if (trial != 0) affected.push_back(trial);
  }
  std::sort(affected.begin(), affected.end());
  affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
  for (int64_t trial : affected) {
    Holding& h = held_.at(trial);
    auto slots = h.slots.find(worker_id);
    int32_t n = static_cast<int32_t>(slots->second.size());
    h.slots.erase(slots);
    h.count -= n;
    used_slots_ -= n;
    if ((experiment_used_[h.experiment_id] -= n) == 0) {
      experiment_used_.erase(h.experiment_id);
    }
    if (h.count == 0) held_.erase(trial);
  }
  total_slots_ -= w.num_slots;
  workers_.erase(it);
  return affected;
}

void SlotScheduler::Enqueue(const Request& r) {
  if (r.trial_id <= 0) return;
  if (queued_.count(r.trial_id) > 0 || held_.count(r.trial_id) > 0) return;
  QueueKey key = KeyOf(r);
  queue_.emplace(key, r);
  queued_.emplace(r.trial_id, key);
}

void SlotScheduler::Dequeue(int64_t trial_id) {
  auto it = queued_.find(trial_id);
  if (it == queued_.end()) return;
  queue_.erase(it->second);
  queued_.erase(it);
}

void SlotScheduler::Release(int64_t trial_id) {
  auto it = held_.find(trial_id);
  if (it == held_.end()) return;
  const Holding& h = it->second;
  for (const auto& [worker_id, slots] : h.slots) {
    Worker& w = workers_.at(worker_id);
    Unindex(worker_id, w);
    for (int32_t s : slots) SetSlot(w, s, 0);
    Index(worker_id, w);
  }
  used_slots_ -= h.count;
  if ((experiment_used_[h.experiment_id] -= h.count) == 0) {
    experiment_used_.erase(h.experiment_id);
  }
  held_.erase(it);
}

bool SlotScheduler::Reserve(
    int64_t trial_id, int64_t experiment_id,
    const std::map<std::string, std::vector<int32_t>>& slots) {
  if (trial_id <= 0) return false;
  auto held = held_.find(trial_id);
  if (held != held_.end() && held->second.experiment_id != experiment_id) {
    return false;
  }
  // Check everything before changing anything.
  std::map<std::string, std::set<int32_t>> wanted;
  for (const auto& [worker_id, ids] : slots) {
    auto w = workers_.find(worker_id);
    if (w == workers_.end()) return false;
    for (int32_t s : ids) {
      if (s < 0 || s >= w->second.num_slots) return false;
      int64_t holder = w->second.slot_trial[static_cast<size_t>(s)];
      if (holder != 0 && holder != trial_id) return false;
      if (holder == 0) wanted[worker_id].insert(s);
    }
  }
  bool any = std::any_of(slots.begin(), slots.end(),
                         [](const auto& e) { return !e.second.empty(); });
  if (!any) return false;

  Holding& h = held_[trial_id];
  h.experiment_id = experiment_id;
  for (const auto& [worker_id, ids] : wanted) {
    Worker& w = workers_.at(worker_id);
    Unindex(worker_id, w);
    std::vector<int32_t>& mine = h.slots[worker_id];
    for (int32_t s : ids) {
      SetSlot(w, s, trial_id);
      mine.push_back(s);
    }
    std::sort(mine.begin(), mine.end());
    Index(worker_id, w);
    int32_t n = static_cast<int32_t>(ids.size());
    h.count += n;
    used_slots_ += n;
    experiment_used_[experiment_id] += n;
  }
  Dequeue(trial_id);
  return true;
}

std::vector<Placement> SlotScheduler::Schedule() {
  std::vector<Placement> placed;
  // Free slots only shrink during a pass, so once a request for n slots
  // does not fit, no request for n or more fits until the pass ends. This
  // keeps a pass over a long queue on a busy cluster cheap.
  int32_t smallest_unfit = std::numeric_limits<int32_t>::max();
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (used_slots_ >= total_slots_ || smallest_unfit <= 1) break;
    const Request& r = it->second;
    if (r.slots < 1 || r.slots >= smallest_unfit) {
      ++it;
      continue;
    }
    if (r.experiment_max_slots.has_value()) {
      auto used = experiment_used_.find(r.experiment_id);
      int32_t in_use = used == experiment_used_.end() ? 0 : used->second;
      if (in_use + r.slots > *r.experiment_max_slots) {
        ++it;
        continue;
      }
    }
    std::vector<std::pair<std::string, int32_t>> chosen = Choose(r.slots);
    if (chosen.empty()) {
      smallest_unfit = r.slots;
      ++it;
      continue;
    }
    Placement& p = placed.emplace_back();
    p.trial_id = r.trial_id;
    Holding& h = held_[r.trial_id];
    h.experiment_id = r.experiment_id;
    h.count = r.slots;
    for (const auto& [worker_id, count] : chosen) {
      h.slots[worker_id] = Take(worker_id, count, r.trial_id);
    }
    p.slots = h.slots;
    used_slots_ += r.slots;
    experiment_used_[r.experiment_id] += r.slots;
    queued_.erase(r.trial_id);
    it = queue_.erase(it);
  }
  return placed;
}

std::vector<std::pair<std::string, int32_t>> SlotScheduler::Choose(
    int32_t n) const {
  // Best fit on one worker: fewest free slots that still hold n.
  auto best = by_free_.lower_bound(SizeKey(n, std::string()));
  if (best != by_free_.end()) return {{best->second, n}};

  // Whole idle workers, largest first, so that as few as possible are used.
  // The last one is the smallest idle worker covering what remains; it
  // comes at or after the current position in descending order, so it is
  // never one already taken.
  if (idle_slots_ < n) return {};
  std::vector<std::pair<std::string, int32_t>> chosen;
  int32_t sum = 0;
  for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
    int32_t remaining = n - sum;
    if (it->first >= remaining) {
      auto last = idle_.lower_bound(SizeKey(remaining, std::string()));
      chosen.emplace_back(last->second, remaining);
      return chosen;
    }
    chosen.emplace_back(it->second, it->first);
    sum += it->first;
  }
  return {};  // unreachable while idle_slots_ is kept right
}

std::vector<int32_t> SlotScheduler::Take(const std::string& worker_id,
                                         int32_t count, int64_t trial_id) {
  Worker& w = workers_.at(worker_id);
  Unindex(worker_id, w);
  std::vector<int32_t> taken;
  taken.reserve(static_cast<size_t>(count));
  while (static_cast<int32_t>(taken.size()) < count) {
    int32_t s = *w.free.begin();
    SetSlot(w, s, trial_id);
    taken.push_back(s);
  }
  Index(worker_id, w);
  return taken;
}

void SlotScheduler::SetSlot(Worker& w, int32_t slot, int64_t trial_id) {
  w.slot_trial[static_cast<size_t>(slot)] = trial_id;
  if (trial_id == 0) {
    w.free.insert(slot);
  } else {
    w.free.erase(slot);
  }
}

void SlotScheduler::Unindex(const std::string& worker_id, const Worker& w) {
  int32_t free = static_cast<int32_t>(w.free.size());
  if (free > 0) by_free_.erase(SizeKey(free, worker_id));
  if (free > 0 && free == w.num_slots) {
    idle_.erase(SizeKey(w.num_slots, worker_id));
    idle_slots_ -= w.num_slots;
  }
}

void SlotScheduler::Index(const std::string& worker_id, const Worker& w) {
  int32_t free = static_cast<int32_t>(w.free.size());
  if (free > 0) by_free_.emplace(free, worker_id);
  if (free > 0 && free == w.num_slots) {
    idle_.emplace(w.num_slots, worker_id);
    idle_slots_ += w.num_slots;
  }
}

bool SlotScheduler::NeverFits(const Request& r, int32_t total_slots) {
  return r.slots < 1 || r.slots > total_slots ||
         (r.experiment_max_slots.has_value() &&
          r.slots > *r.experiment_max_slots);
}

std::vector<int64_t> SlotScheduler::Unschedulable() const {
  std::vector<int64_t> out;
  for (const auto& [key, r] : queue_) {
    if (NeverFits(r, total_slots_)) out.push_back(r.trial_id);
  }
  return out;
}

int32_t SlotScheduler::TotalSlots() const { return total_slots_; }

int32_t SlotScheduler::UsedSlots() const { return used_slots_; }

size_t SlotScheduler::QueueLength() const { return queue_.size(); }

int64_t SlotScheduler::QueuedSlots() const {
  int64_t n = 0;
  for (const auto& [key, r] : queue_) n += r.slots;
  return n;
}

bool SlotScheduler::IsQueued(int64_t trial_id) const {
  return queued_.count(trial_id) > 0;
}

std::map<std::string, std::vector<int32_t>> SlotScheduler::SlotsOf(
    int64_t trial_id) const {
  auto it = held_.find(trial_id);
  if (it == held_.end()) return {};
  return it->second.slots;
}

}  // namespace det::scheduler
