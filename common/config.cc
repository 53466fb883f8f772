// Experiment config parsing: YAML text -> YamlNode tree (config_yaml.cc) ->
// checked fields (this file, hyperparameters in config_hparams.cc).
#include "common/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config_checker.h"
#include "common/config_hparams.h"
#include "common/config_sampler.h"
#include "common/config_yaml.h"
#include "common/records_options.h"
#include "common/trainer_hparams.h"
#include "yaml-cpp/yaml.h"

namespace det {

using config_internal::Checker;
using config_internal::Describe;
using config_internal::JoinPath;
using config_internal::YamlNode;

namespace {

// Sanity caps: far beyond any real search, low enough that arithmetic on
// them (trials x length, records per epoch x epochs) cannot overflow.
constexpr int64_t kMaxTrials = 1000000;
constexpr int64_t kMaxLength = 1000000000000;  // 1e12 units
constexpr int64_t kMaxGridTrials = 100000;
constexpr int64_t kMaxRungs = 32;
constexpr int64_t kMaxSeed = 2147483647;  // Determined's range

// Determined's top-level fields that det accepts and ignores.
const std::vector<std::string> kIgnoredTopLevel = {"bind_mounts",
                                                   "profiling",
                                                   "scheduling_unit",
                                                   "optimizations",
                                                   "workspace",
                                                   "project",
                                                   "debug",
                                                   "perform_initial_validation",
                                                   "checkpoint_policy",
                                                   "log_policies",
                                                   "integrations",
                                                   "preemption_timeout",
                                                   "pbs",
                                                   "slurm"};

const std::vector<std::string> kTopLevel = {"name",
                                            "description",
                                            "labels",
                                            "hyperparameters",
                                            "searcher",
                                            "resources",
                                            "max_restarts",
                                            "min_validation_period",
                                            "min_checkpoint_period",
                                            "records_per_epoch",
                                            "checkpoint_storage",
                                            "reproducibility",
                                            "data",
                                            "entrypoint",
                                            "environment"};

// Searcher fields, by searcher.
const std::vector<std::string> kSearcherCommon = {
    "name",        "metric",          "smaller_is_better",
    "max_length",  "source_trial_id", "source_checkpoint_uuid",
    "time_metric", "max_time"};
const std::vector<std::string> kSearcherAshaOnly = {
    "mode", "divisor", "max_rungs", "bracket_rungs", "stop_once"};
// Determined's PBT has no max_length: each round's length is its own field.
const std::vector<std::string> kSearcherPbt = {"name",
                                               "metric",
                                               "smaller_is_better",
                                               "source_trial_id",
                                               "source_checkpoint_uuid",
                                               "population_size",
                                               "num_rounds",
                                               "length_per_round",
                                               "replace_function",
                                               "explore_function"};
// searcher.sampler (common/config_sampler.cc): random and adaptive_asha.
const std::vector<std::string> kSearcherSampler = {"sampler", "tpe"};

std::vector<std::string> SearcherFields(SearcherName name) {
  std::vector<std::string> f = kSearcherCommon;
  switch (name) {
    case SearcherName::kSingle:
      break;
    case SearcherName::kGrid:
      f.push_back("max_concurrent_trials");
      break;
    case SearcherName::kRandom:
      f.push_back("max_trials");
      f.push_back("max_concurrent_trials");
      f.insert(f.end(), kSearcherSampler.begin(), kSearcherSampler.end());
      break;
    case SearcherName::kAdaptiveAsha:
      f.push_back("max_trials");
      f.push_back("max_concurrent_trials");
      f.insert(f.end(), kSearcherAshaOnly.begin(), kSearcherAshaOnly.end());
      f.insert(f.end(), kSearcherSampler.begin(), kSearcherSampler.end());
      break;
    case SearcherName::kPbt:
      return kSearcherPbt;
  }
  return f;
}

std::vector<std::string> AllSearcherFields() {
  std::vector<std::string> f = SearcherFields(SearcherName::kAdaptiveAsha);
  for (const std::string& name : kSearcherPbt) {
    if (std::find(f.begin(), f.end(), name) == f.end()) f.push_back(name);
  }
  return f;
}

YamlNode KeyNode(const YamlNode::Entry& e) {
  YamlNode at;
  at.line = e.line;
  at.column = e.column;
  return at;
}

// A length: a map with exactly one of batches, epochs, records. Values must
// be >= min_value. Returns false when absent or invalid.
bool ParseLength(const YamlNode& node, const std::string& path,
                 int64_t min_value, Checker* c, Length* out) {
  static const std::vector<std::string> kUnits = {"batches", "epochs",
                                                  "records"};
  if (!node.is_map()) {
    c->Error(node, path,
             absl::StrCat("expected a length such as {batches: 100}, "
                          "{epochs: 2} or {records: 50000}, found ",
                          Describe(node)));
    return false;
  }
  c->CheckKeys(node, path, kUnits);
  const YamlNode::Entry* first = nullptr;
  bool ok = true;
  for (const YamlNode::Entry& e : node.entries) {
    auto unit = std::find(kUnits.begin(), kUnits.end(), e.key);
    if (unit == kUnits.end()) continue;
    if (first != nullptr) {
      c->Error(KeyNode(e), JoinPath(path, e.key),
               absl::StrCat("a length has one unit, found both '", first->key,
                            "' and '", e.key, "'"));
      ok = false;
      continue;
    }
    first = &e;
    std::string p = JoinPath(path, e.key);
    int64_t v;
    if (!c->ReadInt(e.value, p, &v)) {
      ok = false;
    } else if (v < min_value) {
      c->Error(e.value, p,
               min_value > 0 ? absl::StrCat("must be positive, found ", v)
                             : absl::StrCat("must not be negative, found ", v));
      ok = false;
    } else if (v > kMaxLength) {
      c->Error(e.value, p,
               absl::StrCat("must be at most ", kMaxLength, ", found ", v));
      ok = false;
    } else {
      out->value = v;
      out->unit = e.key == "batches"  ? Unit::kBatches
                  : e.key == "epochs" ? Unit::kEpochs
                                      : Unit::kRecords;
    }
  }
  if (first == nullptr) {
    // A map of only unknown keys was reported by CheckKeys already.
    if (node.entries.empty()) {
      c->Error(node, path,
               "expected one of batches, epochs or records, e.g. "
               "{batches: 100}");
    }
    return false;
  }
  return ok;
}

void ParseSearcherName(const YamlNode& node, const std::string& path,
                       Checker* c, bool* known, SearcherName* out) {
  static const std::vector<std::pair<std::string, SearcherName>> kNames = {
      {"single", SearcherName::kSingle},
      {"grid", SearcherName::kGrid},
      {"random", SearcherName::kRandom},
      {"adaptive_asha", SearcherName::kAdaptiveAsha},
      {"pbt", SearcherName::kPbt}};
  static const std::vector<std::string> kUnsupported = {
      "adaptive", "adaptive_simple", "async_halving", "sync_halving", "custom"};
  std::string name;
  *known = false;
  if (!c->ReadString(node, path, &name)) return;
  for (const auto& [n, v] : kNames) {
    if (n == name) {
      *out = v;
      *known = true;
      return;
    }
  }
  if (std::find(kUnsupported.begin(), kUnsupported.end(), name) !=
      kUnsupported.end()) {
    c->Error(node, path,
             absl::StrCat("the '", name,
                          "' searcher of Determined is not supported by det; "
                          "use single, grid, random, adaptive_asha or pbt"));
    return;
  }
  std::vector<std::string> names;
  for (const auto& [n, v] : kNames) names.push_back(n);
  std::string message =
      absl::StrCat("unknown searcher ", Describe(node),
                   "; expected single, grid, random, adaptive_asha or pbt");
  std::string closest = config_internal::ClosestName(name, names);
  if (!closest.empty())
    absl::StrAppend(&message, "; did you mean '", closest, "'?");
  c->Error(node, path, std::move(message));
}

// The searcher's length: time_metric + max_time (Determined 0.38), else
// max_length (a length map or a bare integer of batches). Neither is
// resolved by ResolveMissingLength, which knows the entrypoint.
void ParseSearcherLength(const YamlNode& node, bool name_known, Checker* c,
                         SearcherConfig* out) {
  const YamlNode* max_length = node.Find("max_length");
  const YamlNode* time_metric = node.Find("time_metric");
  const YamlNode* max_time = node.Find("max_time");
  if (time_metric != nullptr || max_time != nullptr) {
    if (time_metric == nullptr || max_time == nullptr) {
      const YamlNode& at = time_metric ? *time_metric : *max_time;
      c->Error(at, time_metric ? "searcher.max_time" : "searcher.time_metric",
               "missing: time_metric and max_time go together, e.g. "
               "'time_metric: batches' with 'max_time: 1000'");
      return;
    }
    bool ok =
        c->ReadString(*time_metric, "searcher.time_metric", &out->time_metric);
    if (ok && out->time_metric.empty()) {
      c->Error(*time_metric, "searcher.time_metric", "must not be empty");
      ok = false;
    }
    ok = c->ReadIntInRange(*max_time, "searcher.max_time", 1, kMaxLength,
                           &out->max_time) &&
         ok;
    if (!ok) return;
    if (max_length != nullptr) {
      c->Warn(*max_length, "searcher.max_length",
              "ignored: time_metric and max_time give the length (as in "
              "Determined, where max_length is deprecated)");
    }
    static const std::vector<std::pair<std::string, Unit>> kUnits = {
        {"batches", Unit::kBatches},
        {"epochs", Unit::kEpochs},
        {"records", Unit::kRecords}};
    for (const auto& [n, unit] : kUnits) {
      if (n == out->time_metric) {
        out->max_length = Length{unit, out->max_time};
        return;
      }
    }
    // A metric the trial reports: lengths count in its units (the unit
    // below is only a placeholder the master does not convert).
    out->metric_length = true;
    out->max_length = Length{Unit::kBatches, out->max_time};
    return;
  }
  if (max_length == nullptr) return;  // see ResolveMissingLength
  if (max_length->is_scalar()) {
    // Determined's unitless form (Core API scripts read it as op.length):
    // counted in batches, the unit the trial receives.
    int64_t v;
    if (c->ReadIntInRange(*max_length, "searcher.max_length", 1, kMaxLength,
                          &v)) {
      out->max_length = Length{Unit::kBatches, v};
    }
    return;
  }
  ParseLength(*max_length, "searcher.max_length", 1, c, &out->max_length);
}

// A searcher with no length at all: single, grid and random let the user's
// entrypoint decide; adaptive_asha and the built-in trainer need one.
void ResolveMissingLength(const YamlNode& root, bool searcher_known, Checker* c,
                          ExperimentConfig* cfg) {
  const YamlNode* node = root.Find("searcher");
  if (node == nullptr || !node->is_map() || !searcher_known) return;
  if (cfg->searcher.name == SearcherName::kPbt) return;  // length_per_round
  if (node->Find("max_length") || node->Find("time_metric") ||
      node->Find("max_time")) {
    return;
  }
  SearcherConfig& s = cfg->searcher;
  if (s.name != SearcherName::kAdaptiveAsha && !cfg->entrypoint.empty()) {
    s.trial_decides_length = true;
    s.max_length = Length{Unit::kBatches, kTrialDecidesLength};
    return;
  }
  c->Error(
      *node, "searcher.max_time",
      absl::StrCat("missing: how long each trial trains",
                   s.name == SearcherName::kAdaptiveAsha
                       ? " (adaptive_asha needs it for its rungs)"
                       : " (the built-in trainer needs it)",
                   ": 'time_metric: batches' with 'max_time: 1000' (Determined "
                   "0.38), or 'max_length: {batches: 1000}' (also epochs or "
                   "records)"));
}

// A number in [lo, hi] (lo_open: in (lo, hi]), read into *out.
bool ReadFraction(const YamlNode& node, const std::string& path, double lo,
                  bool lo_open, double hi, Checker* c, double* out) {
  double v;
  if (!c->ReadNumber(node, path, &v)) return false;
  if (v < lo || (lo_open && v == lo) || v > hi) {
    c->Error(node, path,
             absl::StrCat("must be in ", lo_open ? "(" : "[", lo, ", ", hi,
                          "], found ", v));
    return false;
  }
  *out = v;
  return true;
}

// searcher.name: pbt's own fields, all required as in Determined:
// population_size, num_rounds, length_per_round (the length of one round,
// which becomes max_length: each det trial trains one round),
// replace_function.truncate_fraction, explore_function.{resample_probability,
// perturb_factor}.
void ParsePbtSearcher(const YamlNode& node, Checker* c, SearcherConfig* out) {
  PbtConfig& pbt = out->pbt;
  auto missing = [&](const std::string& path, const std::string& example) {
    c->Error(
        node, path,
        absl::StrCat("missing: the pbt searcher needs it, e.g. ", example));
  };
  if (const YamlNode* n = node.Find("population_size")) {
    c->ReadIntInRange(*n, "searcher.population_size", 1, kMaxTrials,
                      &pbt.population_size);
  } else {
    missing("searcher.population_size", "'population_size: 8'");
  }
  if (const YamlNode* n = node.Find("num_rounds")) {
    c->ReadIntInRange(*n, "searcher.num_rounds", 1, kMaxTrials,
                      &pbt.num_rounds);
  } else {
    missing("searcher.num_rounds", "'num_rounds: 4'");
  }
  if (pbt.population_size > 0 && pbt.num_rounds > 0 &&
      pbt.population_size > kMaxTrials / pbt.num_rounds) {
    c->Error(*node.Find("num_rounds"), "searcher.num_rounds",
             absl::StrCat("population_size x num_rounds is the number of "
                          "trials det creates (one per member and round); ",
                          pbt.population_size, " x ", pbt.num_rounds,
                          " exceeds the limit of ", kMaxTrials));
  }
  if (const YamlNode* n = node.Find("length_per_round")) {
    if (n->is_scalar()) {  // Determined's unitless form: batches
      int64_t v;
      if (c->ReadIntInRange(*n, "searcher.length_per_round", 1, kMaxLength,
                            &v)) {
        out->max_length = Length{Unit::kBatches, v};
      }
    } else {
      ParseLength(*n, "searcher.length_per_round", 1, c, &out->max_length);
    }
  } else {
    missing("searcher.length_per_round", "'length_per_round: {batches: 500}'");
  }
  const YamlNode* replace = node.Find("replace_function");
  if (replace == nullptr) {
    missing("searcher.replace_function",
            "'replace_function: {truncate_fraction: 0.2}'");
  } else if (c->ExpectMap(*replace, "searcher.replace_function")) {
    c->CheckKeys(*replace, "searcher.replace_function", {"truncate_fraction"});
    if (const YamlNode* n = replace->Find("truncate_fraction")) {
      // Determined's range: at most half, so the replaced trials and the
      // trials they copy never overlap.
      if (ReadFraction(*n, "searcher.replace_function.truncate_fraction", 0,
                       false, 0.5, c, &pbt.truncate_fraction) &&
          pbt.population_size > 0 &&
          static_cast<int64_t>(pbt.truncate_fraction *
                               static_cast<double>(pbt.population_size)) == 0) {
        c->Warn(*n, "searcher.replace_function.truncate_fraction",
                absl::StrCat("truncate_fraction x population_size (",
                             pbt.truncate_fraction, " x ", pbt.population_size,
                             ") rounds down to 0: no trial is ever replaced, "
                             "PBT trains its first population for every "
                             "round"));
      }
    } else {
      c->Error(*replace, "searcher.replace_function.truncate_fraction",
               "missing: the fraction of the population replaced each round, "
               "e.g. 0.2 (at most 0.5)");
    }
  }
  const YamlNode* explore = node.Find("explore_function");
  if (explore == nullptr) {
    missing("searcher.explore_function",
            "'explore_function: {resample_probability: 0.2, perturb_factor: "
            "0.2}'");
  } else if (c->ExpectMap(*explore, "searcher.explore_function")) {
    c->CheckKeys(*explore, "searcher.explore_function",
                 {"resample_probability", "perturb_factor"});
    for (auto [key, field] :
         {std::pair<const char*, double*>{"resample_probability",
                                          &pbt.resample_probability},
          std::pair<const char*, double*>{"perturb_factor",
                                          &pbt.perturb_factor}}) {
      const std::string path = JoinPath("searcher.explore_function", key);
      if (const YamlNode* n = explore->Find(key)) {
        ReadFraction(*n, path, 0, false, 1, c, field);
      } else {
        c->Error(*explore, path, "missing: a number from 0 to 1, e.g. 0.2");
      }
    }
  }
}

// Determined's warm start: searcher.source_trial_id (that trial's latest
// checkpoint, which the master looks up when it creates the experiment) or
// searcher.source_checkpoint_uuid. Both given: source_trial_id wins, as in
// Determined.
void ParseWarmStart(const YamlNode& node, Checker* c, SearcherConfig* out) {
  const YamlNode* trial = node.Find("source_trial_id");
  const YamlNode* uuid = node.Find("source_checkpoint_uuid");
  if (trial != nullptr && !trial->is_null()) {
    c->ReadIntInRange(*trial, "searcher.source_trial_id", 1,
                      std::numeric_limits<int64_t>::max(),
                      &out->source_trial_id);
  }
  if (uuid != nullptr && !uuid->is_null() &&
      c->ReadString(*uuid, "searcher.source_checkpoint_uuid",
                    &out->source_checkpoint_uuid)) {
    const std::string& u = out->source_checkpoint_uuid;
    if (u.empty() || u == "." || u == ".." ||
        u.find_first_of("/\\") != std::string::npos) {
      c->Error(*uuid, "searcher.source_checkpoint_uuid",
               absl::StrCat("expected a checkpoint's uuid (as `det trial "
                            "checkpoints` lists them), found '",
                            u, "'"));
      out->source_checkpoint_uuid.clear();
    }
  }
  if (out->source_trial_id != 0 && !out->source_checkpoint_uuid.empty()) {
    c->Warn(*uuid, "searcher.source_checkpoint_uuid",
            "ignored: source_trial_id is set too, and its latest checkpoint "
            "is the one trials start from (as in Determined)");
    out->source_checkpoint_uuid.clear();
  }
}

void ParseSearcher(const YamlNode* node, const YamlNode& root, Checker* c,
                   SearcherConfig* out, bool* name_known) {
  const std::string path = "searcher";
  *name_known = false;
  if (node == nullptr) {
    c->Error(root, path,
             "missing: the experiment needs a searcher, e.g. {name: single, "
             "metric: validation_accuracy, smaller_is_better: false, "
             "max_length: {epochs: 1}}");
    return;
  }
  if (!c->ExpectMap(*node, path)) return;
  c->CheckKeys(*node, path, AllSearcherFields());

  const YamlNode* name = node->Find("name");
  if (name == nullptr) {
    c->Error(*node, "searcher.name",
             "missing: choose single, grid, random, adaptive_asha or pbt");
  } else {
    ParseSearcherName(*name, "searcher.name", c, name_known, &out->name);
  }
  if (*name_known) {
    std::vector<std::string> allowed = SearcherFields(out->name);
    std::vector<std::string> all = AllSearcherFields();
    for (const YamlNode::Entry& e : node->entries) {
      if (std::find(all.begin(), all.end(), e.key) != all.end() &&
          std::find(allowed.begin(), allowed.end(), e.key) == allowed.end()) {
        c->Error(KeyNode(e), JoinPath(path, e.key),
                 absl::StrCat("'", e.key, "' does not apply to the ",
                              SearcherNameString(out->name), " searcher"));
      }
    }
  }
  ParseWarmStart(*node, c, out);

  const YamlNode* metric = node->Find("metric");
  if (metric == nullptr) {
    c->Error(*node, "searcher.metric",
             "missing: name the validation metric to optimise, e.g. "
             "'metric: validation_accuracy' with 'smaller_is_better: false'");
  } else if (c->ReadString(*metric, "searcher.metric", &out->metric) &&
             out->metric.empty()) {
    c->Error(*metric, "searcher.metric", "must not be empty");
  }
  if (const YamlNode* n = node->Find("smaller_is_better")) {
    c->ReadBool(*n, "searcher.smaller_is_better", &out->smaller_is_better);
  }
  ParseSearcherLength(*node, *name_known, c, out);
  bool needs_trials = *name_known && (out->name == SearcherName::kRandom ||
                                      out->name == SearcherName::kAdaptiveAsha);
  const YamlNode* max_trials = node->Find("max_trials");
  if (max_trials != nullptr) {
    c->ReadIntInRange(*max_trials, "searcher.max_trials", 1, kMaxTrials,
                      &out->max_trials);
  } else if (needs_trials) {
    c->Error(*node, "searcher.max_trials",
             absl::StrCat("missing: the ", SearcherNameString(out->name),
                          " searcher needs max_trials, the number of trials "
                          "to create"));
  }
  if (const YamlNode* n = node->Find("max_concurrent_trials")) {
    c->ReadIntInRange(*n, "searcher.max_concurrent_trials", 0, kMaxTrials,
                      &out->max_concurrent_trials);
  }
  if (const YamlNode* n = node->Find("mode")) {
    std::string mode;
    if (c->ReadString(*n, "searcher.mode", &mode)) {
      if (mode == "standard") {
        out->mode = AshaMode::kStandard;
      } else if (mode == "aggressive") {
        out->mode = AshaMode::kAggressive;
      } else if (mode == "conservative") {
        out->mode = AshaMode::kConservative;
      } else {
        c->Error(*n, "searcher.mode",
                 absl::StrCat("expected standard, aggressive or conservative, "
                              "found ",
                              Describe(*n)));
      }
    }
  }
  if (const YamlNode* n = node->Find("divisor")) {
    double d;
    if (c->ReadNumber(*n, "searcher.divisor", &d)) {
      if (d <= 1) {
        c->Error(*n, "searcher.divisor",
                 absl::StrCat("must be greater than 1, found ", d));
      } else {
        out->divisor = d;
      }
    }
  }
  if (const YamlNode* n = node->Find("max_rungs")) {
    c->ReadIntInRange(*n, "searcher.max_rungs", 1, kMaxRungs, &out->max_rungs);
  }
  if (const YamlNode* n = node->Find("bracket_rungs")) {
    if (!n->is_null() && !n->is_sequence()) {
      c->Error(
          *n, "searcher.bracket_rungs",
          absl::StrCat("expected a list of rung counts, found ", Describe(*n)));
    } else {
      for (size_t i = 0; i < n->items.size(); ++i) {
        int64_t v;
        if (c->ReadIntInRange(
                n->items[i],
                config_internal::IndexPath("searcher.bracket_rungs", i), 1,
                kMaxRungs, &v)) {
          out->bracket_rungs.push_back(v);
        }
      }
      if (out->max_trials > 0 &&
          static_cast<int64_t>(n->items.size()) > out->max_trials) {
        c->Error(*n, "searcher.bracket_rungs",
                 absl::StrCat(n->items.size(), " brackets but max_trials is ",
                              out->max_trials,
                              ": each bracket needs at least one trial"));
      }
    }
  }
  if (const YamlNode* n = node->Find("stop_once")) {
    c->ReadBool(*n, "searcher.stop_once", &out->stop_once);
  }
  if (*name_known && out->name == SearcherName::kPbt) {
    ParsePbtSearcher(*node, c, out);
  }
  config_internal::ParseSearcherSampler(*node, c, out);
}

void ParseResources(const YamlNode& node, Checker* c, ResourcesConfig* out) {
  const std::string path = "resources";
  if (node.is_null() || !c->ExpectMap(node, path)) return;
  c->CheckKeys(node, path, {"slots_per_trial", "max_slots", "priority"},
               {"weight", "native_parallel", "shm_size", "agent_label",
                "resource_pool", "devices", "is_single_node", "slots"});
  if (const YamlNode* n = node.Find("slots_per_trial")) {
    int64_t v = 1;
    if (c->ReadIntInRange(*n, "resources.slots_per_trial", 0, 4096, &v)) {
      if (v == 0) {
        // Determined runs such a trial beside the slots; det's scheduler
        // places every trial on slots.
        c->Warn(*n, "resources.slots_per_trial",
                "det has no zero-slot trials; this one runs on 1 slot");
        v = 1;
      }
      out->slots_per_trial = v;
    }
  }
  if (const YamlNode* n = node.Find("max_slots"); n && !n->is_null()) {
    int64_t v;
    if (c->ReadIntAtLeast(*n, "resources.max_slots", 1, &v)) {
      out->max_slots = v;
      if (v < out->slots_per_trial) {
        c->Error(
            *n, "resources.max_slots",
            absl::StrCat("max_slots (", v, ") is less than slots_per_trial (",
                         out->slots_per_trial,
                         "): no trial could ever be scheduled"));
      }
    }
  }
  if (const YamlNode* n = node.Find("priority"); n && !n->is_null()) {
    c->ReadIntInRange(*n, "resources.priority", 1, 99, &out->priority);
  }
}

void ParseCheckpointStorage(const YamlNode& node, Checker* c,
                            CheckpointStorageConfig* out) {
  const std::string path = "checkpoint_storage";
  if (node.is_null() || !c->ExpectMap(node, path)) return;
  if (const YamlNode* t = node.Find("type")) {
    if (c->ReadString(*t, "checkpoint_storage.type", &out->type) &&
        out->type != "shared_fs" && out->type != "directory") {
      c->Error(*t, "checkpoint_storage.type",
               absl::StrCat("checkpoint storage ", Describe(*t),
                            " is not supported by det; use shared_fs or "
                            "directory"));
      return;
    }
  }
  if (out->type == "directory") {
    // Determined's directory storage: one path, container_path.
    c->CheckKeys(node, path,
                 {"type", "container_path", "save_trial_best",
                  "save_trial_latest", "save_experiment_best"},
                 {});
    const YamlNode* n = node.Find("container_path");
    if (n == nullptr || n->is_null()) {
      c->Error(node, "checkpoint_storage.container_path",
               "is required for checkpoint storage of type directory");
    } else if (c->ReadString(*n, "checkpoint_storage.container_path",
                             &out->container_path) &&
               !absl::StartsWith(out->container_path, "/")) {
      c->Error(*n, "checkpoint_storage.container_path",
               absl::StrCat("must be an absolute path, found ", Describe(*n)));
    }
  } else {
    c->CheckKeys(node, path,
                 {"type", "host_path", "storage_path", "save_trial_best",
                  "save_trial_latest", "save_experiment_best"},
                 {"propagation", "container_path", "checkpoint_path",
                  "tensorboard_path"});
  }
  if (const YamlNode* n = node.Find("host_path"); n && !n->is_null()) {
    if (c->ReadString(*n, "checkpoint_storage.host_path", &out->host_path) &&
        !absl::StartsWith(out->host_path, "/")) {
      c->Error(*n, "checkpoint_storage.host_path",
               absl::StrCat("must be an absolute path, found ", Describe(*n)));
    }
  }
  if (const YamlNode* n = node.Find("storage_path"); n && !n->is_null()) {
    if (c->ReadString(*n, "checkpoint_storage.storage_path",
                      &out->storage_path)) {
      for (absl::string_view part : absl::StrSplit(out->storage_path, '/')) {
        if (part == "..") {
          c->Error(*n, "checkpoint_storage.storage_path",
                   "must stay inside host_path: '..' is not allowed");
          break;
        }
      }
      if (absl::StartsWith(out->storage_path, "/") && !out->host_path.empty() &&
          !absl::StartsWith(
              out->storage_path,
              absl::StrCat(absl::StripSuffix(out->host_path, "/"), "/"))) {
        c->Error(*n, "checkpoint_storage.storage_path",
                 absl::StrCat("an absolute storage_path must be inside "
                              "host_path (",
                              out->host_path, ")"));
      }
    }
  }
  for (auto [key, dst] :
       {std::make_pair("save_trial_best", &out->save_trial_best),
        std::make_pair("save_trial_latest", &out->save_trial_latest),
        std::make_pair("save_experiment_best", &out->save_experiment_best)}) {
    if (const YamlNode* n = node.Find(key)) {
      c->ReadIntAtLeast(*n, JoinPath(path, key), 0, dst);
    }
  }
}

// "module:Class" or "package.module:Object": a Determined Python trial.
bool IsPythonTrialReference(const std::string& s) {
  std::vector<std::string> parts = absl::StrSplit(s, ':');
  if (parts.size() != 2) return false;
  for (const std::string& p : parts) {
    if (p.empty() || absl::ascii_isdigit(static_cast<unsigned char>(p[0]))) {
      return false;
    }
    for (char ch : p) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '_' &&
          ch != '.') {
        return false;
      }
    }
  }
  return true;
}

// One list of environment variables: ["K=V", ...] or {K: V, ...}.
void ParseEnvList(const YamlNode& node, const std::string& path, Checker* c,
                  std::vector<std::string>* out) {
  auto add = [&](const YamlNode& at, const std::string& p, std::string kv) {
    size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos) {
      c->Error(at, p, absl::StrCat("expected KEY=VALUE, found '", kv, "'"));
      return;
    }
    if (kv.compare(0, 4, "DET_") == 0) {
      c->Warn(at, p,
              absl::StrCat("'", kv.substr(0, eq),
                           "': the worker sets DET_* variables itself; "
                           "its value wins"));
    }
    out->push_back(std::move(kv));
  };
  if (node.is_null()) return;
  if (node.is_sequence()) {
    for (size_t i = 0; i < node.items.size(); ++i) {
      std::string p = config_internal::IndexPath(path, i), kv;
      if (c->ReadString(node.items[i], p, &kv)) add(node.items[i], p, kv);
    }
  } else if (node.is_map()) {
    for (const YamlNode::Entry& e : node.entries) {
      std::string p = JoinPath(path, e.key), v;
      if (!e.value.is_scalar()) {
        c->Error(e.value, p,
                 absl::StrCat("expected a value, found ", Describe(e.value)));
      } else if (c->ReadString(e.value, p, &v)) {
        add(e.value, p, absl::StrCat(e.key, "=", v));
      }
    }
  } else {
    c->Error(node, path,
             absl::StrCat("expected a list of KEY=VALUE strings, found ",
                          Describe(node)));
  }
}

// environment: only environment_variables has an effect (no containers
// in det); the other Determined fields are accepted with a warning each.
void ParseEnvironment(const YamlNode& node, Checker* c, ExperimentConfig* cfg) {
  if (node.is_null() || !c->ExpectMap(node, "environment")) return;
  c->CheckKeys(
      node, "environment", {"environment_variables"},
      {"image", "pod_spec", "force_pull_image", "registry_auth",
       "add_capabilities", "drop_capabilities", "proxy_ports", "ports"});
  const YamlNode* vars = node.Find("environment_variables");
  if (vars == nullptr) return;
  const std::string path = "environment.environment_variables";
  bool variants = vars->is_map() && !vars->entries.empty();
  for (const YamlNode::Entry& e : vars->entries) {
    if (e.key != "cpu" && e.key != "cuda" && e.key != "rocm") variants = false;
  }
  if (!variants) {
    ParseEnvList(*vars, path, c, &cfg->environment_variables);
    cfg->environment_variables_cuda = cfg->environment_variables;
    return;
  }
  for (const YamlNode::Entry& e : vars->entries) {
    std::string p = JoinPath(path, e.key);
    if (e.key == "cpu") {
      ParseEnvList(e.value, p, c, &cfg->environment_variables);
    } else if (e.key == "cuda") {
      ParseEnvList(e.value, p, c, &cfg->environment_variables_cuda);
    } else {
      std::vector<std::string> unused;
      ParseEnvList(e.value, p, c, &unused);
      c->Warn(KeyNode(e), p, "det has no ROCm slots; accepted, with no effect");
    }
  }
}

void ParseEntrypoint(const YamlNode& node, Checker* c, std::string* out) {
  const std::string path = "entrypoint";
  if (node.is_null()) return;
  if (node.is_sequence()) {
    std::vector<std::string> args;
    for (size_t i = 0; i < node.items.size(); ++i) {
      std::string arg;
      if (c->ReadString(node.items[i], config_internal::IndexPath(path, i),
                        &arg)) {
        args.push_back(arg);
      }
    }
    *out = absl::StrJoin(args, " ");
  } else if (!c->ReadString(node, path, out)) {
    return;
  }
  if (IsPythonTrialReference(*out)) {
    c->Warn(node, path,
            absl::StrCat("'", *out,
                         "' names a Python trial class; det runs its built-in "
                         "CIFAR-10 trainer (det-trial) instead"));
    out->clear();
  }
}

// A value of a hyperparameter's spec that a search can give a trial, and
// the field of the spec that yields it: "val", "minval", "maxval", "vals"
// (with `index`), or "" for the spec as a whole.
struct Reachable {
  std::string field;
  int64_t index = -1;
  Value value;
};

// Enough of `spec`'s reachable values to find any the built-in trainer
// refuses: a grid's own points; else a const, each categorical value, every
// int of a range; for numbers the two ends, the top as the largest double
// below maxval, since random values lie in [minval, maxval) (the trainer's
// ranges are intervals, so the ends decide). Past 1,024 ints or grid points,
// the ends only, to keep the check cheap (only kernel_size's parity is
// missed).
std::vector<Reachable> ReachableValues(const HParamSpec& spec, bool grid) {
  std::vector<Reachable> out;
  if (grid && (spec.type == HParamSpec::Type::kInt ||
               spec.type == HParamSpec::Type::kDouble ||
               spec.type == HParamSpec::Type::kLog)) {
    const int64_t n = GridAxisSize(spec);
    for (int64_t i = 0; i < n; i = (n > 1024 && i == 0) ? n - 1 : i + 1) {
      out.push_back({"", -1, GridAxisValue(spec, i)});
    }
    return out;
  }
  const double top = spec.maxval > spec.minval
                         ? std::nextafter(spec.maxval, spec.minval)
                         : spec.maxval;
  switch (spec.type) {
    case HParamSpec::Type::kConst:
      out.push_back({"val", -1, spec.val});
      break;
    case HParamSpec::Type::kInt: {
      const auto lo = static_cast<int64_t>(spec.minval);
      const auto hi = static_cast<int64_t>(spec.maxval);
      out.push_back({"minval", -1, Value(lo)});
      if (static_cast<double>(hi) - static_cast<double>(lo) <= 1024) {
        for (int64_t x = lo + 1; x < hi; ++x) out.push_back({"", -1, Value(x)});
      }
      out.push_back({"maxval", -1, Value(hi)});
      break;
    }
    case HParamSpec::Type::kDouble:
      out.push_back({"minval", -1, Value(spec.minval)});
      out.push_back({"maxval", -1, Value(top)});
      break;
    case HParamSpec::Type::kLog:
      out.push_back({"minval", -1, Value(std::pow(spec.base, spec.minval))});
      out.push_back({"maxval", -1, Value(std::pow(spec.base, top))});
      break;
    case HParamSpec::Type::kCategorical:
      for (size_t i = 0; i < spec.vals.size(); ++i) {
        out.push_back({"vals", static_cast<int64_t>(i), spec.vals[i]});
      }
      break;
    case HParamSpec::Type::kGroup:
      out.push_back({"", -1, Value(ValueMap{})});
      break;
  }
  return out;
}

// With no entrypoint the trials run det-trial, whose rules are known here:
// a name it does not know is warned about (every trial would fail, but a
// typo is the likely cause and the search itself is sound); a value it
// would refuse that a search can reach is an error, at the field giving it
// (the first such value of a range; every such categorical value).
void CheckBuiltinTrainerHParams(const YamlNode& hp, bool grid,
                                bool python_class, Checker* c,
                                const ExperimentConfig& cfg) {
  const trainer::Task task = trainer::TaskForData(cfg.data);
  // Said with each refusal when the config named a Determined Trial class.
  const std::string stand_in =
      python_class ? "; the entrypoint names a Determined Trial class, which "
                     "det cannot run (it has no Trial API), so the built-in "
                     "trainer stands in"
                   : "";
  const std::vector<std::string>& known = trainer::KnownHParamNames(task);
  for (const YamlNode::Entry& e : hp.entries) {
    if (absl::StartsWith(e.key, "_")) continue;
    YamlNode at;
    at.line = e.line;
    at.column = e.column;
    const std::string path = JoinPath("hyperparameters", e.key);
    if (std::find(known.begin(), known.end(), e.key) == known.end()) {
      std::string message = absl::StrCat(
          "the built-in trainer (no entrypoint) has no hyperparameter '", e.key,
          task == trainer::Task::kRecords ? "' for JSON records (data.format: "
                                            "jsonl)"
                                          : "'",
          ", so every trial would end as an invalid-hyperparameter "
          "exit");
      if (std::string closest = config_internal::ClosestName(e.key, known);
          !closest.empty()) {
        absl::StrAppend(&message, "; did you mean '", closest, "'?");
      } else {
        absl::StrAppend(&message, ".");
      }
      absl::StrAppend(&message, " It knows ", absl::StrJoin(known, ", "),
                      "; names starting with '_' are passed over, and an "
                      "entrypoint of your own may take any");
      c->Warn(at, path, std::move(message));
      continue;
    }
    auto spec = cfg.hyperparameters.find(e.key);
    if (spec == cfg.hyperparameters.end()) continue;  // already an error
    const bool is_const = spec->second.type == HParamSpec::Type::kConst;
    for (const Reachable& r : ReachableValues(spec->second, grid)) {
      trainer::HParams h;
      absl::Status s = trainer::ReadHParam(e.key, r.value, &h, task);
      if (s.ok() && e.key == "global_batch_size") {
        s = trainer::CheckBatchSplit(h.global_batch_size,
                                     cfg.resources.slots_per_trial);
      }
      if (s.ok()) continue;
      const YamlNode* node = &e.value;
      std::string field_path = path;
      if (!r.field.empty() && !is_const) {
        field_path = r.index < 0 ? JoinPath(path, r.field)
                                 : config_internal::IndexPath(
                                       JoinPath(path, r.field),
                                       static_cast<size_t>(r.index));
      }
      if (e.value.is_map() && !r.field.empty()) {
        if (const YamlNode* n = e.value.Find(r.field)) node = n;
        if (r.index >= 0 && node->is_sequence() &&
            static_cast<size_t>(r.index) < node->items.size()) {
          node = &node->items[r.index];
        }
      }
      c->Error(*node, field_path,
               absl::StrCat(
                   "the built-in trainer would refuse ",
                   is_const ? "this value" : "values this search gives trials",
                   " (", s.message(), ")", stand_in));
      if (r.index < 0) break;  // one refused value of a range says enough
    }
  }
}

// pbt starts each round's trials from the latest checkpoint of a trial of
// the round before: that checkpoint must outlive its trial.
void CheckPbtCheckpoints(const YamlNode& root, Checker* c,
                         const ExperimentConfig& cfg) {
  if (cfg.checkpoint_storage.save_trial_latest >= 1) return;
  const YamlNode* at = &root;
  if (const YamlNode* cs = root.Find("checkpoint_storage")) {
    at = cs->is_map() && cs->Find("save_trial_latest")
             ? cs->Find("save_trial_latest")
             : cs;
  }
  c->Error(*at, "checkpoint_storage.save_trial_latest",
           "must be at least 1 with the pbt searcher: each round's trials "
           "start from the latest checkpoint of a trial of the round before");
}

// Checks that need several fields; warnings for legal but odd settings.
void CrossCheck(const YamlNode& root, bool searcher_known, bool new_experiment,
                Checker* c, ExperimentConfig* cfg) {
  const SearcherConfig& s = cfg->searcher;
  const YamlNode* searcher = root.Find("searcher");
  const YamlNode* hp = root.Find("hyperparameters");
  if (searcher_known && s.name == SearcherName::kPbt) {
    CheckPbtCheckpoints(root, c, *cfg);
  }
  if (searcher_known && s.name == SearcherName::kGrid) {
    int64_t size = GridSize(cfg->hyperparameters);
    if (size > kMaxGridTrials) {
      c->Error(hp != nullptr ? *hp : root, "hyperparameters",
               absl::StrCat("the grid has ", size, " points; the limit is ",
                            kMaxGridTrials,
                            " trials (lower the counts or use random or "
                            "adaptive_asha)"));
    }
  }
  if (searcher_known) config_internal::CheckSearcherSampler(root, *cfg, c);
  if (searcher_known && s.name == SearcherName::kSingle) {
    for (const HParamLeaf& leaf : FlattenHParams(cfg->hyperparameters)) {
      if (leaf.spec->type != HParamSpec::Type::kConst) {
        c->Warn(hp != nullptr ? *hp : root,
                JoinPath("hyperparameters", leaf.path),
                "the single searcher samples one random value for a "
                "hyperparameter that is not const");
      }
    }
  }
  if (new_experiment && cfg->entrypoint.empty() &&
      trainer::TaskForData(cfg->data) == trainer::Task::kRecords) {
    // The built-in trainer would refuse this section in every trial.
    if (absl::StatusOr<records::RecordsOptions> o =
            records::ParseRecordsOptions(cfg->data);
        !o.ok()) {
      const YamlNode* data = root.Find("data");
      std::string message(o.status().message());
      // "data.key: what" -> the key's own position when the YAML has it.
      const YamlNode* at = data != nullptr ? data : &root;
      std::string path = "data";
      if (size_t colon = message.find(": ");
          colon != std::string::npos && message.rfind("data.", 0) == 0) {
        path = message.substr(0, colon);
        message = message.substr(colon + 2);
        if (data != nullptr && data->is_map()) {
          if (const YamlNode* n = data->Find(path.substr(5))) at = n;
        }
      }
      c->Error(*at, path,
               absl::StrCat("the built-in trainer would refuse this JSON "
                            "records section: ",
                            message));
    }
  }
  if (cfg->entrypoint.empty() && cfg->records_per_epoch == 0 &&
      trainer::TaskForData(cfg->data) == trainer::Task::kRecords &&
      (s.max_length.unit == Unit::kEpochs ||
       (cfg->min_validation_period &&
        cfg->min_validation_period->unit == Unit::kEpochs))) {
    // The master counts an epoch as CIFAR-10's 50,000 records unless told.
    c->Warn(root, "records_per_epoch",
            "lengths in epochs with JSON records need records_per_epoch (the "
            "number of training records); without it an epoch counts as "
            "50,000 records");
  }
  if (new_experiment && cfg->entrypoint.empty() && hp != nullptr &&
      hp->is_map()) {
    const YamlNode* ep = root.Find("entrypoint");
    const bool python_class =
        ep != nullptr && ep->is_scalar() && IsPythonTrialReference(ep->scalar);
    CheckBuiltinTrainerHParams(*hp,
                               searcher_known && s.name == SearcherName::kGrid,
                               python_class, c, *cfg);
  }
  if (searcher != nullptr && !s.metric.empty()) {
    const YamlNode& at =
        searcher->Find("metric") ? *searcher->Find("metric") : *searcher;
    bool maximise = absl::StrContains(s.metric, "accuracy");
    bool minimise = absl::StrContains(s.metric, "loss") ||
                    absl::StrContains(s.metric, "error");
    if (maximise && !minimise && s.smaller_is_better) {
      c->Warn(at, "searcher.smaller_is_better",
              absl::StrCat("'", s.metric,
                           "' is usually maximised, but smaller_is_better is "
                           "true (the default): set smaller_is_better: false "
                           "to keep the most accurate trials"));
    } else if (minimise && !maximise && !s.smaller_is_better) {
      c->Warn(at, "searcher.smaller_is_better",
              absl::StrCat("'", s.metric,
                           "' is usually minimised, but smaller_is_better is "
                           "false"));
    }
    const std::vector<std::string> reported =
        trainer::BuiltinValidationMetrics(cfg->data);
    if (cfg->entrypoint.empty() && std::find(reported.begin(), reported.end(),
                                             s.metric) == reported.end()) {
      c->Warn(at, "searcher.metric",
              absl::StrCat("the built-in trainer reports ",
                           absl::StrJoin(reported, ", "),
                           " for this data, not '", s.metric, "'"));
    }
  }
}

}  // namespace

const char* SearcherNameString(SearcherName name) {
  switch (name) {
    case SearcherName::kSingle:
      return "single";
    case SearcherName::kGrid:
      return "grid";
    case SearcherName::kRandom:
      return "random";
    case SearcherName::kAdaptiveAsha:
      return "adaptive_asha";
    case SearcherName::kPbt:
      return "pbt";
  }
  return "single";
}

const char* AshaModeString(AshaMode mode) {
  switch (mode) {
    case AshaMode::kStandard:
      return "standard";
    case AshaMode::kAggressive:
      return "aggressive";
    case AshaMode::kConservative:
      return "conservative";
  }
  return "standard";
}

std::string ConfigError::ToString() const {
  std::string out;
  if (line > 0) absl::StrAppend(&out, "line ", line, ", column ", column, ": ");
  if (!path.empty()) absl::StrAppend(&out, path, ": ");
  absl::StrAppend(&out, message);
  return out;
}

namespace {

absl::StatusOr<ExperimentConfig> Parse(const std::string& yaml,
                                       std::vector<ConfigError>* errors,
                                       const ParseLimits& limits,
                                       bool new_experiment) {
  Checker c;
  ExperimentConfig cfg;
  YamlNode root;
  bool loaded = config_internal::LoadYamlTree(yaml, limits, &root, &c.errors());
  if (loaded) {
    if (root.is_null()) {
      c.Error(root, "",
              "the configuration is empty; it needs at least a searcher");
    } else if (c.ExpectMap(root, "",
                           "a map of experiment configuration fields")) {
      c.CheckKeys(root, "", kTopLevel, kIgnoredTopLevel);
      std::string text;
      if (const YamlNode* n = root.Find("name"); n && !n->is_null()) {
        c.ReadString(*n, "name", &cfg.name);
      }
      if (const YamlNode* n = root.Find("description"); n && !n->is_null()) {
        c.ReadString(*n, "description", &cfg.description);
      }
      if (const YamlNode* n = root.Find("labels"); n && !n->is_null()) {
        if (!n->is_sequence()) {
          c.Error(
              *n, "labels",
              absl::StrCat("expected a list of strings, found ", Describe(*n)));
        } else {
          for (size_t i = 0; i < n->items.size(); ++i) {
            if (c.ReadString(n->items[i],
                             config_internal::IndexPath("labels", i), &text)) {
              cfg.labels.push_back(text);
            }
          }
        }
      }
      bool searcher_known = false;
      ParseSearcher(root.Find("searcher"), root, &c, &cfg.searcher,
                    &searcher_known);
      if (const YamlNode* n = root.Find("hyperparameters")) {
        config_internal::ParseHyperparameters(
            *n, "hyperparameters",
            searcher_known && cfg.searcher.name == SearcherName::kGrid, &c,
            &cfg.hyperparameters);
      }
      if (const YamlNode* n = root.Find("resources")) {
        ParseResources(*n, &c, &cfg.resources);
      }
      if (const YamlNode* n = root.Find("max_restarts")) {
        c.ReadIntInRange(*n, "max_restarts", 0, 1000000, &cfg.max_restarts);
      }
      for (auto [key, dst] :
           {std::make_pair("min_validation_period", &cfg.min_validation_period),
            std::make_pair("min_checkpoint_period",
                           &cfg.min_checkpoint_period)}) {
        const YamlNode* n = root.Find(key);
        if (n == nullptr || n->is_null()) continue;
        Length len;
        // 0 means "no periodic validation/checkpoint", like leaving it out.
        if (ParseLength(*n, key, 0, &c, &len) && len.value > 0) *dst = len;
      }
      if (const YamlNode* n = root.Find("records_per_epoch")) {
        c.ReadIntInRange(*n, "records_per_epoch", 0, kMaxLength,
                         &cfg.records_per_epoch);
      }
      if (const YamlNode* n = root.Find("checkpoint_storage")) {
        ParseCheckpointStorage(*n, &c, &cfg.checkpoint_storage);
      }
      if (const YamlNode* n = root.Find("reproducibility");
          n && !n->is_null() && c.ExpectMap(*n, "reproducibility")) {
        c.CheckKeys(*n, "reproducibility", {"experiment_seed"});
        if (const YamlNode* seed = n->Find("experiment_seed");
            seed && !seed->is_null()) {
          int64_t v;
          if (c.ReadIntInRange(*seed, "reproducibility.experiment_seed", 0,
                               kMaxSeed, &v)) {
            cfg.experiment_seed = static_cast<uint64_t>(v);
            cfg.has_experiment_seed = true;
          }
        }
      }
      if (const YamlNode* n = root.Find("data"); n && !n->is_null()) {
        if (c.ExpectMap(*n, "data")) {
          cfg.data = config_internal::ToValue(*n).as_map();
        }
      }
      if (const YamlNode* n = root.Find("entrypoint")) {
        ParseEntrypoint(*n, &c, &cfg.entrypoint);
      }
      if (const YamlNode* n = root.Find("environment")) {
        ParseEnvironment(*n, &c, &cfg);
      }
      ResolveMissingLength(root, searcher_known, &c, &cfg);
      CrossCheck(root, searcher_known, new_experiment, &c, &cfg);
    }
  }
  auto by_position = [](const ConfigError& a, const ConfigError& b) {
    return std::make_pair(a.line, a.column) < std::make_pair(b.line, b.column);
  };
  std::stable_sort(c.errors().begin(), c.errors().end(), by_position);
  std::stable_sort(c.warnings().begin(), c.warnings().end(), by_position);
  if (errors != nullptr) *errors = c.errors();
  if (!c.errors().empty()) {
    std::vector<std::string> lines;
    for (const ConfigError& e : c.errors()) lines.push_back(e.ToString());
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  cfg.warnings = std::move(c.warnings());
  return cfg;
}

}  // namespace

absl::StatusOr<ExperimentConfig> ParseExperimentConfig(
    const std::string& yaml, std::vector<ConfigError>* errors,
    const ParseLimits& limits) {
  return Parse(yaml, errors, limits, /*new_experiment=*/true);
}

absl::StatusOr<ExperimentConfig> ParseStoredExperimentConfig(
    const std::string& yaml) {
  return Parse(yaml, nullptr, ParseLimits{}, /*new_experiment=*/false);
}

absl::StatusOr<std::string> ReadExperimentConfigFile(
    const std::string& path, const ParseLimits& limits) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot read config file '", path,
                                            "': ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file '", path, "' is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file '", path, "' is ", st.st_size,
                     " bytes; the limit is ", limits.max_bytes, " bytes"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read config file '", path,
                                            "': ", std::strerror(errno)));
  }
  std::string text;
  text.resize(limits.max_bytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > limits.max_bytes) {  // grew after the stat
    return absl::InvalidArgumentError(
        absl::StrCat("config file '", path, "' is larger than the limit of ",
                     limits.max_bytes, " bytes"));
  }
  return text;
}

absl::StatusOr<std::string> ApplyConfigOverrides(
    const std::string& yaml, const std::vector<std::string>& overrides,
    const ParseLimits& limits) {
  // Hold the input to the same limits as parsing (size, text, alias bombs)
  // before yaml-cpp's emitter walks it.
  std::vector<ConfigError> errors;
  YamlNode tree;
  if (!config_internal::LoadYamlTree(yaml, limits, &tree, &errors) ||
      !errors.empty()) {
    std::vector<std::string> lines;
    for (const ConfigError& e : errors) lines.push_back(e.ToString());
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  if (!tree.is_null() && !tree.is_map()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot apply overrides: the configuration is ",
                     Describe(tree), ", not a map"));
  }
  try {
    YAML::Node root;
    if (!config_internal::LoadSingleDocument(yaml, &root, &errors)) {
      return absl::InvalidArgumentError(errors.front().ToString());
    }
    if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
    for (const std::string& o : overrides) {
      size_t eq = o.find('=');
      std::string key(absl::StripAsciiWhitespace(o.substr(0, eq)));
      if (eq == std::string::npos || key.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "override '", o, "' is not of the form key.path=value"));
      }
      std::vector<std::string> names = absl::StrSplit(key, '.');
      for (const std::string& n : names) {
        if (n.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("override '", o, "': empty name in '", key, "'"));
        }
      }
      YAML::Node value;
      std::vector<ConfigError> value_errors;
      if (!config_internal::LoadSingleDocument(o.substr(eq + 1), &value,
                                               &value_errors)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "override '", o,
            "': the value is not valid YAML: ", value_errors.front().message));
      }
      // yaml-cpp's Node::operator= assigns through to the referenced node;
      // reset() rebinds, which is what walking down needs.
      YAML::Node cur;
      cur.reset(root);
      std::string walked;
      for (size_t i = 0; i + 1 < names.size(); ++i) {
        walked = JoinPath(walked, names[i]);
        YAML::Node next = cur[names[i]];
        if (!next.IsDefined() || next.IsNull()) {
          cur[names[i]] = YAML::Node(YAML::NodeType::Map);
          next.reset(cur[names[i]]);
        } else if (!next.IsMap()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "override '", o, "': '", walked,
              "' is not a map, so it has no field '", names[i + 1], "'"));
        }
        cur.reset(next);
      }
      cur[names.back()] = value;
    }
    YAML::Emitter out;
    out << root;
    if (!out.good()) {
      return absl::InternalError(
          absl::StrCat("cannot write the configuration: ", out.GetLastError()));
    }
    return absl::StrCat(out.c_str(), "\n");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot apply overrides: ", e.what()));
  }
}

int64_t GlobalBatchSize(const ValueMap& hparams) {
  constexpr int64_t kDefault = 64;
  auto it = hparams.find("global_batch_size");
  if (it == hparams.end()) return kDefault;
  const Value& v = it->second;
  if (v.is_int()) return v.as_int() > 0 ? v.as_int() : kDefault;
  if (v.is_double()) {
    double d = v.as_number();
    if (std::isfinite(d) && d >= 1 && d == std::floor(d) && d < 9e15) {
      return static_cast<int64_t>(d);
    }
  }
  return kDefault;
}

}  // namespace det
