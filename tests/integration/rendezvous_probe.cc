// The smallest real multi-slot rendezvous, for the multi-host tests: rank 0
// listens on the host:port of DET_RENDEZVOUS (the address the master handed
// out for rank 0's worker), rank 1 connects to it and sends a line; rank 0
// appends what it got to OUT_FILE. Then each rank execs the rest of its
// command line (det-fake-trial), which does the trial's work.
//
//   det-rendezvous-probe OUT_FILE PROGRAM [ARGS...]
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "rendezvous-probe: %s: %s\n", what.c_str(),
               std::strerror(errno));
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_FILE PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  const char* rdv = std::getenv("DET_RENDEZVOUS");
  const char* rank_s = std::getenv("DET_RANK");
  const char* worker = std::getenv("DET_WORKER_ID");
  if (rdv == nullptr || rank_s == nullptr) {
    std::fprintf(stderr, "rendezvous-probe: no DET_RENDEZVOUS/DET_RANK\n");
    return 2;
  }
  std::string addr = rdv;
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos)
    return Fail("DET_RENDEZVOUS is not host:port");
  std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &ai) != 0) {
    return Fail("resolving " + addr);
  }
  const int rank = std::atoi(rank_s);
  std::fprintf(stderr, "rendezvous-probe: rank %d, rendezvous %s\n", rank, rdv);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  if (rank == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Bound to the handed-out address itself: it must be this host's.
    if (bind(s, ai->ai_addr, ai->ai_addrlen) != 0) return Fail("bind " + addr);
    if (listen(s, 4) != 0) return Fail("listen");
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, 60000) != 1) return Fail("no rank 1 within 60 s");
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int c = accept(s, reinterpret_cast<sockaddr*>(&peer), &len);
    if (c < 0) return Fail("accept");
    char buf[256] = {};
    ssize_t n = read(c, buf, sizeof buf - 1);
    if (n <= 0) return Fail("read");
    char ip[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    FILE* out = std::fopen(argv[1], "a");
    if (out == nullptr) return Fail(std::string("open ") + argv[1]);
    std::fprintf(out, "rank 0 at %s got '%s' from %s\n", rdv, buf, ip);
    std::fclose(out);
    close(c);
    close(s);
  } else {
    std::string msg = std::string("rank ") + rank_s + " on " +
                      (worker != nullptr ? worker : "?");
    while (true) {
      int s = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
        if (write(s, msg.data(), msg.size()) !=
            static_cast<ssize_t>(msg.size()))
          return Fail("write");
        close(s);
        break;
      }
      close(s);
      if (std::chrono::steady_clock::now() > deadline) {
        return Fail("connecting to rank 0 at " + addr);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  freeaddrinfo(ai);
  execv(argv[2], argv + 2);
  return Fail(std::string("exec ") + argv[2]);
}
