#include "master/http/api_routes.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "master/api/preview_proto.h"
#include "master/core/placement.h"
#include "master/http/http_json.h"

namespace det::http {
namespace {

using Args = std::vector<std::string>;
using httplib::Request;
using httplib::Response;

constexpr int kDefaultLogLimit = 1000;
constexpr int kMaxLogLimit = 10000;

void SendJson(Response& res, const std::string& json) {
  res.status = 200;
  res.set_content(json, "application/json");
}

void SendError(Response& res, const absl::Status& st) {
  res.status = HttpStatusFor(st);
  res.set_content(
      ErrorJson(res.status, st.message(), absl::StatusCodeToString(st.code())),
      "application/json");
}

template <typename T>
void Send(Response& res, const absl::StatusOr<T>& v) {
  if (!v.ok()) return SendError(res, v.status());
  SendJson(res, ToJson(*v));
}

// Digits only: "+1", " 1", "0x1" and "1e3" are malformed, not an id.
absl::StatusOr<int64_t> ParseInt(const std::string& text,
                                 const std::string& what, int64_t min) {
  int64_t v = 0;
  bool digits = !text.empty() && text.size() <= 19;
  for (char c : text) digits = digits && absl::ascii_isdigit(c);
  if (!digits || !absl::SimpleAtoi(text, &v) || v < min) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an integer >= ", min, ", not \"",
                     text.substr(0, 40), text.size() > 40 ? "..." : "", "\""));
  }
  return v;
}

absl::StatusOr<int64_t> ParseId(const std::string& text,
                                const std::string& what) {
  return ParseInt(text, what, 1);
}

absl::StatusOr<v1::MetricGroup> ParseGroup(const Request& req,
                                           v1::MetricGroup fallback) {
  if (!req.has_param("group")) return fallback;
  std::string g = absl::AsciiStrToLower(req.get_param_value("group"));
  if (g == "training") return v1::METRIC_GROUP_TRAINING;
  if (g == "validation") return v1::METRIC_GROUP_VALIDATION;
  if (g == "all" || g.empty()) return v1::METRIC_GROUP_UNSPECIFIED;
  return absl::InvalidArgumentError(
      absl::StrCat("group must be training, validation or all, not \"",
                   g.substr(0, 40), "\""));
}

// Runs `fn(id)` with the path's first argument parsed as an id, or answers
// 400 for a malformed one.
template <typename Fn>
void WithId(Response& res, const Args& args, const char* what, Fn fn) {
  auto id = ParseId(args.at(0), what);
  if (!id.ok()) return SendError(res, id.status());
  fn(*id);
}

void TrialLogs(master::Master* m, const Request& req, Response& res,
               int64_t trial_id) {
  int64_t after = 0;
  int64_t limit = kDefaultLogLimit;
  if (req.has_param("after_id")) {
    auto v = ParseInt(req.get_param_value("after_id"), "after_id", 0);
    if (!v.ok()) return SendError(res, v.status());
    after = *v;
  }
  if (req.has_param("limit")) {
    auto v = ParseInt(req.get_param_value("limit"), "limit", 1);
    if (!v.ok()) return SendError(res, v.status());
    limit = std::min<int64_t>(*v, kMaxLogLimit);
  }
  // Liveness first, so lines written just before the trial ended are in
  // this answer and a client that stops following misses none.
  bool live = m->TrialIsLive(trial_id);
  auto lines = m->GetTrialLogs(trial_id, after, static_cast<int>(limit));
  if (!lines.ok()) return SendError(res, lines.status());
  std::string out = "{\"logs\":[";
  for (size_t i = 0; i < lines->size(); ++i) {
    if (i > 0) out += ",";
    out += ToJson((*lines)[i]);
  }
  absl::StrAppend(&out, "],\"live\":", live ? "true" : "false", "}");
  SendJson(res, out);
}

void ExperimentMetrics(master::Master* m, const Request& req, Response& res,
                       int64_t id) {
  auto group = ParseGroup(req, v1::METRIC_GROUP_VALIDATION);
  if (!group.ok()) return SendError(res, group.status());
  auto trials = m->ListTrials(id);
  if (!trials.ok()) return SendError(res, trials.status());
  v1::GetTrialMetricsResponse out;
  for (const v1::Trial& t : *trials) {
    auto reports = m->GetTrialMetrics(t.id(), *group);
    if (!reports.ok()) return SendError(res, reports.status());
    for (auto& r : *reports) *out.add_reports() = std::move(r);
  }
  SendJson(res, ToJson(out));
}

using Action = absl::StatusOr<v1::Experiment> (master::Master::*)(int64_t);

}  // namespace

void AddApiRoutes(master::Master* m, Router* router) {
  const std::string kExp = "/api/v1/experiments/([^/]*)";
  const std::string kTrial = "/api/v1/trials/([^/]*)";

  router->Add("GET", "/api/v1/master",
              [m](const Request&, Response& res, const Args&) {
                SendJson(res, ToJson(m->GetMasterInfo()));
              });
  router->Add("GET", "/api/v1/agents",
              [m](const Request&, Response& res, const Args&) {
                v1::ListAgentsResponse out;
                for (auto& a : m->ListAgents()) *out.add_agents() = a;
                SendJson(res, ToJson(out));
              });
  router->Add("GET", "/api/v1/experiments",
              [m](const Request&, Response& res, const Args&) {
                auto list = m->ListExperiments();
                if (!list.ok()) return SendError(res, list.status());
                v1::ListExperimentsResponse out;
                for (auto& x : *list) *out.add_experiments() = std::move(x);
                SendJson(res, ToJson(out));
              });
  router->Add("GET", kExp, [m](const Request&, Response& res, const Args& a) {
    WithId(res, a, "experiment id",
           [&](int64_t id) { Send(res, m->GetExperiment(id)); });
  });
  router->Add("GET", kExp + "/trials",
              [m](const Request&, Response& res, const Args& a) {
                WithId(res, a, "experiment id", [&](int64_t id) {
                  auto list = m->ListTrials(id);
                  if (!list.ok()) return SendError(res, list.status());
                  v1::ListTrialsResponse out;
                  for (auto& t : *list) *out.add_trials() = std::move(t);
                  SendJson(res, ToJson(out));
                });
              });
  router->Add("GET", kExp + "/metrics",
              [m](const Request& req, Response& res, const Args& a) {
                WithId(res, a, "experiment id",
                       [&](int64_t id) { ExperimentMetrics(m, req, res, id); });
              });
  router->Add("GET", kExp + "/preview",
              [m](const Request&, Response& res, const Args& a) {
                WithId(res, a, "experiment id", [&](int64_t id) {
                  auto x = m->GetExperiment(id);
                  if (!x.ok()) return SendError(res, x.status());
                  Send(res, master::PreviewSearchProto(x->config_yaml()));
                });
              });
  const std::pair<const char*, Action> kActions[] = {
      {"pause", &master::Master::PauseExperiment},
      {"activate", &master::Master::ActivateExperiment},
      {"cancel", &master::Master::CancelExperiment},
      {"kill", &master::Master::KillExperiment},
  };
  for (const auto& [name, action] : kActions) {
    router->Add(
        "POST", kExp + "/" + name,
        [m, action = action](const Request&, Response& res, const Args& a) {
          WithId(res, a, "experiment id",
                 [&](int64_t id) { Send(res, (m->*action)(id)); });
        });
  }
  router->Add("GET", kTrial, [m](const Request&, Response& res, const Args& a) {
    WithId(res, a, "trial id", [&](int64_t id) { Send(res, m->GetTrial(id)); });
  });
  router->Add("GET", kTrial + "/metrics",
              [m](const Request& req, Response& res, const Args& a) {
                WithId(res, a, "trial id", [&](int64_t id) {
                  auto group = ParseGroup(req, v1::METRIC_GROUP_UNSPECIFIED);
                  if (!group.ok()) return SendError(res, group.status());
                  auto list = m->GetTrialMetrics(id, *group);
                  if (!list.ok()) return SendError(res, list.status());
                  v1::GetTrialMetricsResponse out;
                  for (auto& r : *list) *out.add_reports() = std::move(r);
                  SendJson(res, ToJson(out));
                });
              });
  router->Add("GET", kTrial + "/checkpoints",
              [m](const Request&, Response& res, const Args& a) {
                WithId(res, a, "trial id", [&](int64_t id) {
                  auto list = m->ListCheckpoints(id);
                  if (!list.ok()) return SendError(res, list.status());
                  // Newest first; {"checkpoints": [Checkpoint, ...]}.
                  std::sort(list->begin(), list->end(),
                            master::NewerCheckpoint);
                  std::string body = "{\"checkpoints\":[";
                  for (size_t i = 0; i < list->size(); ++i) {
                    if (i > 0) body += ",";
                    body += ToJson((*list)[i]);
                  }
                  body += "]}";
                  SendJson(res, body);
                });
              });
  router->Add("GET", kTrial + "/logs",
              [m](const Request& req, Response& res, const Args& a) {
                WithId(res, a, "trial id",
                       [&](int64_t id) { TrialLogs(m, req, res, id); });
              });
}

}  // namespace det::http
