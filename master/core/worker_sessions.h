// Pure helpers for worker sessions (worker_sessions.cc).
#ifndef DET_MASTER_CORE_WORKER_SESSIONS_H_
#define DET_MASTER_CORE_WORKER_SESSIONS_H_

#include <string>

namespace det::master {

// Key under which a worker process's last processed seq is stored.
std::string SeqKey(const std::string& worker_id,
                   const std::string& incarnation);

// The host part of a gRPC peer string ("ipv4:10.0.0.5:41234" -> "10.0.0.5",
// "ipv6:[::1]:41234" -> "::1"), for addresses other workers can reach.
std::string HostOfPeer(const std::string& peer);

}  // namespace det::master

#endif  // DET_MASTER_CORE_WORKER_SESSIONS_H_
