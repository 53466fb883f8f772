// Population-based training (searcher.name: pbt), as Determined's PBT
// searcher decides it: a population of population_size members trains in
// num_rounds rounds of length_per_round each. When every member has finished
// a round, the members are ranked by their last validation (ties: the older
// trial first); the bottom floor(truncate_fraction x population_size) are
// dropped and replaced by copies of the top as many, which start from their
// parent's checkpoint with explored hyperparameters (ExploreHParams:
// resampled with resample_probability, else perturbed by perturb_factor);
// the others continue with the hyperparameters they have.
//
// One det trial is one member's one round. Determined keeps a continuing
// member running as the same trial (its next ValidateAfter extends it); a
// det trial ends at its length and is never reopened, so a continuing member
// goes on as a new trial warm-started from its own last checkpoint, with the
// same hyperparameters. Every trial after the first round is warm-started
// (Create.warm_start_from) from a trial of the previous round that has
// closed, so its checkpoint exists; it counts its steps from 0 and trains
// length_per_round (ValidateAfter{length_per_round}), as Determined's copies
// do. The search creates population_size x num_rounds trials at most, all of
// a round at once (the population is the concurrency), and never Closes one:
// each trains its round and ends.
//
// Ending trials: a trial that errors or rejects its hyperparameters leaves a
// dead member ranked below every live one (Determined ranks it with the
// worst metric). A dead member in the bottom is replaced like any other; one
// that survives the cut stays dead (nothing to continue from) until it is
// replaced; a copy of a dead parent is not made, its slot stays dead. A
// round with no live member ends the search (Shutdown{failure}). A live
// trial that closed without validating ranks just above the dead ones.
// User-canceled: nothing more is created; Shutdown once none runs.
//
// Hyperparameters are a pure function of a trial's lineage (sampled for the
// first round, explored from the parent for a copy, the parent's for a
// continuation) and of the experiment seed, so the snapshot keeps only the
// lineage and the same seed and results give the same trials.
//
// Not thread-safe: one owner (the experiment's loop) feeds it events.
#ifndef DET_MASTER_SEARCHER_PBT_SEARCH_H_
#define DET_MASTER_SEARCHER_PBT_SEARCH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "master/searcher/searcher.h"

namespace det::searcher {

struct PbtOptions {
  PbtConfig pbt;
  int64_t length_per_round = 0;  // units (the config's max_length)
  bool smaller_is_better = true;
  HParamSpecs hparams;
  uint64_t experiment_seed = 0;
};

class PbtSearch : public SearchMethod {
 public:
  explicit PbtSearch(PbtOptions options);

  Operations InitialOperations() override;
  Operations TrialCreated(RequestId id) override;
  Operations ValidationCompleted(RequestId id, double metric,
                                 int64_t length) override;
  Operations TrialClosed(RequestId id) override;
  Operations TrialExitedEarly(RequestId id, ExitedReason reason) override;
  // Units trained (each member's round counts whole once it ended) over
  // population_size x num_rounds x length_per_round.
  double Progress() const override;
  std::string Snapshot() const override;
  absl::Status Restore(const std::string& snapshot) override;

  // The number of trials replaced each round.
  int64_t NumTruncate() const;

 private:
  // One member of the population in the current round.
  struct Member {
    RequestId id = 0;   // its trial this round; 0 for a dead one carried over
    bool done = false;  // its trial ended (closed or exited)
    bool dead = false;  // no checkpoint to continue from
    bool has_metric = false;
    double value = 0;    // the last validation, smaller-is-better form
    int64_t length = 0;  // the longest validated length this round
  };
  // Where a trial's hyperparameters come from.
  struct Lineage {
    RequestId parent = 0;   // 0: sampled (first round)
    bool explored = false;  // a copy (explored) or a continuation of parent
  };

  Member* FindMember(RequestId id);
  // Ends the round of `id`'s member (`dead`: it exited early, nothing to
  // continue from), keeping Progress() in step; nullptr when `id` is no
  // member or its round has already ended.
  Member* EndMember(RequestId id, bool dead);
  // A member's share of Progress() in units: its round whole once ended,
  // else its validated length (capped at the round's).
  int64_t Units(const Member& m) const;
  // Replaces the members, rebuilding what is derived from them.
  void SetMembers(std::vector<Member> members);
  // Creates the trial of a member: sampled (parent 0), a continuation or an
  // explored copy of `parent`; its hyperparameters go into `hparams`.
  Member NewTrial(RequestId parent, bool explored, Operations* ops,
                  std::map<RequestId, ValueMap>* hparams);
  ValueMap HParamsOf(RequestId id) const;
  // When every member is done: the next round, or the end of the search.
  void MaybeEndRound(Operations* ops);
  void NextRound(Operations* ops);
  void ShutDown(bool failure, Operations* ops);
  double Normalize(double metric) const;

  PbtOptions options_;
  int64_t round_ = 0;  // 0-based, the round the members train
  std::vector<Member> members_;
  std::map<RequestId, Lineage> lineage_;  // every trial created
  RequestId next_id_ = 1;
  bool started_ = false;
  bool shut_down_ = false;
  bool canceled_ = false;
  int64_t closed_ = 0;  // trials that ended with TrialClosed
  int64_t failed_ = 0;  // errored or invalid
  // Derived, not snapshotted: hyperparameters of the current members'
  // trials (the parents of the next round), where each member is, the sum
  // of Units() over the members, and how many still run.
  std::map<RequestId, ValueMap> hparams_;
  std::map<RequestId, size_t> member_index_;
  int64_t progress_units_ = 0;
  int64_t running_ = 0;  // members whose trial has not ended
};

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_PBT_SEARCH_H_
