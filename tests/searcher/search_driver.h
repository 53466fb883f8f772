// Test helpers: configs for searchers, and a Driver that plays the
// experiment loop's part (carries out operations, tracks each trial) while
// checking the invariants every search must keep.
#ifndef DET_TESTS_SEARCHER_SEARCH_DRIVER_H_
#define DET_TESTS_SEARCHER_SEARCH_DRIVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "gtest/gtest.h"
#include "master/searcher/searcher.h"

namespace det::searcher::testing {

// Parses a config that must be valid.
inline ExperimentConfig MustParse(const std::string& yaml) {
  auto cfg = ParseExperimentConfig(yaml);
  EXPECT_TRUE(cfg.ok()) << cfg.status() << "\n" << yaml;
  return cfg.ok() ? *cfg : ExperimentConfig{};
}

// The property tests' random choices: seeded, the same on every platform's
// standard library (std::mt19937_64 is fully specified; its distributions
// are not, so none is used).
class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  int64_t Int(int64_t lo, int64_t hi) {  // inclusive
    return lo +
           static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1));
  }
  double Uniform() { return (rng_() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Uniform() < p; }

 private:
  std::mt19937_64 rng_;
};

inline std::unique_ptr<SearchMethod> MustCreate(const ExperimentConfig& cfg) {
  auto s = NewSearchMethod(cfg);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

struct TrialView {
  Create create;
  ValidateAfter validate;
  bool closing = false;  // Close received
  bool ended = false;
};

// Feeds events to a SearchMethod and applies the operations it returns,
// failing the test when an invariant breaks:
//  - every Create has a fresh id and is followed by its ValidateAfter;
//  - Close only for a live trial, at most once;
//  - nothing after Shutdown, and Shutdown at most once;
//  - live trials never exceed `max_concurrent`.
class Driver {
 public:
  Driver(std::unique_ptr<SearchMethod> method, int64_t max_concurrent)
      : method_(std::move(method)), max_concurrent_(max_concurrent) {}

  SearchMethod& method() { return *method_; }
  void Replace(std::unique_ptr<SearchMethod> m) { method_ = std::move(m); }

  Operations Start() { return Apply(method_->InitialOperations()); }
  Operations Validate(RequestId id, double metric, int64_t length) {
    return Apply(method_->ValidationCompleted(id, metric, length));
  }
  Operations Closed(RequestId id) {
    Operations ops = method_->TrialClosed(id);
    MarkEnded(id);
    return Apply(std::move(ops));
  }
  Operations Exited(RequestId id, ExitedReason reason) {
    Operations ops = method_->TrialExitedEarly(id, reason);
    MarkEnded(id);
    return Apply(std::move(ops));
  }

  const std::map<RequestId, TrialView>& trials() const { return trials_; }
  std::vector<RequestId> Live() const {
    std::vector<RequestId> ids;
    for (const auto& [id, t] : trials_) {
      if (!t.ended) ids.push_back(id);
    }
    return ids;
  }
  bool shut_down() const { return shutdowns_ > 0; }
  bool failure() const { return failure_; }
  int64_t created() const { return static_cast<int64_t>(trials_.size()); }
  int64_t max_live_seen() const { return max_live_; }

 private:
  void MarkEnded(RequestId id) {
    auto it = trials_.find(id);
    if (it != trials_.end()) it->second.ended = true;
  }

  Operations Apply(Operations ops) {
    for (size_t i = 0; i < ops.size(); ++i) {
      EXPECT_EQ(shutdowns_, 0)
          << "operation after Shutdown: " << ToString(ops[i]);
      if (auto* c = std::get_if<Create>(&ops[i])) {
        EXPECT_EQ(trials_.count(c->request_id), 0u)
            << "created twice: " << c->request_id;
        EXPECT_GT(c->request_id, last_id_) << "ids must ascend";
        last_id_ = c->request_id;
        auto* v = i + 1 < ops.size() ? std::get_if<ValidateAfter>(&ops[i + 1])
                                     : nullptr;
        if (v == nullptr) {
          ADD_FAILURE() << "Create not followed by ValidateAfter";
          continue;
        }
        EXPECT_EQ(v->request_id, c->request_id);
        trials_[c->request_id] = TrialView{*c, *v, false, false};
        method_->TrialCreated(c->request_id);
        ++i;
      } else if (auto* v = std::get_if<ValidateAfter>(&ops[i])) {
        ADD_FAILURE() << "ValidateAfter without Create: " << v->request_id;
      } else if (auto* cl = std::get_if<Close>(&ops[i])) {
        auto it = trials_.find(cl->request_id);
        if (it == trials_.end()) {
          ADD_FAILURE() << "Close of unknown " << cl->request_id;
          continue;
        }
        EXPECT_FALSE(it->second.ended) << "Close of ended " << cl->request_id;
        EXPECT_FALSE(it->second.closing) << "Closed twice " << cl->request_id;
        it->second.closing = true;
      } else if (auto* s = std::get_if<Shutdown>(&ops[i])) {
        ++shutdowns_;
        failure_ = s->failure;
        EXPECT_TRUE(Live().empty()) << "Shutdown with live trials";
      }
    }
    int64_t live = static_cast<int64_t>(Live().size());
    max_live_ = std::max(max_live_, live);
    EXPECT_LE(live, max_concurrent_) << "concurrency limit exceeded";
    return ops;
  }

  std::unique_ptr<SearchMethod> method_;
  int64_t max_concurrent_;
  std::map<RequestId, TrialView> trials_;
  RequestId last_id_ = 0;
  int shutdowns_ = 0;
  bool failure_ = false;
  int64_t max_live_ = 0;
};

inline std::vector<RequestId> CreatedIds(const Operations& ops) {
  std::vector<RequestId> ids;
  for (const Operation& op : ops) {
    if (auto* c = std::get_if<Create>(&op)) ids.push_back(c->request_id);
  }
  return ids;
}

inline std::vector<RequestId> ClosedIds(const Operations& ops) {
  std::vector<RequestId> ids;
  for (const Operation& op : ops) {
    if (auto* c = std::get_if<Close>(&op)) ids.push_back(c->request_id);
  }
  return ids;
}

inline bool HasShutdown(const Operations& ops, bool* failure = nullptr) {
  for (const Operation& op : ops) {
    if (auto* s = std::get_if<Shutdown>(&op)) {
      if (failure != nullptr) *failure = s->failure;
      return true;
    }
  }
  return false;
}

}  // namespace det::searcher::testing

#endif  // DET_TESTS_SEARCHER_SEARCH_DRIVER_H_
