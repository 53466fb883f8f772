// The engine behind every search method: a tournament of brackets of
// asynchronous successive halving with early stopping (Determined's
// asyncHalvingStoppingSearch inside its tournamentSearch).
//
// Each bracket creates up to max_trials trials, at most
// max_concurrent_trials at a time, each trained towards the bracket's top
// rung (max_length) in one go. At each validation the trial's metric enters
// every rung whose length the trial has reached; in a rung with k entries the
// top max(floor(k/divisor), 1) continue, and a trial outside them is stopped
// (Close). A trial that reaches the top rung is done: it finishes its length
// and closes. Each trial that ends makes room for the next one.
//
// The other searchers are special cases: random is one bracket with one rung
// (nothing is ever stopped), grid is that with grid points instead of random
// samples, single is a grid of one.
//
// Ending trials:
//  - closed (TrialClosed): counts as a completed trial;
//  - errored after its restarts: counts as the worst value in the rung it was
//    training towards, so it takes up a place there as a failure does in
//    Determined;
//  - invalid hyperparameters: forgotten (its metrics leave every rung) and,
//    when a new sample could differ (random sampling of a space with a
//    non-const hyperparameter), replaced by a new trial that does not count
//    towards max_trials; otherwise (grid points, all-const spaces) the point
//    is dropped. At most 10 x max_trials + 10 invalid trials per bracket are
//    replaced, so a space that is invalid everywhere ends instead of running
//    forever;
//  - user-canceled: the experiment is being canceled, so nothing more is
//    created and the search shuts down once no trial is running.
//
// Stop-once: trials are judged once, when they enter a rung, and a stopped
// trial is never resumed. This is Determined's stop_once behaviour; with this
// interface (one ValidateAfter per trial, trials train continuously) it is
// also what `stop_once: false` gets.
//
// Sampler (random and adaptive_asha): `random` draws each trial's
// hyperparameters from its own stream (SampleHParams); `tpe` fits a
// Tree-structured Parzen Estimator (tpe.h) on the results so far, once
// n_startup_trials trials have one (before that: the random sampler's
// draw). A trial's result is its value at the longest rung it reached, over
// all brackets; results rank by that length, then value (Optuna's TPE with
// a pruner: complete trials first, pruned ones by their last step), so the
// good group comes from the highest rung with enough results (BOHB's idea)
// and trials stopped lower count among the bad. The trials' points are
// kept per trial and snapshotted. Errored trials and NaN metrics are left
// out, as Optuna leaves out failed trials; a trial that closes without ever
// reaching its only rung (the trial decides its length) enters it with its
// last validation.
//
// Not thread-safe: one owner (the experiment's loop) feeds it events.
#ifndef DET_MASTER_SEARCHER_TOURNAMENT_SEARCH_H_
#define DET_MASTER_SEARCHER_TOURNAMENT_SEARCH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config_hparams.h"
#include "master/searcher/asha_brackets.h"
#include "master/searcher/searcher.h"
#include "master/searcher/tpe.h"

namespace det::searcher {

struct TournamentOptions {
  std::string method;  // "single", "grid", "random", "adaptive_asha"
  std::vector<AshaBracket> brackets;
  int64_t max_length = 0;  // units
  double divisor = 4;
  bool smaller_is_better = true;
  // Trials take the grid point of their creation index instead of a random
  // sample.
  bool grid = false;
  // Replace trials that reject their hyperparameters with new samples.
  bool replace_invalid = true;
  HParamSpecs hparams;
  uint64_t experiment_seed = 0;
  SamplerName sampler = SamplerName::kRandom;
  TpeConfig tpe;  // sampler == kTpe
};

class TournamentSearch : public SearchMethod {
 public:
  explicit TournamentSearch(TournamentOptions options);

  Operations InitialOperations() override;
  Operations TrialCreated(RequestId id) override;
  Operations ValidationCompleted(RequestId id, double metric,
                                 int64_t length) override;
  Operations TrialClosed(RequestId id) override;
  Operations TrialExitedEarly(RequestId id, ExitedReason reason) override;
  double Progress() const override;
  std::string Snapshot() const override;
  absl::Status Restore(const std::string& snapshot) override;

 private:
  enum class TrialState {
    kRunning = 0,
    kClosing = 1,  // asked to stop
    kClosed = 2,
    kErrored = 3,
    kInvalid = 4,
    kCanceled = 5,
  };
  struct Trial {
    int bracket = 0;
    int next_rung = 0;  // the first rung it has not entered
    TrialState state = TrialState::kRunning;
    int64_t length = 0;  // longest validated length so far
    // TPE only: the trial's point (one internal value per modelled leaf),
    // and its last validation's normalised metric.
    std::vector<double> point;
    bool has_last = false;
    double last = 0;
  };
  // A rung entry: the metric in "smaller is better" form, and its trial.
  using Entry = std::pair<double, RequestId>;
  struct Bracket {
    int64_t created = 0;
    int64_t invalid = 0;
    int64_t active = 0;  // running or closing; derived, not snapshotted
    std::vector<std::vector<Entry>> rungs;  // each sorted by value
  };

  static bool Active(TrialState s) {
    return s == TrialState::kRunning || s == TrialState::kClosing;
  }
  // Adds (sign 1) or takes away (sign -1) a trial's share of Progress():
  // every change to a trial's state or length is bracketed by the two, so
  // Progress() needs no walk over the trials.
  void Account(const Trial& t, int sign);
  // Moves an active trial to an ended state.
  void End(Trial* t, TrialState state);
  bool CanCreate(int bracket) const;
  // Creates trials while brackets have room, then shuts down when done.
  void Fill(Operations* ops);
  void CreateTrial(int bracket, Operations* ops);
  void MaybeShutdown(Operations* ops);
  double Normalize(double metric) const;
  bool tpe() const { return options_.sampler == SamplerName::kTpe; }
  // The hyperparameters of a new trial `id` under the TPE sampler, and its
  // point.
  ValueMap SampleTpe(RequestId id, std::vector<double>* point) const;
  // The results TPE models (see above) in request-id order, and the running
  // trials without one; false while there are fewer than n_startup_trials.
  bool CollectObservations(std::vector<tpe::Observation>* results,
                           std::vector<tpe::Observation>* running) const;
  // The snapshot's "tpe" section, and reading it back into `trials`.
  std::string SnapshotTpe() const;
  absl::Status RestoreTpe(const Value& root,
                          std::map<RequestId, Trial>* trials) const;

  TournamentOptions options_;
  // TPE: the modelled leaves (not const), in sorted path order, and their
  // dimensions.
  std::vector<HParamLeaf> tpe_leaves_;
  std::vector<tpe::Dimension> tpe_dims_;
  std::vector<Bracket> brackets_;
  std::map<RequestId, Trial> trials_;
  RequestId next_id_ = 1;
  bool started_ = false;
  bool shut_down_ = false;
  bool canceled_ = false;
  int64_t closed_ = 0;  // trials that ended with TrialClosed
  int64_t failed_ = 0;  // errored or invalid
  // Progress() in integers, kept by Account() and rebuilt by Restore(), not
  // snapshotted: trials that count whole (told to stop, or ended other than
  // with invalid hyperparameters), and the sum over running trials of their
  // validated length capped at max_length (in units).
  int64_t progress_whole_ = 0;
  int64_t progress_units_ = 0;
};

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_TOURNAMENT_SEARCH_H_
