// The retraining loop's TOML file (`recmodel pipeline`): data, base model, train settings, gates,
// quantize, export, register, promotion and publish, read strictly (unknown keys get "did you
// mean", wrong types name the file and line) and turned into the options of recmodel's own
// commands, which the stages run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace recmodel::pipeline {

namespace fs = std::filesystem;

// One option of a recmodel command line: --name and its values (none for a flag).
struct CommandOption {
  std::string name;  // "--max-length"
  std::vector<std::string> values;
};
using CommandOptions = std::vector<CommandOption>;

// Appends `options` to `argv` as "--name value ...".
void append_options(std::vector<std::string>& argv, const CommandOptions& options);

// The long options a command takes (without "--"), and which of them are flags.
using OptionTable = std::map<std::string, bool /*is_flag*/>;

struct KnownOptions {
  OptionTable preprocess;
  OptionTable train;
};

// An input file a stage reads; its content is part of the stage's cache key.
struct InputFile {
  std::string key;  // as the file names it: "data.train"
  fs::path path;    // absolute
};

struct Gate {
  std::string metric;
  double threshold = 0;
};

struct Config {
  fs::path file;       // the TOML file
  fs::path base_dir;   // its directory: relative paths in it resolve here
  fs::path workspace;  // [pipeline] workspace, default <file stem>.pipeline beside the file

  // [data]: recmodel preprocess's options (paths absolute, or relative to the snapshot when the
  // data comes from a remote), the files among them.
  CommandOptions preprocess;
  std::vector<InputFile> data_files;
  // from_remote + snapshot: the data files are a directory pushed to a remote as NAME/VERSION
  // (`recmodel push DIR --name NAME --version VERSION`), pulled (SHA-256 verified) into the workspace.
  std::string from_remote;
  std::string snapshot;

  // [model]: a base REF (directory or models:/...), or preset + vocab for recmodel init.
  std::string base;
  std::string preset;
  fs::path vocab;
  std::optional<int64_t> init_seed;

  // [train]: recmodel train's options.
  CommandOptions train;

  // [gates]
  std::vector<Gate> fail_under;
  std::vector<Gate> max;

  // [quantize] (optional)
  bool quantize = false;
  std::vector<Gate> max_drop;  // largest loss per metric; a plain number is accuracy's (mae's for regression)
  bool quantize_per_tensor = false;

  // [export] (optional)
  bool export_onnx = false;
  bool export_int8 = false;
  std::optional<int64_t> opset;
  bool export_verify = true;

  // [register]
  std::string name;
  std::map<std::string, std::string> tags;
  std::string classification;  // public, internal or private; "" = not set
  std::string description;

  // [promotion] (optional)
  bool promotion = false;
  std::string alias = "production";
  std::string metric;  // "" = the task's default (accuracy, mae for regression)
  double min_improvement = 0;

  // [publish] (optional)
  std::vector<std::string> remotes;

  // Returns every option as the file (after --set) gives it, for the run record.
  std::string settings_json;
};

// Reads `file`, applies `sets` ("section.key=value", the value read as TOML, else as a string),
// and checks every key and type. Throws DataError naming the file and line (or the --set) for a
// malformed file, an unknown key (with the closest known one) or a value of the wrong type, and
// UsageError for a malformed --set.
Config load_config(const fs::path& file, const std::vector<std::string>& sets, const KnownOptions& known);

}  // namespace recmodel::pipeline
