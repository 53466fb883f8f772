// browser_cluster: the cluster side of the browser test (web_test.js).
// Starts det-master with its HTTP port on a free loopback port, one
// det-worker with two CPU slots, and an adaptive ASHA experiment whose
// trials are det-fake-trial (slow enough to watch live). Prints one JSON
// line {"url": ..., "experiment_id": ..., "dir": ...} on stdout, then waits
// on stdin: a line "dump" prints every process's log to stderr; end of
// input tears the cluster down (processes killed, directory removed).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/integration/cluster.h"

namespace {

// A loopback port that was free a moment ago (det-master binds it next;
// nothing else on a test machine races for it in that window).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Ten trials over three brackets (4, 3 and 2 rungs of 20/40/80/160
// batches) at 30 ms a batch: about half a minute on two slots, long
// enough to pause and watch curves grow, short enough for CI.
std::string ExperimentYaml() {
  return absl::StrCat("name: browser-asha\n", "entrypoint: ",
                      det::testing::Cluster::Bin("det-fake-trial"), "\n",
                      R"(max_restarts: 0
reproducibility:
  experiment_seed: 7
hyperparameters:
  x: {type: double, minval: -0.5, maxval: 1.0}
  y: {type: categorical, vals: [0.2, 0.6, 0.9]}
  sleep_ms: 30
searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 160}
  max_trials: 10
  divisor: 2
min_validation_period: {batches: 20}
)");
}

}  // namespace

int main() {
  det::testing::Cluster cluster;
  int http_port = FreePort();
  if (http_port == 0) {
    std::fprintf(stderr, "browser_cluster: no free port\n");
    return 1;
  }
  cluster.StartMaster(
      {"--http_address", absl::StrCat("127.0.0.1:", http_port)});
  cluster.StartWorker("w1", 2);
  int64_t id = cluster.CreateExperiment(ExperimentYaml());
  if (id <= 0) {
    cluster.DumpLogs();
    return 1;
  }
  std::cout << "{\"url\":\"http://127.0.0.1:" << http_port
            << "\",\"experiment_id\":" << id << ",\"dir\":\"" << cluster.dir()
            << "\"}" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "dump") cluster.DumpLogs();
  }
  return 0;
}
