// The live side of `recmodel drift`: what `serve --log-predictions` or `recmodel predict` wrote,
// read into the values the drift features compare. A serve log line is
// {"time", "model", "version", "tokens", "truncated", "unk_tokens", "label", "score"} (regression:
// "value"); a predictions line is predict's {"id"?, "label", "score", ...} or {"value", ...}, and
// its error lines ({"line", "error"}) are skipped and counted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "monitoring/drift.h"

namespace recmodel::monitoring {

enum class TrafficKind { log, predictions };

// Returns the kind of a JSONL line (a serve log record when it has "unk_tokens" and "tokens"),
// nullopt when the line is not a JSON object with "label", "score" or "value" (then the file is
// texts to predict first).
std::optional<TrafficKind> detect_kind(const std::string& first_line);

// Which records of a file count.
struct TrafficFilter {
  size_t window = kMaxProfileSamples;    // the last N records kept
  std::optional<int64_t> since_ms;       // log only: records at or after this time
  std::string served_name;               // log only: records of this served model (empty: any, if one)
  std::optional<int64_t> version;        // log only: records of this registry version
  bool regression = false;               // what the model predicts: "value" rather than "label"
};

struct TrafficSummary {
  TrafficKind kind = TrafficKind::log;
  uint64_t lines = 0;      // records read
  uint64_t skipped = 0;    // error lines of a predictions file, records of other models or versions, before --since
  uint64_t dropped_by_window = 0;  // matching records older than the window
  std::optional<int64_t> first_ms, last_ms;  // times of the kept records (log)
  std::vector<std::string> other_models;     // served names seen and not kept
  std::vector<int64_t> other_versions;       // versions seen and not kept
};

// Reads `path` (a log or predictions file, "-" for stdin) into `live`. Throws NotFoundError for a
// missing file, DataError naming file:line for a line that is not such a record (a last line cut
// short by a crash is skipped instead, and counted), UsageError for --since on a predictions file
// and for a log with several served models and no `served_name`.
LiveTraffic read_traffic(const std::string& path, TrafficKind kind, const TrafficFilter& filter, TrafficSummary& summary);

}  // namespace recmodel::monitoring
