// A store that passes every call to another one: tests derive from it and
// override only the calls they count or make fail.
#ifndef DET_TESTS_MASTER_FORWARDING_STORE_H_
#define DET_TESTS_MASTER_FORWARDING_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "master/store/store.h"

namespace det::testing {

class ForwardingStore : public store::Store {
 public:
  explicit ForwardingStore(std::unique_ptr<store::Store> inner)
      : inner_(std::move(inner)) {}

  absl::Status RunInTransaction(
      const std::function<absl::Status()>& fn) override {
    return inner_->RunInTransaction(fn);
  }
  absl::StatusOr<int64_t> AddExperiment(
      const store::ExperimentRecord& e) override {
    return inner_->AddExperiment(e);
  }
  absl::Status UpdateExperiment(const v1::Experiment& e) override {
    return inner_->UpdateExperiment(e);
  }
  absl::Status SaveSearcherSnapshot(int64_t id, const std::string& s) override {
    return inner_->SaveSearcherSnapshot(id, s);
  }
  absl::Status AppendSearcherEvent(int64_t id, const std::string& e) override {
    return inner_->AppendSearcherEvent(id, e);
  }
  absl::StatusOr<std::vector<std::string>> ListSearcherEvents(
      int64_t id) override {
    return inner_->ListSearcherEvents(id);
  }
  absl::StatusOr<store::ExperimentRecord> GetExperiment(int64_t id) override {
    return inner_->GetExperiment(id);
  }
  absl::StatusOr<std::vector<v1::Experiment>> ListExperiments() override {
    return inner_->ListExperiments();
  }
  absl::StatusOr<std::vector<store::ExperimentRecord>>
  ListNonTerminalExperiments() override {
    return inner_->ListNonTerminalExperiments();
  }
  absl::StatusOr<int64_t> AddTrial(const store::TrialRecord& t) override {
    return inner_->AddTrial(t);
  }
  absl::Status UpdateTrial(const store::TrialRecord& t) override {
    return inner_->UpdateTrial(t);
  }
  absl::StatusOr<store::TrialRecord> GetTrial(int64_t id) override {
    return inner_->GetTrial(id);
  }
  absl::StatusOr<std::vector<store::TrialRecord>> ListTrials(
      int64_t id) override {
    return inner_->ListTrials(id);
  }
  absl::StatusOr<bool> AddMetricReport(const v1::MetricReport& r) override {
    return inner_->AddMetricReport(r);
  }
  absl::StatusOr<std::vector<v1::MetricReport>> GetMetricReports(
      int64_t id, v1::MetricGroup g) override {
    return inner_->GetMetricReports(id, g);
  }
  absl::Status AddCheckpoint(const v1::Checkpoint& c) override {
    return inner_->AddCheckpoint(c);
  }
  absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpoints(
      int64_t id) override {
    return inner_->ListCheckpoints(id);
  }
  absl::Status DeleteCheckpoint(const std::string& uuid) override {
    return inner_->DeleteCheckpoint(uuid);
  }
  absl::StatusOr<v1::Checkpoint> GetCheckpoint(
      const std::string& uuid) override {
    return inner_->GetCheckpoint(uuid);
  }
  absl::Status SetCheckpointState(const std::string& uuid,
                                  v1::CheckpointState state) override {
    return inner_->SetCheckpointState(uuid, state);
  }
  absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpointsInState(
      v1::CheckpointState state) override {
    return inner_->ListCheckpointsInState(state);
  }
  absl::StatusOr<std::vector<v1::Checkpoint>> ListExperimentCheckpoints(
      int64_t experiment_id) override {
    return inner_->ListExperimentCheckpoints(experiment_id);
  }
  absl::Status DeleteExperiment(int64_t id) override {
    return inner_->DeleteExperiment(id);
  }
  absl::Status AddLogs(int64_t id,
                       const std::vector<v1::LogLine>& lines) override {
    return inner_->AddLogs(id, lines);
  }
  absl::StatusOr<std::vector<v1::TrialLogLine>> GetLogs(int64_t id,
                                                        int64_t after,
                                                        int limit) override {
    return inner_->GetLogs(id, after, limit);
  }
  absl::Status UpsertAgent(const v1::Agent& a) override {
    return inner_->UpsertAgent(a);
  }
  absl::StatusOr<std::vector<v1::Agent>> ListAgents() override {
    return inner_->ListAgents();
  }
  absl::Status SetWorkerSeq(const std::string& w, int64_t seq) override {
    return inner_->SetWorkerSeq(w, seq);
  }
  absl::StatusOr<int64_t> GetWorkerSeq(const std::string& w) override {
    return inner_->GetWorkerSeq(w);
  }
  absl::StatusOr<std::string> ClusterId() override {
    return inner_->ClusterId();
  }

 private:
  std::unique_ptr<store::Store> inner_;
};

}  // namespace det::testing

#endif  // DET_TESTS_MASTER_FORWARDING_STORE_H_
