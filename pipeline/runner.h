// Runs the retraining loop of a pipeline file: preprocess → train → evaluate (gates) → quantize →
// export → register → promote (champion/challenger) → publish. Each stage is one or more of
// recmodel's own commands, run as children; its cache key hashes everything it reads (file
// contents, settings, the outputs of the stages before it), so an unchanged stage is not run again
// and a changed setting re-runs that stage and those after it. A workspace lock keeps two runs
// apart, and every run leaves a record (runs/<id>/run.json and summary.md).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/config.h"

namespace recmodel::pipeline {

// The stages, in order.
const std::vector<std::string>& stage_names();

enum class StageStatus { ran, cached, failed, skipped, pending };
const char* status_name(StageStatus status);

struct StageReport {
  std::string name;
  StageStatus status = StageStatus::pending;
  std::string reason;   // why it ran, was cached or skipped; what failed
  double seconds = 0;
  int exit_code = 0;    // of the failed command
  std::string key;      // the cache key, "" before the stages it depends on ran
  nlohmann::json details = nlohmann::json::object();  // metrics, versions, artifacts
};

struct RunOptions {
  fs::path recmodel;                       // the recmodel binary the stages run
  std::vector<std::string> global_args;    // given to every command (--registry, --threads, --config)
  std::string registry_flag;               // as --registry, for the champion and the versions
  std::string config_flag;                 // as --config, for the remotes
  std::string force_from;                  // --force STAGE: run it and every stage after it
  bool dry_run = false;                    // say what would run; run nothing
  std::function<void(const StageReport&)> on_stage_start;
  std::function<void(const StageReport&)> on_stage_end;
};

struct RunResult {
  std::string id;                 // "" for status and --dry-run
  fs::path record_dir;            // runs/<id>
  std::vector<StageReport> stages;
  int exit_code = 0;              // 0, a stage's code, or 1 when the challenger lost
  std::string message;            // the one line that explains a non-zero exit code
  nlohmann::json record;          // run.json's content
};

// Runs the pipeline (or, with dry_run, plans it). Throws IntegrityError (exit 6) naming the holder
// when another run holds the workspace; other failures are reported in the result.
RunResult run_pipeline(const Config& config, const RunOptions& options);

// Says what `run` would do and why, stage by stage, without running or locking anything.
RunResult pipeline_status(const Config& config, const RunOptions& options);

}  // namespace recmodel::pipeline
