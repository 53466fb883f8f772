#include "bench/sim/sim_worker.h"

#include <algorithm>
#include <cmath>

namespace det::bench {
namespace {

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double NumberField(const google::protobuf::Struct& s, const std::string& name,
                   double fallback) {
  auto it = s.fields().find(name);
  if (it == s.fields().end() || !it->second.has_number_value()) return fallback;
  return it->second.number_value();
}

// The fake trial's model (examples/fake_trial/fake_model.h), so that ASHA
// makes the same kind of decisions as with det-fake-trial.
double Accuracy(double x, double y, int64_t steps) {
  double acc = 0.8 - (x - 0.3) * (x - 0.3) - 0.5 * (y - 0.6) * (y - 0.6) +
               0.15 * (1.0 - 100.0 / (100.0 + static_cast<double>(steps)));
  return std::clamp(acc, 0.0, 1.0);
}

std::string RandomHex() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

}  // namespace

SimWorker::SimWorker(std::string id, SimOptions options,
                     Clock::time_point epoch)
    : id_(std::move(id)), options_(std::move(options)), epoch_(epoch) {
  grpc::ChannelArguments args;
  // One TCP connection per simulated worker, as separate processes have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 256 << 20);
  channel_ = grpc::CreateCustomChannel(
      options_.master, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::WorkerService::NewStub(channel_);
  slot_freed_.assign(options_.slots, Clock::time_point());
  slot_trial_.assign(options_.slots, 0);
  rng_.seed(std::hash<std::string>()(id_));
}

SimWorker::~SimWorker() { Stop(); }

void SimWorker::Start() {
  stream_ = stub_->Connect(&ctx_);
  v1::WorkerMessage hello;
  hello.set_seq(0);
  v1::Hello* h = hello.mutable_hello();
  h->set_worker_id(id_);
  h->set_protocol_version(options_.protocol_version);
  h->set_version(options_.version);
  h->set_host("127.0.0.1");
  h->set_incarnation(RandomHex());
  for (int i = 0; i < options_.slots; ++i) {
    v1::Slot* s = h->add_slots();
    s->set_id(i);
    s->set_type("cpu");
    s->set_device("cpu");
  }
  if (!stream_->Write(hello)) {
    std::lock_guard<std::mutex> l(mu_);
    stats_.error = "could not send Hello";
    done_ = true;
  }
  reader_ = std::thread([this] { ReaderLoop(); });
  driver_ = std::thread([this] { DriverLoop(); });
}

bool SimWorker::welcomed() const {
  std::lock_guard<std::mutex> l(mu_);
  return welcomed_;
}

void SimWorker::FinishTrials() {
  std::lock_guard<std::mutex> l(mu_);
  finish_ = true;
  cv_.notify_all();
}

void SimWorker::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    cv_.notify_all();
  }
  ctx_.TryCancel();
  if (driver_.joinable()) driver_.join();
  if (reader_.joinable()) reader_.join();
}

void SimWorker::ReaderLoop() {
  v1::MasterMessage m;
  while (stream_->Read(&m)) {
    Clock::time_point now = Clock::now();
    std::lock_guard<std::mutex> l(mu_);
    if (m.has_ack()) {
      int64_t seq = m.ack().seq();
      while (!unacked_.empty() && unacked_.front().seq <= seq) {
        const Sent& s = unacked_.front();
        stats_.ack_ms.push_back(static_cast<float>(Ms(now - s.at)));
        if (s.report) {
          stats_.reports_acked++;
          size_t b = static_cast<size_t>(Ms(now - epoch_) / 100.0);
          if (stats_.acked_per_bucket.size() <= b) {
            stats_.acked_per_bucket.resize(b + 1, 0);
          }
          stats_.acked_per_bucket[b]++;
        }
        unacked_.pop_front();
      }
      acked_ = std::max(acked_, seq);
    } else if (m.has_welcome()) {
      welcomed_ = true;
      if (m.welcome().heartbeat_interval_ms() > 0) {
        heartbeat_ = std::chrono::milliseconds(
            std::max<int64_t>(50, m.welcome().heartbeat_interval_ms() / 2));
      }
    } else {
      inbox_.push_back(m);
    }
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!done_) stats_.error = "the master ended the stream";
  done_ = true;
  cv_.notify_all();
}

bool SimWorker::Send(v1::WorkerMessage m, bool report) {
  m.set_seq(++seq_);
  {
    std::lock_guard<std::mutex> l(mu_);
    unacked_.push_back({seq_, Clock::now(), report});
  }
  stats_.messages_sent++;
  if (report) stats_.reports_sent++;
  return stream_->Write(m);
}

void SimWorker::OnStart(const v1::StartTrial& s) {
  Clock::time_point now = Clock::now();
  stats_.starts++;
  if (trials_.count(s.spec().trial_id())) {
    stats_.duplicate_starts++;
    return;
  }
  for (int32_t slot : s.slot_ids()) {
    if (slot < 0 || slot >= options_.slots) continue;
    if (slot_trial_[slot] != 0) stats_.slot_conflicts++;
    slot_trial_[slot] = s.spec().trial_id();
    if (slot_freed_[slot] != Clock::time_point()) {
      stats_.idle_ms.emplace_back(Ms(now - epoch_) / 1000.0,
                                  Ms(now - slot_freed_[slot]));
      slot_freed_[slot] = Clock::time_point();
    }
  }
  Trial t;
  t.spec = s.spec();
  t.slot_ids.assign(s.slot_ids().begin(), s.slot_ids().end());
  for (int64_t p : t.spec.validation_points()) {
    if (p > 0 && p < t.spec.target_batches()) t.points.push_back(p);
  }
  t.points.push_back(std::max<int64_t>(t.spec.target_batches(), 1));
  std::sort(t.points.begin(), t.points.end());
  t.points.erase(std::unique(t.points.begin(), t.points.end()), t.points.end());
  t.x = NumberField(t.spec.hparams(), "x", 0.5);
  t.y = NumberField(t.spec.hparams(), "y", 0.5);
  t.batch_ms = options_.batch_ms;
  if (options_.jitter > 0) {
    t.batch_ms *= std::uniform_real_distribution<double>(
        1.0 - options_.jitter, 1.0 + options_.jitter)(rng_);
  }
  t.due = now + std::chrono::microseconds(
                    static_cast<int64_t>(t.points[0] * t.batch_ms * 1000.0));
  const int64_t id = t.spec.trial_id();
  const int32_t run = t.spec.run_id();
  trials_[id] = std::move(t);

  v1::WorkerMessage m;
  v1::TrialEvent* ev = m.mutable_trial_event();
  ev->set_trial_id(id);
  ev->set_run_id(run);
  ev->mutable_started()->set_pid(1000 + static_cast<int32_t>(id % 30000));
  Send(std::move(m), false);
}

void SimWorker::OnStop(const v1::StopTrial& s) {
  stats_.stops_received++;
  if (trials_.count(s.trial_id()) == 0) return;
  Exit(s.trial_id(),
       s.kill() ? v1::EXIT_REASON_KILLED : v1::EXIT_REASON_STOPPED);
}

void SimWorker::ReportNext(Trial& t) {
  const int64_t p = t.points[t.next];
  v1::WorkerMessage m;
  v1::TrialEvent* ev = m.mutable_trial_event();
  ev->set_trial_id(t.spec.trial_id());
  ev->set_run_id(t.spec.run_id());
  v1::MetricReport* r = ev->mutable_metrics();
  r->set_trial_id(t.spec.trial_id());
  r->set_group(v1::METRIC_GROUP_VALIDATION);
  r->set_steps_completed(p);
  r->set_time_us(NowUs());
  double acc = Accuracy(t.x, t.y, p);
  (*r->mutable_metrics())["validation_accuracy"] = acc;
  (*r->mutable_metrics())["validation_loss"] = 1.0 - acc;
  (*r->mutable_metrics())["validation_error"] = 1.0 - acc;
  Send(std::move(m), true);
  t.steps = p;
  t.next++;
  if (t.next < t.points.size()) {
    t.due += std::chrono::microseconds(
        static_cast<int64_t>((t.points[t.next] - p) * t.batch_ms * 1000.0));
  }
}

void SimWorker::Exit(int64_t trial_id, v1::ExitReason reason) {
  auto it = trials_.find(trial_id);
  if (it == trials_.end()) return;
  Trial& t = it->second;
  if (options_.checkpoints && options_.mode == SimMode::kScale) {
    v1::WorkerMessage m;
    v1::TrialEvent* ev = m.mutable_trial_event();
    ev->set_trial_id(trial_id);
    ev->set_run_id(t.spec.run_id());
    v1::Checkpoint* c = ev->mutable_checkpoint();
    c->set_trial_id(trial_id);
    c->set_uuid(RandomHex() + RandomHex());
    c->set_steps_completed(t.steps);
    c->set_time_us(NowUs());
    c->set_size_bytes(4096);
    (*c->mutable_file_sha256())["state.json"] = std::string(64, '0');
    Send(std::move(m), false);
  }
  v1::WorkerMessage m;
  v1::TrialEvent* ev = m.mutable_trial_event();
  ev->set_trial_id(trial_id);
  ev->set_run_id(t.spec.run_id());
  v1::TrialExited* x = ev->mutable_exited();
  x->set_reason(reason);
  x->set_exit_code(0);
  x->set_steps_completed(t.steps);
  // The slot is free from the moment the exit is handed to gRPC: a Write
  // can return after the master has already answered (this thread may be
  // descheduled in between on a busy machine).
  Clock::time_point now = Clock::now();
  Send(std::move(m), false);
  for (int32_t slot : t.slot_ids) {
    if (slot < 0 || slot >= options_.slots) continue;
    slot_freed_[slot] = now;
    if (slot_trial_[slot] == trial_id) slot_trial_[slot] = 0;
  }
  if (reason == v1::EXIT_REASON_COMPLETED) {
    stats_.exits_completed++;
  } else {
    stats_.exits_stopped++;
  }
  trials_.erase(it);
}

bool SimWorker::PumpIngest() {
  // Round-robin over this worker's trials, one report each, while the
  // window has room.
  for (;;) {
    bool sent = false;
    for (auto& [id, t] : trials_) {
      {
        std::lock_guard<std::mutex> l(mu_);
        if (done_ || seq_ - acked_ >= options_.window) return false;
      }
      v1::WorkerMessage m;
      v1::TrialEvent* ev = m.mutable_trial_event();
      ev->set_trial_id(id);
      ev->set_run_id(t.spec.run_id());
      v1::MetricReport* r = ev->mutable_metrics();
      r->set_trial_id(id);
      r->set_steps_completed(++t.steps);
      r->set_time_us(NowUs());
      if (options_.validation) {
        r->set_group(v1::METRIC_GROUP_VALIDATION);
        double acc = Accuracy(t.x, t.y, t.steps);
        (*r->mutable_metrics())["validation_accuracy"] = acc;
        (*r->mutable_metrics())["validation_loss"] = 1.0 - acc;
        (*r->mutable_metrics())["validation_error"] = 1.0 - acc;
      } else {
        r->set_group(v1::METRIC_GROUP_TRAINING);
        double acc = Accuracy(t.x, t.y, t.steps);
        (*r->mutable_metrics())["loss"] = 1.05 - acc;
        (*r->mutable_metrics())["accuracy"] = acc;
      }
      if (!Send(std::move(m), true)) return false;
      sent = true;
    }
    if (!sent) return true;
  }
}

void SimWorker::DriverLoop() {
  Clock::time_point next_hb = Clock::now() + heartbeat_;
  for (;;) {
    std::deque<v1::MasterMessage> msgs;
    bool finish = false;
    {
      std::unique_lock<std::mutex> l(mu_);
      Clock::time_point deadline = next_hb;
      if (options_.mode == SimMode::kScale) {
        for (const auto& [id, t] : trials_)
          deadline = std::min(deadline, t.due);
      }
      auto ready = [&] {
        if (done_ || !inbox_.empty()) return true;
        if (options_.mode != SimMode::kIngest || trials_.empty()) return false;
        return finish_ || seq_ - acked_ < options_.window;
      };
      cv_.wait_until(l, deadline, ready);
      if (done_) break;
      msgs.swap(inbox_);
      finish = finish_;
    }
    for (const v1::MasterMessage& m : msgs) {
      if (m.has_start_trial()) {
        OnStart(m.start_trial());
      } else if (m.has_stop_trial()) {
        OnStop(m.stop_trial());
      }
    }
    Clock::time_point now = Clock::now();
    if (options_.mode == SimMode::kScale) {
      std::vector<int64_t> finished;
      for (auto& [id, t] : trials_) {
        while (t.next < t.points.size() && t.due <= now) ReportNext(t);
        if (t.next >= t.points.size()) finished.push_back(id);
      }
      for (int64_t id : finished) Exit(id, v1::EXIT_REASON_COMPLETED);
    } else if (finish) {
      std::vector<int64_t> ids;
      for (const auto& [id, t] : trials_) ids.push_back(id);
      for (int64_t id : ids) Exit(id, v1::EXIT_REASON_COMPLETED);
    } else {
      PumpIngest();
    }
    now = Clock::now();
    if (now >= next_hb) {
      v1::WorkerMessage hb;
      hb.mutable_heartbeat()->set_time_us(NowUs());
      Send(std::move(hb), false);
      next_hb = now + heartbeat_;
    }
  }
}

}  // namespace det::bench
