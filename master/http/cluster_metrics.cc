#include "master/http/cluster_metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/rpc/states.h"
#include "det/v1/common.pb.h"

namespace det::http {
namespace {

// One gauge family with a sample for every state (zeros included, so
// series don't appear and vanish as states are entered and left).
void AppendByState(const std::string& name, const std::string& help,
                   const std::map<int, int64_t>& counts, bool trials,
                   std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                  " gauge\n");
  const auto* desc = v1::State_descriptor();
  for (int i = 0; i < desc->value_count(); ++i) {
    int s = desc->value(i)->number();
    if (s == v1::STATE_UNSPECIFIED) continue;
    if (!trials && s == v1::STATE_QUEUED) continue;  // trials only
    auto it = counts.find(s);
    absl::StrAppend(out, name, "{state=\"",
                    StateName(static_cast<v1::State>(s)), "\"} ",
                    it == counts.end() ? 0 : it->second, "\n");
  }
}

// Prometheus label values escape backslash, double quote and newline.
std::string LabelValue(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void AppendGauge(const std::string& name, const std::string& help,
                 int64_t value, std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name,
                  " gauge\n", name, " ", value, "\n");
}

}  // namespace

absl::StatusOr<ClusterMetrics::StateCounts> ClusterMetrics::TrialCounts(
    const v1::Experiment& x) {
  bool terminal = IsTerminal(x.state());
  if (terminal) {
    absl::MutexLock l(&mu_);
    auto it = terminal_counts_.find(x.id());
    if (it != terminal_counts_.end()) return it->second;
  }
  auto trials = master_->ListTrials(x.id());
  if (!trials.ok()) return trials.status();
  StateCounts counts;
  for (const v1::Trial& t : *trials) counts[t.state()]++;
  if (terminal) {
    absl::MutexLock l(&mu_);
    terminal_counts_[x.id()] = counts;
  }
  return counts;
}

absl::StatusOr<std::string> ClusterMetrics::Render() {
  v1::MasterInfo info = master_->GetMasterInfo();
  std::string out;
  // First, and even when the listing below fails: an outage is when this
  // gauge matters most.
  AppendGauge("det_store_available",
              "1 while the master's store takes writes, 0 during an outage.",
              info.store_available() ? 1 : 0, &out);
  AppendGauge(
      "det_store_unavailable_since_seconds",
      "When the current store outage began, Unix seconds (0: none).",
      info.store_available() ? 0 : info.store_unavailable_since_us() / 1000000,
      &out);
  auto experiments = master_->ListExperiments();
  if (!experiments.ok()) return experiments.status();
  StateCounts by_state, trials_by_state;
  for (const v1::Experiment& x : *experiments) {
    by_state[x.state()]++;
    auto counts = TrialCounts(x);
    // An experiment deleted between the two calls is simply not counted.
    if (absl::IsNotFound(counts.status())) continue;
    if (!counts.ok()) return counts.status();
    for (const auto& [s, n] : *counts) trials_by_state[s] += n;
  }
  AppendByState("det_experiments", "Experiments by state.", by_state, false,
                &out);
  AppendByState("det_trials", "Trials by state.", trials_by_state, true, &out);
  absl::StrAppend(&out,
                  "# HELP det_slots Slots of connected workers, by use.\n"
                  "# TYPE det_slots gauge\n"
                  "det_slots{state=\"used\"} ",
                  info.slots_used(), "\ndet_slots{state=\"free\"} ",
                  info.slots_total() - info.slots_used(), "\n");
  AppendGauge("det_agents_connected", "Workers connected to the master.",
              info.num_agents(), &out);
  absl::StrAppend(&out,
                  "# HELP det_master_info The master's version and cluster "
                  "id.\n# TYPE det_master_info gauge\n"
                  "det_master_info{version=\"",
                  LabelValue(info.version()), "\",cluster_id=\"",
                  LabelValue(info.cluster_id()), "\"} 1\n");
  AppendGauge("det_master_start_time_seconds",
              "When the master started, Unix seconds.",
              info.start_time_us() / 1000000, &out);
  if (registry_ != nullptr) registry_->AppendText(&out);
  return out;
}

}  // namespace det::http
