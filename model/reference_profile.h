// The reference profile of a model on a split of a prepared dataset (monitoring/profile.h):
// `train` records it on dev in the model's recmodel.json; `recmodel drift --reference DATA`
// computes it for models trained before profiles existed.
#pragma once

#include <string>

#include <torch/torch.h>

#include "data/prepared_dataset.h"
#include "model/bert.h"
#include "monitoring/profile.h"

namespace recmodel::model {

// Scores every example of `split` with `model` (batches of `batch_size` on `device`) and
// returns the profile: true labels of it and of the train split, predicted labels, scores,
// token lengths and the [UNK] rate (`unk_id`), with the manifest's truncation rate. Dataset
// labels are named by the dataset; the model's labels are config.labels. Throws what
// DatasetSplit and Predictor throw.
monitoring::ReferenceProfile profile_split(const BertForSequenceClassification& model, int32_t unk_id,
                                           const data::PreparedDataset& dataset, const std::string& split,
                                           size_t batch_size, torch::Device device);

}  // namespace recmodel::model
