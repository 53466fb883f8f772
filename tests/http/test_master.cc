#include "tests/http/test_master.h"

#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"
#include "common/version.h"
#include "master/store/store.h"

namespace det::testing {

std::unique_ptr<master::Master> NewTestMaster() {
  auto store = store::OpenSqliteStore(":memory:");
  if (!store.ok()) {
    std::fprintf(stderr, "store: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  master::MasterOptions opts;
  opts.checkpoint_root = "/tmp/det-http-test-checkpoints";
  auto m = master::Master::Create(std::move(*store), opts);
  if (!m.ok()) {
    std::fprintf(stderr, "master: %s\n", m.status().ToString().c_str());
    std::abort();
  }
  return std::move(*m);
}

InProcessWorker::InProcessWorker(master::Master* m, std::string id, int slots)
    : master_(m),
      id_(std::move(id)),
      outbox_(std::make_shared<master::WorkerOutbox>()) {
  v1::Hello hello;
  hello.set_worker_id(id_);
  hello.set_protocol_version(kProtocolVersion);
  hello.set_version(kVersion);
  hello.set_host("127.0.0.1");
  hello.set_incarnation(id_ + "-1");
  for (int i = 0; i < slots; ++i) {
    v1::Slot* s = hello.add_slots();
    s->set_id(i);
    s->set_type("cpu");
    s->set_device("cpu");
  }
  auto welcome = master_->WorkerConnected(hello, "ipv4:127.0.0.1:1", outbox_);
  if (!welcome.ok()) {
    std::fprintf(stderr, "worker: %s\n", welcome.status().ToString().c_str());
    std::abort();
  }
  seq_ = welcome->last_seq();
}

std::optional<v1::StartTrial> InProcessWorker::NextStart(
    absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto m = outbox_->Pop(deadline - absl::Now());
    if (m && m->has_start_trial()) return m->start_trial();
  }
  return std::nullopt;
}

absl::Status InProcessWorker::Send(v1::TrialEvent ev) {
  v1::WorkerMessage m;
  m.set_seq(++seq_);
  *m.mutable_trial_event() = std::move(ev);
  return master_->WorkerMessage(id_, m).status();
}

namespace {

v1::TrialEvent EventFor(const v1::TrialSpec& spec) {
  v1::TrialEvent ev;
  ev.set_trial_id(spec.trial_id());
  ev.set_run_id(spec.run_id());
  return ev;
}

}  // namespace

absl::Status InProcessWorker::Started(const v1::TrialSpec& spec) {
  v1::TrialEvent ev = EventFor(spec);
  ev.mutable_started()->set_pid(12345);
  return Send(std::move(ev));
}

absl::Status InProcessWorker::Metrics(const v1::TrialSpec& spec,
                                      v1::MetricGroup group, int64_t steps,
                                      std::map<std::string, double> values) {
  v1::TrialEvent ev = EventFor(spec);
  v1::MetricReport* r = ev.mutable_metrics();
  r->set_trial_id(spec.trial_id());
  r->set_group(group);
  r->set_steps_completed(steps);
  r->set_time_us(absl::ToUnixMicros(absl::Now()));
  for (const auto& [k, v] : values) (*r->mutable_metrics())[k] = v;
  return Send(std::move(ev));
}

absl::Status InProcessWorker::Logs(const v1::TrialSpec& spec,
                                   const std::vector<std::string>& lines) {
  v1::TrialEvent ev = EventFor(spec);
  for (const std::string& text : lines) {
    v1::LogLine* l = ev.mutable_logs()->add_lines();
    l->set_time_us(absl::ToUnixMicros(absl::Now()));
    l->set_source("stdout");
    l->set_line(text);
  }
  return Send(std::move(ev));
}

absl::Status InProcessWorker::Checkpoint(const v1::TrialSpec& spec,
                                         const std::string& uuid,
                                         int64_t steps) {
  v1::TrialEvent ev = EventFor(spec);
  v1::Checkpoint* c = ev.mutable_checkpoint();
  c->set_trial_id(spec.trial_id());
  c->set_uuid(uuid);
  c->set_steps_completed(steps);
  c->set_time_us(absl::ToUnixMicros(absl::Now()));
  c->set_size_bytes(2048);
  (*c->mutable_file_sha256())["state.json"] = std::string(64, 'a');
  return Send(std::move(ev));
}

absl::Status InProcessWorker::Exited(const v1::TrialSpec& spec,
                                     v1::ExitReason reason, int64_t steps) {
  v1::TrialEvent ev = EventFor(spec);
  ev.mutable_exited()->set_reason(reason);
  ev.mutable_exited()->set_steps_completed(steps);
  return Send(std::move(ev));
}

}  // namespace det::testing
