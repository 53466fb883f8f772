#include "master/master_config.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "yaml-cpp/yaml.h"

namespace det::master {
namespace {

std::string Where(const YAML::Node& n, const std::string& key) {
  return absl::StrCat("line ", n.Mark().line + 1, ", column ",
                      n.Mark().column + 1, ": ", key);
}

}  // namespace

absl::StatusOr<MasterConfig> ParseMasterConfig(const std::string& yaml) {
  MasterConfig c;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("master config: line ", e.mark.line + 1, ", column ",
                     e.mark.column + 1, ": ", e.msg));
  }
  if (root.IsNull()) return c;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("master config: expected a mapping");
  }
  std::vector<std::string> errors;
  auto str = [&](const YAML::Node& n, const std::string& key,
                 std::string* out) {
    if (!n.IsScalar()) {
      errors.push_back(Where(n, key) + ": expected a string");
      return;
    }
    *out = n.Scalar();
  };
  auto seconds = [&](const YAML::Node& n, const std::string& key,
                     absl::Duration* out) {
    try {
      double s = n.as<double>();
      if (s <= 0) throw YAML::Exception(n.Mark(), "");
      *out = absl::Seconds(s);
    } catch (const YAML::Exception&) {
      errors.push_back(Where(n, key) +
                       ": expected a positive number of seconds");
    }
  };
  const std::set<std::string> known = {
      "grpc_address",    "http_address",   "db",        "db_path",
      "checkpoint_root", "token",          "tls",       "heartbeat_interval_s",
      "agent_timeout_s", "stop_timeout_s", "port_file", "max_message_bytes",
      "resource_manager"};
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (!known.count(key)) {
      errors.push_back(absl::StrCat(
          Where(kv.first, key),
          ": unknown key (known: ", absl::StrJoin(known, ", "), ")"));
    } else if (key == "grpc_address") {
      str(v, key, &c.grpc_address);
    } else if (key == "http_address") {
      str(v, key, &c.http_address);
    } else if (key == "db" || key == "db_path") {
      if (root["db"] && root["db_path"]) {
        if (key == "db") {
          errors.push_back(
              Where(kv.first, key) +
              ": give db or db_path, not both (they are the same)");
        }
        continue;
      }
      str(v, key, &c.db_path);
    } else if (key == "checkpoint_root") {
      str(v, key, &c.checkpoint_root);
    } else if (key == "token") {
      str(v, key, &c.token);
    } else if (key == "port_file") {
      str(v, key, &c.port_file);
    } else if (key == "tls") {
      if (!v.IsMap()) {
        errors.push_back(Where(v, key) + ": expected {cert: FILE, key: FILE}");
        continue;
      }
      for (const auto& t : v) {
        std::string k = t.first.as<std::string>();
        if (k == "cert") {
          str(t.second, "tls.cert", &c.tls_cert);
        } else if (k == "key") {
          str(t.second, "tls.key", &c.tls_key);
        } else {
          errors.push_back(Where(t.first, "tls." + k) +
                           ": unknown key (known: cert, key)");
        }
      }
    } else if (key == "heartbeat_interval_s") {
      seconds(v, key, &c.heartbeat_interval);
    } else if (key == "agent_timeout_s") {
      seconds(v, key, &c.agent_timeout);
    } else if (key == "stop_timeout_s") {
      seconds(v, key, &c.stop_timeout);
    } else if (key == "resource_manager") {
      auto o = slurm::ParseSlurmOptions(v);
      if (o.ok()) {
        c.slurm = std::move(*o);
      } else {
        errors.push_back(std::string(o.status().message()));
      }
    } else if (key == "max_message_bytes") {
      try {
        c.max_message_bytes = v.as<int>();
        if (c.max_message_bytes < (1 << 20))
          throw YAML::Exception(v.Mark(), "");
      } catch (const YAML::Exception&) {
        errors.push_back(Where(v, key) + ": expected an integer >= 1048576");
      }
    }
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("master config:\n  ", absl::StrJoin(errors, "\n  ")));
  }
  return c;
}

}  // namespace det::master
