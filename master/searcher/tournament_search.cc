#include "master/searcher/tournament_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "master/searcher/hparam_sampler.h"

namespace det::searcher {
namespace {

// The value a failed trial takes in its rung, and what NaN metrics become.
constexpr double kWorst = std::numeric_limits<double>::max();

int64_t MaxInvalid(int64_t max_trials) { return 10 * max_trials + 10; }

}  // namespace

TournamentSearch::TournamentSearch(TournamentOptions options)
    : options_(std::move(options)) {
  brackets_.resize(options_.brackets.size());
  for (size_t i = 0; i < brackets_.size(); ++i) {
    brackets_[i].rungs.resize(options_.brackets[i].rung_lengths.size());
  }
  if (tpe()) {
    for (const HParamLeaf& leaf : FlattenHParams(options_.hparams)) {
      const HParamSpec& spec = *leaf.spec;
      tpe::Dimension d;
      d.stream = HashPath(leaf.path);
      switch (spec.type) {
        case HParamSpec::Type::kInt:
          d.kind = tpe::Dimension::Kind::kInteger;
          break;
        case HParamSpec::Type::kDouble:
        case HParamSpec::Type::kLog:  // modelled in its exponent
          d.kind = tpe::Dimension::Kind::kContinuous;
          break;
        case HParamSpec::Type::kCategorical:
          d.kind = tpe::Dimension::Kind::kCategorical;
          d.choices = static_cast<int64_t>(spec.vals.size());
          break;
        default:
          continue;  // const: nothing to model
      }
      d.low = spec.minval;
      d.high = spec.maxval;
      tpe_leaves_.push_back(leaf);
      tpe_dims_.push_back(d);
    }
  }
}

bool TournamentSearch::CollectObservations(
    std::vector<tpe::Observation>* results,
    std::vector<tpe::Observation>* running) const {
  // Each trial's result: its value at the longest rung it reached (over
  // every bracket; a trial in two rungs of the same length has the same
  // value in both, one validation entered it in both).
  std::map<RequestId, std::pair<int64_t, double>> reached;
  for (size_t b = 0; b < brackets_.size(); ++b) {
    const std::vector<int64_t>& lengths = options_.brackets[b].rung_lengths;
    for (size_t r = 0; r < lengths.size(); ++r) {
      for (const Entry& e : brackets_[b].rungs[r]) {
        if (e.first >= kWorst) continue;  // failed: NaN, or errored
        auto [it, fresh] =
            reached.emplace(e.second, std::make_pair(lengths[r], e.first));
        if (!fresh && it->second.first < lengths[r]) {
          it->second = {lengths[r], e.first};
        }
      }
    }
  }
  for (const auto& [id, t] : trials_) {
    // Errored trials are left out whole, as Optuna leaves out failed ones.
    if (t.state == TrialState::kErrored) reached.erase(id);
  }
  if (static_cast<int64_t>(reached.size()) < options_.tpe.n_startup_trials) {
    return false;
  }
  for (const auto& [id, r] : reached) {
    auto it = trials_.find(id);
    if (it == trials_.end()) continue;
    results->push_back(
        tpe::Observation{it->second.point, r.second, id, r.first});
  }
  for (const auto& [id, t] : trials_) {
    if (Active(t.state) && reached.count(id) == 0) {
      running->push_back(tpe::Observation{t.point, 0, id, 0});
    }
  }
  return true;
}

ValueMap TournamentSearch::SampleTpe(RequestId id,
                                     std::vector<double>* point) const {
  // Every trial created so far (in the snapshot with its point), running or
  // not, errored or not: a repeat of any of them adds nothing new.
  std::vector<std::vector<double>> tried;
  if (options_.tpe.avoid_duplicates) {
    for (const auto& [other, t] : trials_) tried.push_back(t.point);
  }
  std::vector<tpe::Observation> results, running;
  const uint64_t seed =
      MixSeed(options_.experiment_seed ^ 0x3c6ef372fe94f82bULL,
              static_cast<uint64_t>(id));
  if (CollectObservations(&results, &running)) {
    *point =
        tpe::Suggest(tpe_dims_, results, running, tried, options_.tpe, seed);
  } else {
    // The random sampler's own draw, leaf by leaf; a repeat is replaced by
    // a random new point.
    point->clear();
    for (const HParamLeaf& leaf : tpe_leaves_) {
      point->push_back(SampleLeafInternal(*leaf.spec, leaf.path,
                                          options_.experiment_seed, id));
    }
    if (std::find(tried.begin(), tried.end(), *point) != tried.end()) {
      tpe::RandomNew(tpe_dims_, tried, seed, point);
    }
  }
  std::map<std::string, double> by_path;
  for (size_t i = 0; i < tpe_leaves_.size(); ++i) {
    by_path[tpe_leaves_[i].path] = (*point)[i];
  }
  return BuildHParams(
      options_.hparams, [&](const std::string& path, const HParamSpec& spec) {
        auto it = by_path.find(path);
        return it == by_path.end() ? spec.val : LeafValue(spec, it->second);
      });
}

void TournamentSearch::Account(const Trial& t, int sign) {
  switch (t.state) {
    case TrialState::kRunning:
      progress_units_ +=
          sign * std::min(t.length, std::max<int64_t>(options_.max_length, 1));
      break;
    case TrialState::kInvalid:
      break;  // replaced; its replacement carries the progress
    default:
      progress_whole_ += sign;
  }
}

void TournamentSearch::End(Trial* t, TrialState state) {
  Account(*t, -1);
  t->state = state;
  Account(*t, 1);
  --brackets_[t->bracket].active;
}

bool TournamentSearch::CanCreate(int b) const {
  if (canceled_ || shut_down_) return false;
  const AshaBracket& spec = options_.brackets[b];
  const Bracket& state = brackets_[b];
  // Invalid trials are replaced (up to a limit) by not counting them.
  int64_t counted =
      options_.replace_invalid ? state.created - state.invalid : state.created;
  if (counted >= spec.max_trials) return false;
  if (options_.replace_invalid &&
      state.invalid >= MaxInvalid(spec.max_trials)) {
    return false;
  }
  return state.active < spec.max_concurrent_trials;
}

void TournamentSearch::CreateTrial(int b, Operations* ops) {
  RequestId id = next_id_++;
  Bracket& state = brackets_[b];
  Create create;
  create.request_id = id;
  Trial t;
  t.bracket = b;
  if (options_.grid) {
    create.hparams = GridHParams(options_.hparams, state.created);
  } else if (tpe()) {
    create.hparams = SampleTpe(id, &t.point);
  } else {
    create.hparams =
        SampleHParams(options_.hparams, options_.experiment_seed, id);
  }
  create.seed = TrialSeed(options_.experiment_seed, id);
  ++state.created;
  ++state.active;
  trials_[id] = std::move(t);

  ValidateAfter validate;
  validate.request_id = id;
  validate.length = options_.max_length;
  for (int64_t len : options_.brackets[b].rung_lengths) {
    if (len < options_.max_length &&
        (validate.validation_points.empty() ||
         validate.validation_points.back() < len)) {
      validate.validation_points.push_back(len);
    }
  }
  ops->push_back(std::move(create));
  ops->push_back(std::move(validate));
}

void TournamentSearch::Fill(Operations* ops) {
  for (int b = 0; b < static_cast<int>(brackets_.size()); ++b) {
    while (CanCreate(b)) CreateTrial(b, ops);
  }
  MaybeShutdown(ops);
}

void TournamentSearch::MaybeShutdown(Operations* ops) {
  if (shut_down_) return;
  for (int b = 0; b < static_cast<int>(brackets_.size()); ++b) {
    if (brackets_[b].active > 0 || CanCreate(b)) return;
  }
  shut_down_ = true;
  ops->push_back(Shutdown{closed_ == 0 && failed_ > 0});
}

double TournamentSearch::Normalize(double metric) const {
  if (std::isnan(metric)) return kWorst;
  double v = options_.smaller_is_better ? metric : -metric;
  return std::clamp(v, -kWorst, kWorst);
}

Operations TournamentSearch::InitialOperations() {
  Operations ops;
  if (started_) return ops;
  started_ = true;
  Fill(&ops);
  return ops;
}

Operations TournamentSearch::TrialCreated(RequestId id) { return {}; }

Operations TournamentSearch::ValidationCompleted(RequestId id, double metric,
                                                 int64_t length) {
  Operations ops;
  auto it = trials_.find(id);
  if (it == trials_.end() || it->second.state != TrialState::kRunning) {
    return ops;  // unknown, or already told to stop: its fate is decided
  }
  Trial& t = it->second;
  Account(t, -1);
  t.length = std::max(t.length, length);
  Account(t, 1);
  const AshaBracket& spec = options_.brackets[t.bracket];
  Bracket& bracket = brackets_[t.bracket];
  const double value = Normalize(metric);
  const int num_rungs = static_cast<int>(spec.rung_lengths.size());
  if (tpe()) {
    t.has_last = true;
    t.last = value;
  }
  // Validations need not land on rung lengths: one may cover several rungs.
  while (t.next_rung < num_rungs && spec.rung_lengths[t.next_rung] <= length) {
    int r = t.next_rung++;
    std::vector<Entry>& rung = bracket.rungs[r];
    // Before any equal values: on ties the newcomer ranks first, as in
    // Determined.
    auto pos =
        std::lower_bound(rung.begin(), rung.end(), value,
                         [](const Entry& e, double v) { return e.first < v; });
    size_t rank = static_cast<size_t>(pos - rung.begin());
    rung.insert(pos, Entry{value, id});
    if (r == num_rungs - 1) break;  // top rung: done, it finishes by itself
    size_t keep =
        std::max<size_t>(static_cast<size_t>(static_cast<double>(rung.size()) /
                                             options_.divisor),
                         1);
    if (rank >= keep) {
      Account(t, -1);
      t.state = TrialState::kClosing;
      Account(t, 1);
      ops.push_back(Close{id});
      break;
    }
  }
  return ops;
}

Operations TournamentSearch::TrialClosed(RequestId id) {
  Operations ops;
  auto it = trials_.find(id);
  if (it == trials_.end() || !Active(it->second.state)) return ops;
  Trial& t = it->second;
  // TPE: a trial that decided its own length never reached the rung at
  // max_length; its last validation is its result (a one-rung bracket ranks
  // nothing, so the entry changes nothing else).
  if (tpe() && t.state == TrialState::kRunning && t.has_last &&
      t.next_rung == 0 && brackets_[t.bracket].rungs.size() == 1) {
    std::vector<Entry>& rung = brackets_[t.bracket].rungs[0];
    auto pos =
        std::lower_bound(rung.begin(), rung.end(), t.last,
                         [](const Entry& e, double v) { return e.first < v; });
    rung.insert(pos, Entry{t.last, id});
    t.next_rung = 1;
  }
  End(&t, TrialState::kClosed);
  ++closed_;
  Fill(&ops);
  return ops;
}

Operations TournamentSearch::TrialExitedEarly(RequestId id,
                                              ExitedReason reason) {
  Operations ops;
  auto it = trials_.find(id);
  if (it == trials_.end() || !Active(it->second.state)) return ops;
  Trial& t = it->second;
  Bracket& bracket = brackets_[t.bracket];
  switch (reason) {
    case ExitedReason::kErrored:
      // A trial already told to stop is ranked where it stopped. No value
      // exceeds kWorst (Normalize clamps), so the end of the sorted rung is
      // after every equal value, where a stable sort would put it.
      if (t.state == TrialState::kRunning &&
          t.next_rung < static_cast<int>(bracket.rungs.size())) {
        bracket.rungs[t.next_rung].push_back(Entry{kWorst, id});
      }
      End(&t, TrialState::kErrored);
      ++failed_;
      break;
    case ExitedReason::kInvalidHP:
      // An active trial has entries only in the rungs it has entered.
      for (int r = 0; r < t.next_rung; ++r) {
        std::vector<Entry>& rung = bracket.rungs[r];
        rung.erase(
            std::remove_if(rung.begin(), rung.end(),
                           [id](const Entry& e) { return e.second == id; }),
            rung.end());
      }
      End(&t, TrialState::kInvalid);
      ++bracket.invalid;
      ++failed_;
      break;
    case ExitedReason::kUserCanceled:
      // det trial kill: ranked where it stopped as an errored trial is,
      // but not a failure, and the search goes on (Determined's rule).
      if (t.state == TrialState::kRunning &&
          t.next_rung < static_cast<int>(bracket.rungs.size())) {
        bracket.rungs[t.next_rung].push_back(Entry{kWorst, id});
      }
      End(&t, TrialState::kCanceled);
      break;
  }
  Fill(&ops);
  return ops;
}

double TournamentSearch::Progress() const {
  if (shut_down_) return 1.0;
  double total = 0;
  for (const AshaBracket& b : options_.brackets) {
    total += static_cast<double>(b.max_trials);
  }
  if (total <= 0) return 0;
  // Each trial counts 0..1: whole when told to stop or ended (except with
  // invalid hyperparameters: 0), else its validated share of max_length.
  double done =
      static_cast<double>(progress_whole_) +
      static_cast<double>(progress_units_) /
          static_cast<double>(std::max<int64_t>(options_.max_length, 1));
  return std::clamp(done / total, 0.0, 1.0);
}

}  // namespace det::searcher
