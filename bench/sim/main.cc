// det-bench-sim: many simulated det workers (threads speaking the real
// worker protocol over gRPC) against one real det-master. See sim_worker.h
// for what a simulated worker does and measures.
//
//   det-bench-sim --master 127.0.0.1:PORT --workers 200 --slots 8
//                 --mode scale --batch_ms 2 --ready_file F --out stats.json
//
// It connects every worker, writes --ready_file once all are welcomed, and
// runs until SIGTERM/SIGINT; then it writes the merged measurements as one
// JSON document to --out. In ingest mode SIGUSR1 makes every trial exit
// (so the experiment can finish) before the final SIGTERM.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/sim/sim_worker.h"

ABSL_FLAG(std::string, master, "127.0.0.1:8090", "det-master gRPC address");
ABSL_FLAG(int, workers, 10, "simulated workers");
ABSL_FLAG(int, slots, 8, "slots per simulated worker");
ABSL_FLAG(std::string, mode, "scale", "scale | ingest");
ABSL_FLAG(double, batch_ms, 1.0, "scale: simulated wall time per batch");
ABSL_FLAG(double, jitter, 0.0,
          "scale: a trial's batch time is batch_ms * U(1-jitter, 1+jitter)");
ABSL_FLAG(bool, checkpoints, true, "scale: report a checkpoint before exits");
ABSL_FLAG(int, window, 256, "ingest: unacknowledged messages per worker");
ABSL_FLAG(bool, validation, false,
          "ingest: validation reports (else training)");
ABSL_FLAG(std::string, name_prefix, "sim", "worker ids are PREFIX-NNN");
ABSL_FLAG(std::string, ready_file, "", "written once every worker is welcomed");
ABSL_FLAG(std::string, out, "", "merged measurements (JSON); stdout if empty");
ABSL_FLAG(std::string, samples_out, "",
          "slot idle samples, one 'seconds_since_start idle_ms' line each");
ABSL_FLAG(double, connect_timeout_s, 60, "give up if not all are welcomed");

namespace {

using det::bench::Clock;
using det::bench::SimStats;

template <typename T>
std::string Summary(std::vector<T> v) {
  if (v.empty()) return "{\"count\":0}";
  std::sort(v.begin(), v.end());
  auto q = [&](double p) {
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return static_cast<double>(v[std::min(i, v.size() - 1)]);
  };
  double sum = std::accumulate(v.begin(), v.end(), 0.0);
  return absl::StrFormat(
      "{\"count\":%d,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,"
      "\"p999\":%.4f,\"max\":%.4f}",
      v.size(), sum / static_cast<double>(v.size()), q(0.5), q(0.9), q(0.99),
      q(0.999), static_cast<double>(v.back()));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "det-bench-sim --master HOST:PORT --workers N --slots S "
      "--mode scale|ingest [--batch_ms MS] [--out FILE]");
  absl::ParseCommandLine(argc, argv);

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  det::bench::SimOptions opts;
  opts.master = absl::GetFlag(FLAGS_master);
  std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "scale") {
    opts.mode = det::bench::SimMode::kScale;
  } else if (mode == "ingest") {
    opts.mode = det::bench::SimMode::kIngest;
  } else {
    std::fprintf(stderr, "det-bench-sim: --mode must be scale or ingest\n");
    return 1;
  }
  opts.slots = absl::GetFlag(FLAGS_slots);
  opts.batch_ms = absl::GetFlag(FLAGS_batch_ms);
  opts.checkpoints = absl::GetFlag(FLAGS_checkpoints);
  opts.jitter = std::clamp(absl::GetFlag(FLAGS_jitter), 0.0, 0.95);
  opts.window = absl::GetFlag(FLAGS_window);
  opts.validation = absl::GetFlag(FLAGS_validation);
  const int n = absl::GetFlag(FLAGS_workers);

  const Clock::time_point epoch = Clock::now();
  std::vector<std::unique_ptr<det::bench::SimWorker>> workers;
  for (int i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<det::bench::SimWorker>(
        absl::StrFormat("%s-%03d", absl::GetFlag(FLAGS_name_prefix), i), opts,
        epoch));
    workers.back()->Start();
  }
  Clock::time_point give_up =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(
                         absl::GetFlag(FLAGS_connect_timeout_s) * 1000));
  for (;;) {
    int ok = 0;
    for (auto& w : workers) ok += w->welcomed() ? 1 : 0;
    if (ok == n) break;
    if (Clock::now() > give_up) {
      std::fprintf(stderr, "det-bench-sim: only %d of %d workers welcomed\n",
                   ok, n);
      for (auto& w : workers) w->Stop();
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::fprintf(
      stderr, "det-bench-sim: %d workers x %d slots connected in %.0f ms\n", n,
      opts.slots,
      std::chrono::duration<double, std::milli>(Clock::now() - epoch).count());
  if (std::string f = absl::GetFlag(FLAGS_ready_file); !f.empty()) {
    std::ofstream(f + ".tmp") << "ready\n";
    std::rename((f + ".tmp").c_str(), f.c_str());
  }

  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGUSR1) {
      for (auto& w : workers) w->FinishTrials();
      continue;
    }
    break;
  }
  const double elapsed_s =
      std::chrono::duration<double>(Clock::now() - epoch).count();
  for (auto& w : workers) w->Stop();

  SimStats all;
  std::vector<std::string> errors;
  for (auto& w : workers) {
    const SimStats& s = w->stats();
    all.idle_ms.insert(all.idle_ms.end(), s.idle_ms.begin(), s.idle_ms.end());
    all.ack_ms.insert(all.ack_ms.end(), s.ack_ms.begin(), s.ack_ms.end());
    all.starts += s.starts;
    all.stops_received += s.stops_received;
    all.exits_completed += s.exits_completed;
    all.exits_stopped += s.exits_stopped;
    all.reports_sent += s.reports_sent;
    all.reports_acked += s.reports_acked;
    all.messages_sent += s.messages_sent;
    all.slot_conflicts += s.slot_conflicts;
    all.duplicate_starts += s.duplicate_starts;
    if (all.acked_per_bucket.size() < s.acked_per_bucket.size()) {
      all.acked_per_bucket.resize(s.acked_per_bucket.size(), 0);
    }
    for (size_t i = 0; i < s.acked_per_bucket.size(); ++i) {
      all.acked_per_bucket[i] += s.acked_per_bucket[i];
    }
    if (!s.error.empty()) errors.push_back(s.error);
  }
  std::vector<double> idle;
  for (const auto& [t, ms] : all.idle_ms) idle.push_back(ms);
  std::sort(errors.begin(), errors.end());
  errors.erase(std::unique(errors.begin(), errors.end()), errors.end());
  for (std::string& e : errors) e = absl::StrCat("\"", e, "\"");

  std::string json = absl::StrCat(
      "{\"workers\":", n, ",\"slots\":", opts.slots, ",\"mode\":\"", mode,
      "\",\"batch_ms\":", opts.batch_ms, ",\"jitter\":", opts.jitter,
      ",\"elapsed_s\":", absl::StrFormat("%.3f", elapsed_s),
      ",\"starts\":", all.starts, ",\"stops_received\":", all.stops_received,
      ",\"exits_completed\":", all.exits_completed,
      ",\"exits_stopped\":", all.exits_stopped,
      ",\"reports_sent\":", all.reports_sent,
      ",\"reports_acked\":", all.reports_acked,
      ",\"messages_sent\":", all.messages_sent,
      ",\"slot_conflicts\":", all.slot_conflicts,
      ",\"duplicate_starts\":", all.duplicate_starts,
      ",\"slot_idle_ms\":", Summary(idle), ",\"ack_ms\":", Summary(all.ack_ms),
      ",\"acked_reports_per_100ms\":[",
      absl::StrJoin(all.acked_per_bucket, ","), "],\"errors\":[",
      absl::StrJoin(errors, ","), "]}\n");
  if (std::string f = absl::GetFlag(FLAGS_out); !f.empty()) {
    std::ofstream(f) << json;
  } else {
    std::fputs(json.c_str(), stdout);
  }
  if (std::string f = absl::GetFlag(FLAGS_samples_out); !f.empty()) {
    std::sort(all.idle_ms.begin(), all.idle_ms.end());
    std::ofstream out(f);
    for (const auto& [t, ms] : all.idle_ms) {
      out << absl::StrFormat("%.4f %.4f\n", t, ms);
    }
  }
  return 0;
}
