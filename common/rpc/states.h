// Names and classes of the experiment/trial states of det/v1/common.proto,
// shared by the master, the CLI and the web API.
#ifndef DET_COMMON_RPC_STATES_H_
#define DET_COMMON_RPC_STATES_H_

#include <string>

#include "det/v1/common.pb.h"

namespace det {

// "ACTIVE", "STOPPING_CANCELED", ... (the enum name without "STATE_"); an
// unknown value reads "STATE_<number>".
std::string StateName(v1::State s);

// True for COMPLETED, CANCELED and ERROR: nothing changes after them.
bool IsTerminal(v1::State s);

}  // namespace det

#endif  // DET_COMMON_RPC_STATES_H_
