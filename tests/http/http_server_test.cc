// The HTTP port against a real Master (in-memory store) and an in-process
// worker: JSON API shapes and values, actions, error codes, token auth,
// static files and /metrics.
#include "master/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/http/test_master.h"

namespace det::http {
namespace {

using ::det::testing::InProcessWorker;
using ::det::testing::NewTestMaster;

constexpr char kGridYaml[] = R"(name: http-grid
hyperparameters:
  learning_rate:
    type: categorical
    vals: [0.1, 0.01]
  model:
    layers: 2
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length:
    batches: 100
min_validation_period:
  batches: 50
)";

template <typename T>
T Parse(const std::string& json) {
  T msg;
  auto st = google::protobuf::util::JsonStringToMessage(json, &msg);
  EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << json;
  return msg;
}

// Sends `request` verbatim and returns the whole response (for requests a
// well-behaved client library will not send).
std::string RawRequest(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  // Read the head, then as much body as Content-Length says: the server
  // may keep the connection open.
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
    out.append(buf, n);
    size_t head = out.find("\r\n\r\n");
    if (head == std::string::npos) continue;
    size_t at = out.find("Content-Length: ");
    size_t length = 0;
    if (at != std::string::npos && at < head) {
      length = std::stoul(out.substr(at + 16, out.find("\r\n", at) - at - 16));
    }
    if (out.size() >= head + 4 + length) break;
  }
  close(fd);
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  virtual std::string Token() const { return ""; }

  void SetUp() override {
    master_ = NewTestMaster();
    server_ = std::make_unique<HttpServer>(master_.get(), Token(), &registry_);
    auto port = server_->Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10, 0);
  }

  int64_t CreateExperiment(const std::string& yaml = kGridYaml) {
    std::vector<std::string> warnings;
    auto x = master_->CreateExperiment(yaml, "", /*activate=*/true,
                                       /*validate_only=*/false, &warnings);
    EXPECT_TRUE(x.ok()) << x.status();
    return x.ok() ? x->id() : 0;
  }

  // GET that must answer 200 with JSON; returns the body.
  std::string GetOk(const std::string& path) {
    auto res = client_->Get(path.c_str());
    EXPECT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    if (!res) return "";
    EXPECT_EQ(res->status, 200) << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    return res->body;
  }

  // The error status name of a JSON error body.
  static std::string ErrorStatus(const std::string& body) {
    auto s = Parse<google::protobuf::Struct>(body);
    return s.fields()
        .at("error")
        .struct_value()
        .fields()
        .at("status")
        .string_value();
  }

  MetricsRegistry registry_;
  std::unique_ptr<master::Master> master_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

TEST_F(HttpServerTest, MasterInfoUsesProtoFieldNames) {
  std::string body = GetOk("/api/v1/master");
  auto info = Parse<v1::MasterInfo>(body);
  EXPECT_FALSE(info.version().empty());
  EXPECT_FALSE(info.cluster_id().empty());
  EXPECT_TRUE(absl::StrContains(body, "\"slots_total\":0")) << body;
  EXPECT_TRUE(absl::StrContains(body, "\"cluster_id\"")) << body;
  EXPECT_FALSE(absl::StrContains(body, "clusterId")) << body;
}

TEST_F(HttpServerTest, ListsAndDescribesExperiments) {
  EXPECT_EQ(GetOk("/api/v1/experiments"), "{\"experiments\":[]}");
  int64_t id = CreateExperiment();
  ASSERT_GT(id, 0);

  auto list = Parse<v1::ListExperimentsResponse>(GetOk("/api/v1/experiments"));
  ASSERT_EQ(list.experiments_size(), 1);
  EXPECT_EQ(list.experiments(0).id(), id);
  EXPECT_EQ(list.experiments(0).name(), "http-grid");

  std::string body = GetOk(absl::StrCat("/api/v1/experiments/", id));
  auto x = Parse<v1::Experiment>(body);
  EXPECT_EQ(x.state(), v1::STATE_ACTIVE);
  EXPECT_EQ(x.searcher(), "grid");
  EXPECT_EQ(x.metric(), "validation_accuracy");
  // The original YAML (the master may append the seed it chose).
  EXPECT_TRUE(absl::StartsWith(x.config_yaml(), kGridYaml)) << x.config_yaml();
  EXPECT_EQ(x.num_trials(), 2);
  EXPECT_TRUE(absl::StrContains(body, "\"state\":\"STATE_ACTIVE\"")) << body;

  auto trials = Parse<v1::ListTrialsResponse>(
      GetOk(absl::StrCat("/api/v1/experiments/", id, "/trials")));
  ASSERT_EQ(trials.trials_size(), 2);
  for (const v1::Trial& t : trials.trials()) {
    EXPECT_EQ(t.experiment_id(), id);
    EXPECT_EQ(t.state(), v1::STATE_QUEUED);
    EXPECT_EQ(t.hparams()
                  .fields()
                  .at("model")
                  .struct_value()
                  .fields()
                  .at("layers")
                  .number_value(),
              2);
  }

  auto plan = Parse<v1::PreviewSearchResponse>(
      GetOk(absl::StrCat("/api/v1/experiments/", id, "/preview")));
  EXPECT_EQ(plan.searcher(), "grid");
  EXPECT_EQ(plan.num_trials(), 2);
}

TEST_F(HttpServerTest, TrialMetricsLogsCheckpointsAndAgents) {
  InProcessWorker worker(master_.get(), "w1", 2);
  int64_t id = CreateExperiment();
  auto start = worker.NextStart();
  ASSERT_TRUE(start.has_value());
  const v1::TrialSpec& spec = start->spec();
  int64_t tid = spec.trial_id();
  ASSERT_TRUE(worker.Started(spec).ok());
  ASSERT_TRUE(worker
                  .Metrics(spec, v1::METRIC_GROUP_TRAINING, 10,
                           {{"loss", 2.0}, {"accuracy", 0.2}})
                  .ok());
  ASSERT_TRUE(
      worker
          .Metrics(spec, v1::METRIC_GROUP_VALIDATION, 50,
                   {{"validation_accuracy", 0.4}, {"validation_loss", 1.5}})
          .ok());
  ASSERT_TRUE(worker.Logs(spec, {"epoch 1", "epoch 2", "saving"}).ok());
  ASSERT_TRUE(worker.Checkpoint(spec, "ckpt-1", 50).ok());

  auto t = Parse<v1::Trial>(GetOk(absl::StrCat("/api/v1/trials/", tid)));
  EXPECT_EQ(t.id(), tid);
  EXPECT_EQ(t.steps_completed(), 50);
  EXPECT_EQ(t.agent_id(), "w1");
  EXPECT_EQ(t.latest_checkpoint().uuid(), "ckpt-1");
  EXPECT_TRUE(t.has_best_metric());
  EXPECT_DOUBLE_EQ(t.best_metric(), 0.4);

  auto all = Parse<v1::GetTrialMetricsResponse>(
      GetOk(absl::StrCat("/api/v1/trials/", tid, "/metrics")));
  EXPECT_EQ(all.reports_size(), 2);
  auto val = Parse<v1::GetTrialMetricsResponse>(
      GetOk(absl::StrCat("/api/v1/trials/", tid, "/metrics?group=validation")));
  ASSERT_EQ(val.reports_size(), 1);
  EXPECT_EQ(val.reports(0).steps_completed(), 50);
  EXPECT_DOUBLE_EQ(val.reports(0).metrics().at("validation_accuracy"), 0.4);
  auto train = Parse<v1::GetTrialMetricsResponse>(
      GetOk(absl::StrCat("/api/v1/trials/", tid, "/metrics?group=training")));
  ASSERT_EQ(train.reports_size(), 1);
  EXPECT_DOUBLE_EQ(train.reports(0).metrics().at("loss"), 2.0);

  // Every checkpoint, newest first.
  ASSERT_TRUE(worker.Checkpoint(spec, "ckpt-2", 80).ok());
  auto ckpts = Parse<google::protobuf::Struct>(
      GetOk(absl::StrCat("/api/v1/trials/", tid, "/checkpoints")));
  const auto& list = ckpts.fields().at("checkpoints").list_value();
  ASSERT_EQ(list.values_size(), 2);
  EXPECT_EQ(list.values(0).struct_value().fields().at("uuid").string_value(),
            "ckpt-2");
  EXPECT_EQ(list.values(1).struct_value().fields().at("uuid").string_value(),
            "ckpt-1");
  // With its garbage-collection state (the trial page shows it).
  EXPECT_EQ(list.values(0).struct_value().fields().at("state").string_value(),
            "CHECKPOINT_STATE_ACTIVE");
  auto missing = client_->Get("/api/v1/trials/999/checkpoints");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(ErrorStatus(missing->body), "NOT_FOUND");

  // The experiment's learning curves: every trial's validation reports.
  auto curves = Parse<v1::GetTrialMetricsResponse>(
      GetOk(absl::StrCat("/api/v1/experiments/", id, "/metrics")));
  ASSERT_EQ(curves.reports_size(), 1);
  EXPECT_EQ(curves.reports(0).trial_id(), tid);
  EXPECT_EQ(curves.reports(0).group(), v1::METRIC_GROUP_VALIDATION);

  // Logs, and following them with after_id.
  auto logs = Parse<google::protobuf::Struct>(
      GetOk(absl::StrCat("/api/v1/trials/", tid, "/logs")));
  const auto& lines = logs.fields().at("logs").list_value().values();
  ASSERT_EQ(lines.size(), 3);
  EXPECT_EQ(lines[0].struct_value().fields().at("line").string_value(),
            "epoch 1");
  EXPECT_TRUE(logs.fields().at("live").bool_value());
  std::string first_id =
      lines[0].struct_value().fields().at("id").string_value();
  auto rest = Parse<google::protobuf::Struct>(GetOk(absl::StrCat(
      "/api/v1/trials/", tid, "/logs?after_id=", first_id, "&limit=1")));
  const auto& rest_lines = rest.fields().at("logs").list_value().values();
  ASSERT_EQ(rest_lines.size(), 1);
  EXPECT_EQ(rest_lines[0].struct_value().fields().at("line").string_value(),
            "epoch 2");

  // Who runs what.
  auto agents = Parse<v1::ListAgentsResponse>(GetOk("/api/v1/agents"));
  ASSERT_EQ(agents.agents_size(), 1);
  EXPECT_EQ(agents.agents(0).id(), "w1");
  EXPECT_TRUE(agents.agents(0).connected());
  int busy = 0;
  for (const v1::Slot& s : agents.agents(0).slots()) {
    if (s.trial_id() == tid) busy++;
  }
  EXPECT_EQ(busy, 1);
  auto info = Parse<v1::MasterInfo>(GetOk("/api/v1/master"));
  EXPECT_EQ(info.slots_total(), 2);
  EXPECT_EQ(info.slots_used(), 2);  // both grid trials were placed

  // Once the trial has ended its logs are no longer live.
  ASSERT_TRUE(worker
                  .Metrics(spec, v1::METRIC_GROUP_VALIDATION, 100,
                           {{"validation_accuracy", 0.6}})
                  .ok());
  ASSERT_TRUE(worker.Exited(spec, v1::EXIT_REASON_COMPLETED, 100).ok());
  auto done = Parse<google::protobuf::Struct>(
      GetOk(absl::StrCat("/api/v1/trials/", tid, "/logs")));
  EXPECT_FALSE(done.fields().at("live").bool_value());
  auto ended = Parse<v1::Trial>(GetOk(absl::StrCat("/api/v1/trials/", tid)));
  EXPECT_EQ(ended.state(), v1::STATE_COMPLETED);
  auto x =
      Parse<v1::Experiment>(GetOk(absl::StrCat("/api/v1/experiments/", id)));
  EXPECT_EQ(x.best_trial_id(), tid);
  EXPECT_DOUBLE_EQ(x.best_validation_metrics().at("validation_accuracy"), 0.6);
}

TEST_F(HttpServerTest, PauseActivateAndKill) {
  int64_t id = CreateExperiment();
  std::string base = absl::StrCat("/api/v1/experiments/", id);
  auto res = client_->Post((base + "/pause").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Parse<v1::Experiment>(res->body).state(), v1::STATE_PAUSED);
  EXPECT_EQ(Parse<v1::Experiment>(GetOk(base)).state(), v1::STATE_PAUSED);

  res = client_->Post((base + "/activate").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Parse<v1::Experiment>(res->body).state(), v1::STATE_ACTIVE);

  // Nothing runs (no worker), so a kill ends it at once.
  res = client_->Post((base + "/kill").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Parse<v1::Experiment>(GetOk(base)).state(), v1::STATE_CANCELED);

  // An ended experiment's state can no longer change: 409.
  for (const char* action : {"pause", "activate", "cancel", "kill"}) {
    res = client_->Post((base + "/" + action).c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 409) << action << ": " << res->body;
    EXPECT_EQ(ErrorStatus(res->body), "FAILED_PRECONDITION");
  }
}

TEST_F(HttpServerTest, BadRequestsGetPreciseErrors) {
  int64_t id = CreateExperiment();
  struct Case {
    std::string method;
    std::string path;
    int status;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"GET", "/api/v1/experiments/999", 404, "NOT_FOUND"},
      {"GET", "/api/v1/experiments/999/trials", 404, "NOT_FOUND"},
      {"GET", "/api/v1/experiments/999/metrics", 404, "NOT_FOUND"},
      {"POST", "/api/v1/experiments/999/pause", 404, "NOT_FOUND"},
      {"GET", "/api/v1/trials/999", 404, "NOT_FOUND"},
      {"GET", "/api/v1/trials/999/metrics", 404, "NOT_FOUND"},
      {"GET", "/api/v1/trials/999/logs", 404, "NOT_FOUND"},
      {"GET", "/api/v1/experiments/abc", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/experiments/-1", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/experiments/0", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/experiments/1e3", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/experiments/99999999999999999999999", 400,
       "INVALID_ARGUMENT"},
      {"GET", "/api/v1/experiments/", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/trials/x1/logs", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/trials/1/logs?after_id=-5", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/trials/1/logs?limit=0", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/trials/1/metrics?group=nope", 400, "INVALID_ARGUMENT"},
      {"GET", "/api/v1/nothing-here", 404, "Not Found"},
      {"GET", "/api/v1/experiments/1/2/3", 404, "Not Found"},
      {"GET", absl::StrCat("/api/v1/experiments/", id, "/pause"), 405,
       "Method Not Allowed"},
      {"POST", "/api/v1/experiments", 405, "Method Not Allowed"},
      {"DELETE", absl::StrCat("/api/v1/experiments/", id), 405,
       "Method Not Allowed"},
      {"PUT", "/api/v1/master", 405, "Method Not Allowed"},
  };
  for (const Case& c : cases) {
    httplib::Result res = c.method == "GET"    ? client_->Get(c.path.c_str())
                          : c.method == "POST" ? client_->Post(c.path.c_str())
                          : c.method == "PUT"  ? client_->Put(c.path.c_str())
                                              : client_->Delete(c.path.c_str());
    ASSERT_TRUE(res) << c.method << " " << c.path;
    EXPECT_EQ(res->status, c.status)
        << c.method << " " << c.path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json")
        << c.path;
    EXPECT_EQ(ErrorStatus(res->body), c.reason) << c.path;
  }
  auto res =
      client_->Get(absl::StrCat("/api/v1/experiments/", id, "/pause").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Allow"), "POST");
  res = client_->Post("/api/v1/experiments");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
}

TEST_F(HttpServerTest, OversizedRequestsAreRefused) {
  std::string long_query(20000, 'a');
  std::string r =
      RawRequest(port_, absl::StrCat("GET /api/v1/experiments?q=", long_query,
                                     " HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 414")) << r.substr(0, 200);

  r = RawRequest(port_,
                 absl::StrCat("POST /api/v1/experiments/1/pause HTTP/1.1\r\n"
                              "Host: x\r\nContent-Length: 100000\r\n\r\n",
                              std::string(100000, 'x')));
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 413")) << r.substr(0, 200);
  EXPECT_TRUE(absl::StrContains(r, "\"code\":413")) << r;

  // Still serving afterwards.
  GetOk("/api/v1/master");
}

TEST_F(HttpServerTest, CrossSitePostsAreRefused) {
  int64_t id = CreateExperiment();
  std::string path = absl::StrCat("/api/v1/experiments/", id, "/pause");
  auto res =
      client_->Post(path.c_str(), {{"Origin", "http://evil.example"}}, "", "");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403) << res->body;
  EXPECT_EQ(
      Parse<v1::Experiment>(GetOk(absl::StrCat("/api/v1/experiments/", id)))
          .state(),
      v1::STATE_ACTIVE);
  res = client_->Post(path.c_str(),
                      {{"Origin", absl::StrCat("http://127.0.0.1:", port_)}},
                      "", "");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST_F(HttpServerTest, LoopbackServerAnswersOnlyLoopbackNames) {
  const std::vector<std::string> hosts = {absl::StrCat("127.0.0.1:", port_),
                                          absl::StrCat("localhost:", port_),
                                          "[::1]:8091", "127.0.0.2"};
  for (const std::string& host : hosts) {
    auto res = client_->Get("/api/v1/master", {{"Host", host}});
    ASSERT_TRUE(res) << host;
    EXPECT_EQ(res->status, 200) << host;
  }
  // A rebound domain name: refused, for the page as for the API.
  for (const char* path : {"/api/v1/experiments", "/"}) {
    auto res = client_->Get(path, {{"Host", "attacker.example:8091"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 403) << path;
    EXPECT_TRUE(absl::StrContains(res->body, "attacker.example")) << res->body;
  }
}

TEST_F(HttpServerTest, ServesThePage) {
  auto res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_TRUE(absl::StrContains(res->body, "<main id=\"app\">"));
  EXPECT_TRUE(res->has_header("Content-Security-Policy"));

  for (const char* file : {"/app.js", "/chart.js", "/util.js", "/api.js",
                           "/experiments_view.js", "/experiment_view.js",
                           "/trial_view.js", "/workers_view.js", "/asha.js"}) {
    res = client_->Get(file);
    ASSERT_TRUE(res) << file;
    EXPECT_EQ(res->status, 200) << file;
    EXPECT_EQ(res->get_header_value("Content-Type"),
              "text/javascript; charset=utf-8");
    EXPECT_GT(res->body.size(), 500u) << file;
  }
  res = client_->Get("/style.css");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/css; charset=utf-8");

  // Revalidation is cheap: an unchanged file is 304 with no body.
  std::string etag = res->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  res = client_->Get("/style.css", {{"If-None-Match", etag}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 304);
  EXPECT_TRUE(res->body.empty());

  res = client_->Get("/no-such-file.js");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client_->Post("/app.js");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  // Without a token there is nothing to sign in to.
  res = client_->Get("/login");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 303);
}

TEST_F(HttpServerTest, PrometheusMetrics) {
  InProcessWorker worker(master_.get(), "w1", 3);
  CreateExperiment();
  ASSERT_TRUE(worker.NextStart().has_value());
  registry_.CountMetricReports(3);
  registry_.ObserveSchedulingLatency(absl::Milliseconds(20));
  registry_.ObserveStoreWrite(absl::Microseconds(300));

  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = res->body;
  for (const char* want : {
           "# TYPE det_experiments gauge\n",
           "det_experiments{state=\"ACTIVE\"} 1\n",
           "det_experiments{state=\"COMPLETED\"} 0\n",
           "det_trials{state=\"ACTIVE\"} 2\n",
           "det_trials{state=\"QUEUED\"} 0\n",
           "det_slots{state=\"used\"} 2\n",
           "det_slots{state=\"free\"} 1\n",
           "det_agents_connected 1\n",
           "det_metric_reports_total 3\n",
           "det_scheduling_latency_seconds_bucket{le=\"0.05\"} 1\n",
           "det_scheduling_latency_seconds_count 1\n",
           "det_store_write_seconds_bucket{le=\"0.0005\"} 1\n",
           "det_store_write_seconds_bucket{le=\"+Inf\"} 1\n",
       }) {
    EXPECT_TRUE(absl::StrContains(m, want)) << want << "\nin:\n" << m;
  }
  EXPECT_FALSE(absl::StrContains(m, "det_experiments{state=\"QUEUED\"}"));
}

TEST_F(HttpServerTest, StartRefusesBadAddressesAndSecondStart) {
  EXPECT_EQ(server_->Start("127.0.0.1:0").status().code(),
            absl::StatusCode::kFailedPrecondition);
  HttpServer other(master_.get(), "", nullptr);
  EXPECT_EQ(other.Start("no-port").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(other.Start("127.0.0.1:99999").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(other.Start("::1:80").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(other.Start(absl::StrCat("127.0.0.1:", port_)).status().code(),
            absl::StatusCode::kUnavailable);
  // Stop is idempotent, with or without a Start.
  other.Stop();
  server_->Stop();
  server_->Stop();
  EXPECT_FALSE(client_->Get("/api/v1/master"));
}

class HttpServerTokenTest : public HttpServerTest {
 protected:
  std::string Token() const override { return "s3cret token"; }
};

TEST_F(HttpServerTokenTest, ApiAndMetricsNeedTheToken) {
  for (const char* path : {"/api/v1/master", "/api/v1/experiments",
                           "/api/v1/experiments/1", "/metrics"}) {
    auto res = client_->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"),
              "Bearer realm=\"det\"");
    EXPECT_EQ(ErrorStatus(res->body), "Unauthorized");
  }
  auto res = client_->Post("/api/v1/experiments/1/kill");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);

  res =
      client_->Get("/api/v1/master", {{"Authorization", "Bearer wrong token"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = client_->Get("/api/v1/master",
                     {{"Authorization", "Bearer s3cret token"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client_->Get("/metrics", {{"Authorization", "bearer s3cret token"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res =
      client_->Get("/api/v1/master", {{"Cookie", "a=b; token=s3cret%20token"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client_->Get("/api/v1/master", {{"Cookie", "token=s3cret"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);

  // The page itself holds no data, so it loads and shows its sign-in.
  res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client_->Get("/login");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(absl::StrContains(res->body, "name=\"token\""));
}

TEST_F(HttpServerTokenTest, SignInSetsTheCookie) {
  // ?token= once: the cookie is set and the token leaves the address.
  auto res = client_->Get("/?token=s3cret%20token");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 303);
  EXPECT_EQ(res->get_header_value("Location"), "/");
  std::string cookie = res->get_header_value("Set-Cookie");
  EXPECT_TRUE(absl::StrContains(cookie, "HttpOnly"));
  EXPECT_TRUE(absl::StrContains(cookie, "SameSite=Strict"));
  // What a browser would send back works for the API.
  std::string pair = cookie.substr(0, cookie.find(';'));
  EXPECT_TRUE(absl::StartsWith(pair, "token=s3cret")) << cookie;
  auto api = client_->Get("/api/v1/master", {{"Cookie", pair}});
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 200);

  res = client_->Get("/?token=nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 303);
  EXPECT_EQ(res->get_header_value("Location"), "/login?failed=1");
  EXPECT_FALSE(res->has_header("Set-Cookie"));

  // The form.
  res = client_->Post("/login", "token=s3cret+token",
                      "application/x-www-form-urlencoded");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 303);
  EXPECT_EQ(res->get_header_value("Location"), "/");
  EXPECT_EQ(res->get_header_value("Set-Cookie"), cookie);
  res = client_->Post("/login", "token=guess",
                      "application/x-www-form-urlencoded");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Location"), "/login?failed=1");
  res = client_->Get("/login?failed=1");
  ASSERT_TRUE(res);
  EXPECT_TRUE(absl::StrContains(res->body, "not right"));

  res = client_->Post("/logout");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 303);
  EXPECT_TRUE(
      absl::StrContains(res->get_header_value("Set-Cookie"), "Max-Age=0"));
}

TEST(TokenAuthTest, CookieKeepsAnyTokenIntact) {
  TokenAuth auth("s3cret token; x=1");
  EXPECT_TRUE(absl::StartsWith(auth.SessionCookie(),
                               "token=s3cret%20token%3B%20x%3D1; Path=/;"))
      << auth.SessionCookie();
  EXPECT_EQ(PercentDecode("s3cret%20token%3B%20x%3D1"), "s3cret token; x=1");
  EXPECT_EQ(PercentDecode("100%"), "100%");  // a stray % stays
  EXPECT_TRUE(auth.Matches("s3cret token; x=1"));
  EXPECT_FALSE(auth.Matches("s3cret token; x=12"));
  EXPECT_FALSE(auth.Matches("s3cret"));
  EXPECT_FALSE(auth.Matches(""));
  EXPECT_FALSE(TokenAuth("").enabled());
}

}  // namespace
}  // namespace det::http
