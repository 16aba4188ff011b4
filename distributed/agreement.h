// Before the first step of a job, every rank says what its setup came to, so that a rank started
// with other data, another model or other settings, or one whose setup failed, stops the whole job
// at once with one clear line instead of a hang or a silently wrong model.
#pragma once

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "distributed/process_group.h"

namespace recmodel::distributed {

// Posts `fingerprint` (what this rank is about to train), or `own_error` when its setup failed.
// Returns when every rank's fingerprint equals rank 0's. Otherwise throws on every rank: its own
// error; else that of the lowest rank whose setup failed, with that rank's exit code; else a
// DataError (exit 3) naming the first rank and field that differ from rank 0's.
void agree_to_start(ProcessGroup& group, const nlohmann::json& fingerprint, const Error* own_error);

}  // namespace recmodel::distributed
