// Search methods: pure logic that turns events about trials into actions.
//
// A SearchMethod has no clock, network or database: the experiment loop feeds
// it events (trial created, validation completed, trial closed, trial exited
// early) and carries out the operations it returns. The same events in give
// the same operations out, so a search is tested by feeding it events, and
// its whole state can be snapshotted and restored (master restart).
//
// Lengths here are in the config's max_length unit ("units"); the experiment
// loop converts to batches for the trainer.
#ifndef DET_MASTER_SEARCHER_SEARCHER_H_
#define DET_MASTER_SEARCHER_SEARCHER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/value.h"

namespace det::searcher {

// Identifies a trial within one search (1, 2, 3, ... in creation order).
using RequestId = int64_t;

// Create a trial with these hyperparameters and seed.
struct Create {
  RequestId request_id = 0;
  ValueMap hparams;
  uint64_t seed = 0;
  // When not 0: the trial starts from the latest checkpoint of this
  // request's trial (PBT's exploit step), with its step count at 0.
  RequestId warm_start_from = 0;
  bool operator==(const Create& o) const {
    return request_id == o.request_id && hparams == o.hparams &&
           seed == o.seed && warm_start_from == o.warm_start_from;
  }
};

// Train the trial until it has `length` units in total, validating at each
// of `validation_points` (ascending, all <= length) and at `length`.
// Sent once per trial, right after Create.
struct ValidateAfter {
  RequestId request_id = 0;
  int64_t length = 0;
  std::vector<int64_t> validation_points;
  bool operator==(const ValidateAfter& o) const {
    return request_id == o.request_id && length == o.length &&
           validation_points == o.validation_points;
  }
};

// Stop the trial now (checkpoint and exit); it will be reported closed.
struct Close {
  RequestId request_id = 0;
  bool operator==(const Close& o) const { return request_id == o.request_id; }
};

// The search is over. `failure` when it ended because every trial failed.
struct Shutdown {
  bool failure = false;
  bool operator==(const Shutdown& o) const { return failure == o.failure; }
};

using Operation = std::variant<Create, ValidateAfter, Close, Shutdown>;
using Operations = std::vector<Operation>;

std::string ToString(const Operation& op);

// Why a trial ended before the searcher closed it.
enum class ExitedReason {
  kErrored,       // failed after its restarts
  kInvalidHP,     // rejected its hyperparameters: replace it
  kUserCanceled,  // the user killed it (det trial kill): not a failure,
                  // the search goes on
};

class SearchMethod {
 public:
  virtual ~SearchMethod() = default;

  // Operations to start the search (creates, up to the concurrency limit).
  virtual Operations InitialOperations() = 0;

  // The trial for `id` exists (after its Create was carried out).
  virtual Operations TrialCreated(RequestId id) = 0;

  // A validation finished: `metric` is the searcher metric's value (as
  // reported; the method applies smaller_is_better), after `length` units.
  virtual Operations ValidationCompleted(RequestId id, double metric,
                                         int64_t length) = 0;

  // The trial finished: trained to its length, or stopped after Close.
  virtual Operations TrialClosed(RequestId id) = 0;

  // The trial ended without being closed by the searcher.
  virtual Operations TrialExitedEarly(RequestId id, ExitedReason reason) = 0;

  // 0..1: how much of the search is done.
  virtual double Progress() const = 0;

  // The whole state as text (JSON), and back. Restore on a fresh instance
  // made from the same config gives the same future operations.
  virtual std::string Snapshot() const = 0;
  virtual absl::Status Restore(const std::string& snapshot) = 0;
};

// Makes the search method for a validated config.
absl::StatusOr<std::unique_ptr<SearchMethod>> NewSearchMethod(
    const ExperimentConfig& config);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_SEARCHER_H_
