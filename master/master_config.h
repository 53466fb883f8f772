// det-master's own configuration (master.yaml), with flags overriding it.
#ifndef DET_MASTER_MASTER_CONFIG_H_
#define DET_MASTER_MASTER_CONFIG_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "master/slurm/slurm.h"

namespace det::master {

struct MasterConfig {
  // gRPC API and worker streams. Loopback unless told otherwise; port 0
  // picks a free port (written to port_file when set).
  std::string grpc_address = "127.0.0.1:8090";
  // The web page, JSON API and /metrics; empty disables it.
  std::string http_address = "127.0.0.1:8091";
  // `db` (or its older name `db_path`): a SQLite database file (default
  // $HOME/.det/master.db), or a PostgreSQL database as a libpq URL,
  // postgresql://user[:password]@host[:port]/dbname[?options].
  std::string db_path;
  // Default checkpoint_storage.host_path; default $HOME/.det/checkpoints.
  std::string checkpoint_root;
  // When set, workers and clients must present it.
  std::string token;
  // TLS for gRPC when both are set.
  std::string tls_cert;
  std::string tls_key;
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration agent_timeout = absl::Seconds(30);
  absl::Duration stop_timeout = absl::Seconds(30);
  // Where to write the bound gRPC port (for tests and scripts).
  std::string port_file;
  // Largest gRPC message accepted (a packed context must fit).
  int max_message_bytes = 128 << 20;
  // resource_manager: {type: slurm, ...}: workers started as Slurm jobs
  // when queued trials need slots (master/slurm/README.md).
  std::optional<slurm::SlurmOptions> slurm;
};

// Parses master.yaml text. Unknown keys and bad values are errors naming
// the key, line and column.
absl::StatusOr<MasterConfig> ParseMasterConfig(const std::string& yaml);

}  // namespace det::master

#endif  // DET_MASTER_MASTER_CONFIG_H_
