// The det command line, as a function so that tests can run it in-process.
#ifndef DET_CLI_CLI_H_
#define DET_CLI_CLI_H_

#include <ostream>

#include "cli/follow.h"

namespace det::cli {

struct RunOptions {
  // Whether `out` is a terminal: progress then updates one line in place.
  bool out_is_terminal = false;
  FollowOptions follow;
};

// Runs `det` with the given arguments (argv[0] is the program name). Results
// go to `out`, diagnostics to `err`. Returns the process exit status: 0 on
// success, non-zero on any error. Reads DET_MASTER, DET_TOKEN and
// DET_MASTER_CERT_FILE from the environment when the options are not given.
int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err,
           const RunOptions& options);
int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace det::cli

#endif  // DET_CLI_CLI_H_
