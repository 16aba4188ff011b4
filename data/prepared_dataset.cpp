#include "data/prepared_dataset.h"

#include "common/error.h"
#include "common/files.h"
#include "data/preprocess.h"

namespace recmodel::data {

PreparedDataset PreparedDataset::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail<NotFoundError>("{}: no such dataset directory", dir.string());
  const fs::path manifest_path = dir / "manifest.json";
  if (!fs::exists(manifest_path, ec))
    fail<NotFoundError>("{}: no manifest.json; is this a directory written by 'recmodel preprocess'?", dir.string());
  PreparedDataset dataset;
  dataset.dir = dir;
  const std::string text = read_file(manifest_path);
  dataset.manifest_sha256 = sha256_hex(text);
  try {
    dataset.manifest = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail<DataError>("{}: not valid JSON: {}", manifest_path.string(), e.what());
  }
  const auto& m = dataset.manifest;
  if (!m.is_object() || m.value("format", std::string()) != kDatasetFormatName)
    fail<DataError>("{}: not a recmodel dataset manifest (\"format\" is not \"{}\")", manifest_path.string(),
                    kDatasetFormatName);
  const auto version = m.value("format_version", 0u);
  if (version > kDatasetFormatVersion)
    fail<DataError>("{}: dataset format version {} is newer than this recmodel reads ({}); upgrade recmodel",
                    manifest_path.string(), version, kDatasetFormatVersion);
  if (version < 1) fail<DataError>("{}: missing or invalid format_version", manifest_path.string());
  try {
    dataset.task = parse_task(m.at("task").get<std::string>());
    if (dataset.task == Task::classification) dataset.labels = m.at("labels").get<std::vector<std::string>>();
    dataset.vocab_sha256 = m.at("tokenizer").at("vocab_sha256").get<std::string>();
    dataset.max_length = m.at("max_length").get<size_t>();
  } catch (const nlohmann::json::exception& e) {
    fail<DataError>("{}: incomplete manifest: {}", manifest_path.string(), e.what());
  } catch (const UsageError& e) {
    fail<DataError>("{}: {}", manifest_path.string(), e.what());
  }
  if (dataset.task == Task::classification && dataset.labels.empty())
    fail<DataError>("{}: a classification dataset without labels", manifest_path.string());
  return dataset;
}

bool PreparedDataset::has_split(const std::string& name) const {
  std::error_code ec;
  if (!fs::exists(split_path(name), ec)) return false;
  return manifest.contains("splits") && manifest["splits"].contains(name) &&
         manifest["splits"][name].value("examples", uint64_t{0}) > 0;
}

DatasetSplit PreparedDataset::open_split(const std::string& name) const {
  const fs::path path = split_path(name);
  std::error_code ec;
  if (!fs::exists(path, ec)) fail<NotFoundError>("{}: the dataset has no {} split", path.string(), name);
  return DatasetSplit::open(path);
}

}  // namespace recmodel::data
