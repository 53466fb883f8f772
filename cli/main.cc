// det: the command line of a det cluster. See cli/cli.h.
#include <unistd.h>

#include <iostream>

#include "cli/cli.h"

int main(int argc, char** argv) {
  det::cli::RunOptions options;
  options.out_is_terminal = isatty(STDOUT_FILENO) == 1;
  return det::cli::RunCli(argc, argv, std::cout, std::cerr, options);
}
