// What the in-process master tests play the worker with: its Hello, and
// the StartTrials the master queued on its outbox.
#ifndef DET_TESTS_MASTER_WORKER_HELLO_H_
#define DET_TESTS_MASTER_WORKER_HELLO_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/version.h"
#include "det/v1/worker.pb.h"
#include "gtest/gtest.h"
#include "master/core/master.h"
#include "master/core/worker_outbox.h"

namespace det::testing {

// A worker's first message: `slots` CPU slots, incarnation "<id>-1".
inline v1::Hello MakeHello(const std::string& id, int slots = 1) {
  v1::Hello hello;
  hello.set_worker_id(id);
  hello.set_protocol_version(kProtocolVersion);
  hello.set_version(kVersion);
  hello.set_host("127.0.0.1");
  hello.set_incarnation(id + "-1");
  for (int i = 0; i < slots; ++i) {
    v1::Slot* s = hello.add_slots();
    s->set_id(i);
    s->set_type("cpu");
    s->set_device("cpu");
  }
  return hello;
}

// Adds each of `running` to the Hello as a run the worker still has (its
// trial, run and slots), as a worker reconnecting with them would.
inline void AddRunning(const std::vector<v1::StartTrial>& running,
                       v1::Hello* hello) {
  for (const v1::StartTrial& s : running) {
    v1::RunningTrial* r = hello->add_running();
    r->set_trial_id(s.spec().trial_id());
    r->set_run_id(s.spec().run_id());
    for (int32_t slot : s.slot_ids()) r->add_slot_ids(slot);
  }
}

// Sends `worker`'s next message (sequence number ++*seq): one TrialEvent of
// `trial`'s run `run`, filled in by `fill`; fails the test unless the master
// takes it.
inline void SendTrialEvent(master::Master& master, const std::string& worker,
                           int64_t* seq, int64_t trial, int32_t run,
                           const std::function<void(v1::TrialEvent*)>& fill) {
  v1::WorkerMessage m;
  m.set_seq(++*seq);
  v1::TrialEvent* ev = m.mutable_trial_event();
  ev->set_trial_id(trial);
  ev->set_run_id(run);
  fill(ev);
  auto r = master.WorkerMessages(worker, {m});
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.rejected, 0);
}

// The StartTrials on the outbox now, in order (other messages dropped).
inline std::vector<v1::StartTrial> PopStartTrials(master::WorkerOutbox& out) {
  std::vector<v1::StartTrial> starts;
  while (auto m = out.Pop(absl::ZeroDuration())) {
    if (m->has_start_trial()) starts.push_back(m->start_trial());
  }
  return starts;
}

}  // namespace det::testing

#endif  // DET_TESTS_MASTER_WORKER_HELLO_H_
