#include "master/searcher/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <queue>
#include <set>

#include "master/searcher/hparam_sampler.h"

namespace det::searcher::tpe {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEps = 1e-12;  // the smallest bandwidth without magic clip
const double kSqrt2 = std::sqrt(2.0);
const double kLogSqrt2Pi = 0.5 * std::log(2 * M_PI);
// The stream of the joint (multivariate) suggestion.
constexpr uint64_t kJointStream = 0x6a09e667f3bcc909ULL;
// The stream of the random fallback when every candidate is tried.
constexpr uint64_t kFallbackStream = 0xbb67ae8584caa73bULL;
// Rounds of n_ei_candidates draws before the random fallback.
constexpr int kCandidateRounds = 10;
// Rejection-sampling attempts, and the largest space enumerated after them.
constexpr int kRandomAttempts = 64;
constexpr double kMaxEnumerated = 1 << 20;

// The standard normal's CDF, accurate in both tails.
double Ndtr(double a) {
  double x = a / kSqrt2;
  if (x < -1 / kSqrt2) return 0.5 * std::erfc(-x);
  if (x < 1 / kSqrt2) return 0.5 + 0.5 * std::erf(x);
  return 1.0 - 0.5 * std::erfc(x);
}

double LogAddExp(double x, double y) {
  double m = std::max(x, y);
  if (m == -kInf) return -kInf;
  return m + std::log1p(std::exp(-std::fabs(x - y)));
}

// log(exp(p) - exp(q)), p >= q.
double LogDiff(double p, double q) {
  if (q == -kInf) return p;
  return p + std::log1p(-std::exp(q - p));
}

// x with LogNdtr(x) = y (y <= 0): Newton's method from the tail
// approximations.
double NdtriExp(double y) {
  if (y >= 0) return kInf;
  if (y == -kInf) return -kInf;
  // Close to 0, solve for -x in the other tail, where it is accurate.
  const bool flipped = y > -1e-2;
  const double z = flipped ? std::log(-std::expm1(y)) : y;
  double x = z < -5 ? -std::sqrt(-2.0 * (z + kLogSqrt2Pi))
                    : -std::sqrt(3.0) / M_PI * std::log(std::expm1(-z));
  for (int i = 0; i < 100 && std::isfinite(x); ++i) {
    double log_ndtr = internal::LogNdtr(x);
    double log_pdf = -0.5 * x * x - kLogSqrt2Pi;
    double dx = (log_ndtr - z) * std::exp(log_ndtr - log_pdf);
    x -= dx;
    if (std::fabs(dx) < 1e-8 * std::fabs(x)) break;
  }
  return flipped ? -x : x;
}

// Weights normalised to sum 1: `raw` for the results, then the prior's.
std::vector<double> MixtureWeights(size_t n, double prior_weight) {
  std::vector<double> w = DefaultWeights(static_cast<int64_t>(n));
  w.push_back(n == 0 ? 1.0 : prior_weight);
  double sum = std::accumulate(w.begin(), w.end(), 0.0);
  for (double& v : w) v /= sum;
  return w;
}

// The kernels of one dimension in one estimator: one per result, then the
// prior (the last).
struct Kernels {
  Dimension::Kind kind = Dimension::Kind::kContinuous;
  double low = 0, high = 0;  // the kernels' support (integers: +-0.5)
  double int_low = 0, int_high = 0;
  std::vector<double> mu, sigma;  // numerical
  // Numerical: log of each kernel's mass on [low, high], plus log(sigma)
  // for continuous ones (the density's normaliser), computed once.
  std::vector<double> log_norm;
  std::vector<std::vector<double>> probs;  // categorical, one row each
};

Kernels BuildKernels(const Dimension& dim, size_t d,
                     const std::vector<const Observation*>& points,
                     const TpeConfig& config) {
  Kernels k;
  k.kind = dim.kind;
  const size_t n = points.size();
  if (dim.kind == Dimension::Kind::kCategorical) {
    const size_t c = static_cast<size_t>(dim.choices);
    // Each result's row: 1 on its choice, prior_weight / (n + 1) on every
    // choice; the prior's row uniform.
    const double fill = config.prior_weight / static_cast<double>(n + 1);
    for (const Observation* p : points) {
      std::vector<double> row(c, fill);
      size_t i = std::min(static_cast<size_t>(p->x[d]), c - 1);
      row[i] += 1;
      double sum = std::accumulate(row.begin(), row.end(), 0.0);
      for (double& v : row) v /= sum;
      k.probs.push_back(std::move(row));
    }
    k.probs.emplace_back(c, 1.0 / static_cast<double>(c));
    return k;
  }
  k.low = dim.low;
  k.high = dim.high;
  if (dim.kind == Dimension::Kind::kInteger) {
    k.int_low = dim.low;
    k.int_high = dim.high;
    k.low -= 0.5;
    k.high += 0.5;
  }
  for (const Observation* p : points) k.mu.push_back(p->x[d]);
  // Bandwidths: the larger gap to a sorted neighbour (the range's ends
  // count as neighbours), the outermost ones their inner gap unless
  // consider_endpoints; clipped to [range / min(100, n + 2), range].
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return k.mu[a] < k.mu[b]; });
  std::vector<double> sorted = {k.low};
  for (size_t i : order) sorted.push_back(k.mu[i]);
  sorted.push_back(k.high);
  std::vector<double> sorted_sigma(n);
  for (size_t i = 0; i < n; ++i) {
    sorted_sigma[i] =
        std::max(sorted[i + 1] - sorted[i], sorted[i + 2] - sorted[i + 1]);
  }
  if (!config.consider_endpoints && n >= 2) {
    sorted_sigma[0] = sorted[2] - sorted[1];
    sorted_sigma[n - 1] = sorted[n] - sorted[n - 1];
  }
  const double range = k.high - k.low;
  const double min_sigma =
      config.consider_magic_clip
          ? range / std::min(100.0, 1.0 + static_cast<double>(n + 1))
          : kEps;
  k.sigma.resize(n);
  for (size_t i = 0; i < n; ++i) {
    k.sigma[order[i]] = std::clamp(sorted_sigma[i], min_sigma, range);
  }
  k.mu.push_back(0.5 * (k.low + k.high));
  k.sigma.push_back(range);
  for (size_t i = 0; i < k.mu.size(); ++i) {
    double mass = internal::LogGaussMass((k.low - k.mu[i]) / k.sigma[i],
                                         (k.high - k.mu[i]) / k.sigma[i]);
    k.log_norm.push_back(dim.kind == Dimension::Kind::kInteger
                             ? mass
                             : mass + std::log(k.sigma[i]));
  }
  return k;
}

// A Parzen estimator over some dimensions (one, or all: multivariate).
struct Estimator {
  std::vector<double> weights;
  std::vector<size_t> dims;  // indices into the full dimension list
  std::vector<Kernels> kernels;
};

Estimator BuildEstimator(const std::vector<Dimension>& all,
                         const std::vector<size_t>& dims,
                         const std::vector<const Observation*>& points,
                         const TpeConfig& config) {
  Estimator e;
  e.weights = MixtureWeights(points.size(), config.prior_weight);
  e.dims = dims;
  for (size_t d : dims) {
    e.kernels.push_back(BuildKernels(all[d], d, points, config));
  }
  return e;
}

// One draw from the mixture: a kernel by weight, then each dimension from
// that kernel. Values go to point[d] for the estimator's dimensions.
void SampleOne(const Estimator& e, SplitMix64& rng,
               std::vector<double>* point) {
  double u = rng.Uniform();
  size_t kernel = e.weights.size() - 1;
  double cum = 0;
  for (size_t i = 0; i < e.weights.size(); ++i) {
    cum += e.weights[i];
    if (u < cum) {
      kernel = i;
      break;
    }
  }
  for (size_t j = 0; j < e.dims.size(); ++j) {
    const Kernels& k = e.kernels[j];
    double q = rng.Uniform();
    double x;
    if (k.kind == Dimension::Kind::kCategorical) {
      const std::vector<double>& row = k.probs[kernel];
      size_t i = 0;
      double c = row[0];
      while (i + 1 < row.size() && c <= q) c += row[++i];
      x = static_cast<double>(i);
    } else {
      double mu = k.mu[kernel], sigma = k.sigma[kernel];
      double a = (k.low - mu) / sigma, b = (k.high - mu) / sigma;
      x = std::clamp(internal::TruncNormPpf(q, a, b) * sigma + mu, k.low,
                     k.high);
      if (k.kind == Dimension::Kind::kInteger) {
        x = std::clamp(k.int_low + std::round(x - k.int_low), k.int_low,
                       k.int_high);
      }
    }
    (*point)[e.dims[j]] = x;
  }
}

double LogPdf(const Estimator& e, const std::vector<double>& point) {
  // log sum_k w_k p_k(x), by the largest term (logsumexp).
  std::vector<double> terms(e.weights.size());
  for (size_t kernel = 0; kernel < e.weights.size(); ++kernel) {
    double lp = std::log(e.weights[kernel]);
    for (size_t j = 0; j < e.dims.size() && lp > -kInf; ++j) {
      const Kernels& k = e.kernels[j];
      const double x = point[e.dims[j]];
      if (k.kind == Dimension::Kind::kCategorical) {
        lp += std::log(k.probs[kernel][static_cast<size_t>(x)]);
        continue;
      }
      double mu = k.mu[kernel], sigma = k.sigma[kernel];
      if (k.kind == Dimension::Kind::kInteger) {
        lp += internal::LogGaussMass((x - 0.5 - mu) / sigma,
                                     (x + 0.5 - mu) / sigma) -
              k.log_norm[kernel];
      } else {
        double z = (x - mu) / sigma;
        lp += -0.5 * z * z - kLogSqrt2Pi - k.log_norm[kernel];
      }
    }
    terms[kernel] = lp;
  }
  const double top = *std::max_element(terms.begin(), terms.end());
  if (top == -kInf) return -kInf;
  double sum = 0;
  for (double t : terms) sum += std::exp(t - top);
  return top + std::log(sum);
}

bool Degenerate(const Dimension& d) {
  return d.kind == Dimension::Kind::kCategorical ? d.choices <= 1
                                                 : !(d.low < d.high);
}

}  // namespace

namespace internal {

double LogNdtr(double a) {
  if (a > 6) return -Ndtr(-a);  // log(1 - e) ~ -e
  if (a > -20) return std::log(Ndtr(a));
  // The asymptotic series of the far left tail.
  double log_lhs = -0.5 * a * a - std::log(-a) - kLogSqrt2Pi;
  double last = 0, rhs = 1, numerator = 1, denom_factor = 1;
  const double denom_cons = 1 / (a * a);
  double sign = 1;
  for (int i = 1;
       std::fabs(last - rhs) > std::numeric_limits<double>::epsilon(); ++i) {
    last = rhs;
    sign = -sign;
    denom_factor *= denom_cons;
    numerator *= 2 * i - 1;
    rhs += sign * numerator * denom_factor;
  }
  return log_lhs + std::log(rhs);
}

double LogGaussMass(double a, double b) {
  if (!(a < b)) return -kInf;
  // The left tail is the accurate one: mirror a right-tail interval there.
  if (b <= 0) return LogDiff(LogNdtr(b), LogNdtr(a));
  if (a > 0) return LogDiff(LogNdtr(-a), LogNdtr(-b));
  return std::log1p(-Ndtr(a) - Ndtr(-b));
}

double TruncNormPpf(double q, double a, double b) {
  if (q <= 0) return a;
  if (q >= 1) return b;
  const double log_mass = LogGaussMass(a, b);
  double x;
  if (a < 0) {
    x = NdtriExp(LogAddExp(LogNdtr(a), std::log(q) + log_mass));
  } else {
    x = -NdtriExp(LogAddExp(LogNdtr(-b), std::log1p(-q) + log_mass));
  }
  if (std::isnan(x)) x = 0;  // defensive: Newton cannot go wrong in range
  return std::clamp(x, a, b);
}

double ParzenLogPdf(const Dimension& dim, const std::vector<double>& values,
                    const TpeConfig& config, double x) {
  std::vector<Observation> obs;
  for (double v : values) obs.push_back(Observation{{v}, 0, 0, 0});
  std::vector<const Observation*> points;
  for (const Observation& o : obs) points.push_back(&o);
  Estimator e = BuildEstimator({dim}, {0}, points, config);
  return LogPdf(e, {x});
}

}  // namespace internal

int64_t NumBelow(const TpeConfig& config, int64_t n) {
  double below = std::ceil(config.gamma * static_cast<double>(n));
  return std::min<int64_t>(static_cast<int64_t>(below), config.gamma_max);
}

std::vector<double> DefaultWeights(int64_t n) {
  if (n <= 0) return {};
  if (n < 25) return std::vector<double>(static_cast<size_t>(n), 1.0);
  std::vector<double> w;
  const int64_t ramp = n - 25;
  const double start = 1.0 / static_cast<double>(n);
  // numpy's linspace(1/n, 1, n - 25): both ends included.
  for (int64_t i = 0; i < ramp; ++i) {
    w.push_back(ramp == 1 ? start
                          : start + static_cast<double>(i) * (1.0 - start) /
                                        static_cast<double>(ramp - 1));
  }
  w.insert(w.end(), 25, 1.0);
  return w;
}

std::vector<double> Suggest(const std::vector<Dimension>& dims,
                            const std::vector<Observation>& observations,
                            const std::vector<Observation>& running,
                            const TpeConfig& config, uint64_t seed) {
  return Suggest(dims, observations, running, {}, config, seed);
}

bool RandomNew(const std::vector<Dimension>& dims,
               const std::vector<std::vector<double>>& tried, uint64_t seed,
               std::vector<double>* point) {
  const std::set<std::vector<double>> tried_set(tried.begin(), tried.end());
  SplitMix64 rng(seed);
  auto values = [](const Dimension& d) -> double {
    if (Degenerate(d)) return 1;
    if (d.kind == Dimension::Kind::kCategorical) {
      return static_cast<double>(d.choices);
    }
    if (d.kind == Dimension::Kind::kInteger) return d.high - d.low + 1;
    return kInf;
  };
  auto nth = [](const Dimension& d, double k) {
    if (Degenerate(d))
      return d.kind == Dimension::Kind::kCategorical ? 0 : d.low;
    return d.kind == Dimension::Kind::kCategorical ? k : d.low + k;
  };
  for (int attempt = 0; attempt < kRandomAttempts; ++attempt) {
    std::vector<double> p;
    for (const Dimension& d : dims) {
      const double n = values(d);
      const double u = rng.Uniform();
      if (std::isinf(n)) {
        p.push_back(d.low + u * (d.high - d.low));
      } else {
        p.push_back(nth(d, std::min(std::floor(u * n), n - 1)));
      }
    }
    if (tried_set.count(p) == 0) {
      *point = std::move(p);
      return true;
    }
  }
  // Nearly exhausted (or unlucky): enumerate a small discrete space.
  double size = 1;
  for (const Dimension& d : dims) size *= values(d);
  if (!(size <= kMaxEnumerated)) return false;
  std::vector<std::vector<double>> untried;
  std::vector<double> counter(dims.size(), 0);
  for (int64_t i = 0; i < static_cast<int64_t>(size); ++i) {
    std::vector<double> p;
    for (size_t d = 0; d < dims.size(); ++d)
      p.push_back(nth(dims[d], counter[d]));
    if (tried_set.count(p) == 0) untried.push_back(std::move(p));
    for (size_t d = 0; d < dims.size(); ++d) {
      if (++counter[d] < values(dims[d])) break;
      counter[d] = 0;
    }
  }
  if (untried.empty()) return false;
  size_t pick = std::min(
      static_cast<size_t>(rng.Uniform() * static_cast<double>(untried.size())),
      untried.size() - 1);
  *point = std::move(untried[pick]);
  return true;
}

std::vector<double> Suggest(const std::vector<Dimension>& dims,
                            const std::vector<Observation>& observations,
                            const std::vector<Observation>& running,
                            const std::vector<std::vector<double>>& tried,
                            const TpeConfig& config, uint64_t seed) {
  std::vector<double> point(dims.size(), 0);
  std::vector<size_t> modelled;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (Degenerate(dims[d])) {
      point[d] =
          dims[d].kind == Dimension::Kind::kCategorical ? 0 : dims[d].low;
    } else {
      modelled.push_back(d);
    }
  }
  if (modelled.empty()) return point;

  // The good group: the first NumBelow(n) by stage (further first), then
  // value (ties: older first); both groups then in creation order.
  std::vector<const Observation*> ranked;
  for (const Observation& o : observations) ranked.push_back(&o);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const Observation* a, const Observation* b) {
                     if (a->stage != b->stage) return a->stage > b->stage;
                     if (a->value != b->value) return a->value < b->value;
                     return a->order < b->order;
                   });
  size_t n_below = static_cast<size_t>(
      std::clamp<int64_t>(NumBelow(config, static_cast<int64_t>(ranked.size())),
                          0, static_cast<int64_t>(ranked.size())));
  std::vector<const Observation*> below(ranked.begin(),
                                        ranked.begin() + n_below);
  std::vector<const Observation*> above(ranked.begin() + n_below, ranked.end());
  if (config.constant_liar) {
    for (const Observation& o : running) above.push_back(&o);
  }
  auto by_order = [](const Observation* a, const Observation* b) {
    return a->order < b->order;
  };
  std::stable_sort(below.begin(), below.end(), by_order);
  std::stable_sort(above.begin(), above.end(), by_order);

  // One group of dimensions scored together: each dimension alone
  // (univariate) or all of them (multivariate). Its distinct candidates
  // (values on the group's dimensions) best first; ties keep the draw order,
  // so the first is numpy's argmax of the classic suggestion.
  struct Group {
    std::vector<size_t> which;
    Estimator l, g;
    SplitMix64 rng{0};
    std::vector<std::pair<std::vector<double>, double>> ranked;
    std::set<std::vector<double>> seen;
  };
  std::vector<Group> groups;
  auto add_group = [&](std::vector<size_t> which, uint64_t stream) {
    Group gr;
    gr.l = BuildEstimator(dims, which, below, config);
    gr.g = BuildEstimator(dims, which, above, config);
    gr.which = std::move(which);
    gr.rng = SplitMix64(MixSeed(seed, stream));
    groups.push_back(std::move(gr));
  };
  if (config.multivariate) {
    add_group(modelled, kJointStream);
  } else {
    for (size_t d : modelled) add_group({d}, dims[d].stream);
  }
  auto draw = [&](Group& gr) {
    std::vector<double> candidate = point;
    std::vector<std::pair<std::vector<double>, double>> fresh;
    for (int64_t i = 0; i < config.n_ei_candidates; ++i) {
      SampleOne(gr.l, gr.rng, &candidate);
      std::vector<double> key;
      for (size_t d : gr.which) key.push_back(candidate[d]);
      if (!gr.seen.insert(key).second) continue;
      double score = LogPdf(gr.l, candidate) - LogPdf(gr.g, candidate);
      // NaN never wins (as the classic first-maximum rule).
      fresh.emplace_back(std::move(key), std::isnan(score) ? -kInf : score);
    }
    gr.ranked.insert(gr.ranked.end(), fresh.begin(), fresh.end());
    std::stable_sort(
        gr.ranked.begin(), gr.ranked.end(),
        [](const auto& a, const auto& b) { return a.second > b.second; });
  };
  for (Group& gr : groups) draw(gr);
  auto assemble = [&](const std::vector<size_t>& idx) {
    std::vector<double> p = point;
    for (size_t i = 0; i < groups.size(); ++i) {
      const std::vector<double>& key = groups[i].ranked[idx[i]].first;
      for (size_t j = 0; j < key.size(); ++j) p[groups[i].which[j]] = key[j];
    }
    return p;
  };
  const std::vector<size_t> top(groups.size(), 0);
  if (tried.empty()) return assemble(top);

  const std::set<std::vector<double>> tried_set(tried.begin(), tried.end());
  // Best first over the combinations of the groups' candidates, by the sum
  // of their scores (ties: the smaller indices first). It stops at the
  // first untried point or once every combination is popped; each popped
  // tried combination is one of `tried`, so at most |tried| + 1 pops.
  auto best_new = [&](std::vector<double>* out) {
    using Item = std::pair<double, std::vector<size_t>>;
    auto worse = [](const Item& a, const Item& b) {
      if (a.first != b.first) return a.first < b.first;
      return a.second > b.second;
    };
    std::priority_queue<Item, std::vector<Item>, decltype(worse)> queue(worse);
    std::set<std::vector<size_t>> queued;
    auto push = [&](const std::vector<size_t>& idx) {
      if (!queued.insert(idx).second) return;
      double sum = 0;
      for (size_t i = 0; i < groups.size(); ++i) {
        sum += groups[i].ranked[idx[i]].second;
      }
      queue.emplace(std::isnan(sum) ? -kInf : sum, idx);
    };
    push(top);
    while (!queue.empty()) {
      std::vector<size_t> idx = queue.top().second;
      queue.pop();
      std::vector<double> p = assemble(idx);
      if (tried_set.count(p) == 0) {
        *out = std::move(p);
        return true;
      }
      for (size_t i = 0; i < groups.size(); ++i) {
        if (idx[i] + 1 < groups[i].ranked.size()) {
          std::vector<size_t> next = idx;
          ++next[i];
          push(next);
        }
      }
    }
    return false;
  };
  std::vector<double> chosen;
  for (int round = 0; round < kCandidateRounds; ++round) {
    if (round > 0) {
      for (Group& gr : groups) draw(gr);
    }
    if (best_new(&chosen)) return chosen;
  }
  if (RandomNew(dims, tried, MixSeed(seed, kFallbackStream), &chosen)) {
    return chosen;
  }
  return assemble(top);  // every point is tried: the classic suggestion
}

}  // namespace det::searcher::tpe
