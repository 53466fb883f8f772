#include "common/config_sampler.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config_hparams.h"

namespace det {

const char* SamplerNameString(SamplerName name) {
  return name == SamplerName::kTpe ? "tpe" : "random";
}

}  // namespace det

namespace det::config_internal {
namespace {

// Upper bounds that keep one sample cheap (candidates x results per event).
constexpr int64_t kMaxStartupTrials = 1000000;
constexpr int64_t kMaxCandidates = 10000;
constexpr int64_t kMaxGammaMax = 1000000;

void ParseTpe(const YamlNode& node, Checker* c, TpeConfig* out) {
  const std::string path = "searcher.tpe";
  if (!c->ExpectMap(node, path)) return;
  c->CheckKeys(node, path,
               {"n_startup_trials", "n_ei_candidates", "gamma", "gamma_max",
                "prior_weight", "consider_magic_clip", "consider_endpoints",
                "multivariate", "constant_liar", "avoid_duplicates"});
  if (const YamlNode* n = node.Find("n_startup_trials")) {
    c->ReadIntInRange(*n, JoinPath(path, "n_startup_trials"), 0,
                      kMaxStartupTrials, &out->n_startup_trials);
  }
  if (const YamlNode* n = node.Find("n_ei_candidates")) {
    c->ReadIntInRange(*n, JoinPath(path, "n_ei_candidates"), 1, kMaxCandidates,
                      &out->n_ei_candidates);
  }
  if (const YamlNode* n = node.Find("gamma")) {
    double g;
    if (c->ReadNumber(*n, JoinPath(path, "gamma"), &g)) {
      if (g <= 0 || g > 1) {
        c->Error(*n, JoinPath(path, "gamma"),
                 absl::StrCat("must be in (0, 1], the share of results in the "
                              "good group; found ",
                              g));
      } else {
        out->gamma = g;
      }
    }
  }
  if (const YamlNode* n = node.Find("gamma_max")) {
    c->ReadIntInRange(*n, JoinPath(path, "gamma_max"), 1, kMaxGammaMax,
                      &out->gamma_max);
  }
  if (const YamlNode* n = node.Find("prior_weight")) {
    double w;
    if (c->ReadNumber(*n, JoinPath(path, "prior_weight"), &w)) {
      if (w <= 0) {
        c->Error(*n, JoinPath(path, "prior_weight"),
                 absl::StrCat("must be positive, found ", w));
      } else {
        out->prior_weight = w;
      }
    }
  }
  for (auto [name, field] : std::vector<std::pair<const char*, bool*>>{
           {"consider_magic_clip", &out->consider_magic_clip},
           {"consider_endpoints", &out->consider_endpoints},
           {"multivariate", &out->multivariate},
           {"constant_liar", &out->constant_liar},
           {"avoid_duplicates", &out->avoid_duplicates}}) {
    if (const YamlNode* n = node.Find(name)) {
      c->ReadBool(*n, JoinPath(path, name), field);
    }
  }
}

}  // namespace

void ParseSearcherSampler(const YamlNode& searcher, Checker* c,
                          SearcherConfig* out) {
  // Absent is random; a wrong value is reported once, here.
  bool known = true;
  if (const YamlNode* n = searcher.Find("sampler")) {
    std::string name;
    known = false;
    if (c->ReadString(*n, "searcher.sampler", &name)) {
      if (name == "random") {
        out->sampler = SamplerName::kRandom;
        known = true;
      } else if (name == "tpe") {
        out->sampler = SamplerName::kTpe;
        known = true;
      } else {
        std::string message =
            absl::StrCat("expected random or tpe, found '", name, "'");
        std::string closest = ClosestName(name, {"random", "tpe"});
        if (!closest.empty()) {
          absl::StrAppend(&message, "; did you mean '", closest, "'?");
        }
        c->Error(*n, "searcher.sampler", std::move(message));
      }
    }
  }
  if (const YamlNode* n = searcher.Find("tpe")) {
    ParseTpe(*n, c, &out->tpe);
    if (known && out->sampler != SamplerName::kTpe) {
      c->Error(*n, "searcher.tpe",
               "applies only with 'sampler: tpe' (the sampler is random)");
    }
  }
}

void CheckSearcherSampler(const YamlNode& root, const ExperimentConfig& cfg,
                          Checker* c) {
  const SearcherConfig& s = cfg.searcher;
  if (s.sampler != SamplerName::kTpe) return;
  const YamlNode* searcher = root.Find("searcher");
  const YamlNode* sampler = searcher != nullptr && searcher->is_map()
                                ? searcher->Find("sampler")
                                : nullptr;
  const YamlNode& at = sampler != nullptr ? *sampler : root;
  bool sampled = false;
  for (const HParamLeaf& leaf : FlattenHParams(cfg.hyperparameters)) {
    sampled = sampled || leaf.spec->type != HParamSpec::Type::kConst;
  }
  if (!sampled) {
    c->Warn(at, "searcher.sampler",
            "tpe has nothing to model: every hyperparameter is const");
  }
  if (s.max_trials > 0 && s.tpe.n_startup_trials >= s.max_trials) {
    c->Warn(at, "searcher.tpe.n_startup_trials",
            absl::StrCat(s.tpe.n_startup_trials, " is not below max_trials (",
                         s.max_trials, "): every trial is a random draw"));
  }
}

}  // namespace det::config_internal
