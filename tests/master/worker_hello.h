// What the in-process master tests play the worker with: its Hello, and
// the StartTrials the master queued on its outbox.
#ifndef DET_TESTS_MASTER_WORKER_HELLO_H_
#define DET_TESTS_MASTER_WORKER_HELLO_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/version.h"
#include "det/v1/worker.pb.h"
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
