#include "converters/int8.h"

#include <algorithm>
#include <cmath>

namespace recmodel::converters {

namespace {

// Integer products of (uint8 - zero point) ∈ [-255, 255] and int8 ∈ [-127, 127] summed over at
// most this many terms stay below 2^24 in magnitude (512 · 255 · 127 = 16,581,120), so a float32
// matrix product over such a slice is exact whatever order the BLAS adds in.
constexpr int64_t kExactFloatTerms = 512;

}  // namespace

Int8Weight quantize_symmetric(const torch::Tensor& weight, bool per_row) {
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach().to(torch::kFloat).contiguous();
  torch::Tensor max_abs = per_row ? std::get<0>(w.abs().max(/*dim=*/1)) : w.abs().max().reshape({1});
  torch::Tensor scale = max_abs / 127.0f;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  torch::Tensor divisor = scale.unsqueeze(1);
  // torch::round rounds half to even, as ONNX QuantizeLinear and ONNX Runtime's quantizer do.
  torch::Tensor values = torch::round(w / divisor).clamp(-127, 127).to(torch::kChar);
  return {values, scale.contiguous()};
}

torch::Tensor dequantize(const Int8Weight& weight) {
  return weight.values.to(torch::kFloat) * weight.scale.unsqueeze(1);
}

DynamicQuantization dynamic_quantization(const torch::Tensor& x) {
  // ONNX Runtime's GetQuantizationParameter, operation for operation, in float32.
  float low = std::min(x.min().item<float>(), 0.0f);
  float high = std::max(x.max().item<float>(), 0.0f);
  DynamicQuantization q;
  q.scale = high == low ? 1.0f : (high - low) / 255.0f;
  float initial_zero_point = 0.0f - low / q.scale;
  q.zero_point = static_cast<int32_t>(std::nearbyint(std::clamp(initial_zero_point, 0.0f, 255.0f)));
  return q;
}

torch::Tensor quantize_centered(const torch::Tensor& x, const DynamicQuantization& q) {
  // A full divisor tensor keeps this an element-wise IEEE division (no reciprocal shortcut).
  torch::Tensor divisor = torch::full_like(x, q.scale, x.options().dtype(torch::kFloat));
  return torch::round(x.to(torch::kFloat) / divisor)
      .clamp(static_cast<double>(-q.zero_point), static_cast<double>(255 - q.zero_point));
}

torch::Tensor int8_linear(const torch::Tensor& x, const torch::Tensor& weight_int8, const torch::Tensor& weight_scale,
                          const torch::Tensor& bias) {
  std::vector<int64_t> shape = x.sizes().vec();
  const int64_t in = shape.back();
  const int64_t out = weight_int8.size(0);
  torch::Tensor rows = x.reshape({-1, in}).to(torch::kFloat);
  DynamicQuantization q = dynamic_quantization(rows);
  torch::Tensor centered = quantize_centered(rows, q);
  torch::Tensor weight = weight_int8.to(torch::kFloat);

  torch::Tensor sums;  // exact integer sums, float32 for one slice or int32 across slices
  if (in <= kExactFloatTerms) {
    sums = torch::matmul(centered, weight.t());
  } else {
    for (int64_t start = 0; start < in; start += kExactFloatTerms) {
      int64_t length = std::min(kExactFloatTerms, in - start);
      torch::Tensor part = torch::matmul(centered.narrow(1, start, length), weight.narrow(1, start, length).t());
      part = part.to(torch::kInt);
      sums = sums.defined() ? sums + part : part;
    }
  }
  torch::Tensor combined_scale = weight_scale.to(torch::kFloat) * q.scale;
  torch::Tensor y = sums.to(torch::kFloat) * combined_scale;
  if (bias.defined()) y = y + bias;
  shape.back() = out;
  return y.reshape(shape);
}

torch::Tensor int8_embedding(const torch::Tensor& ids, const torch::Tensor& values_int8, const torch::Tensor& row_scale) {
  torch::Tensor flat = ids.reshape({-1}).to(torch::kLong);
  torch::Tensor rows = values_int8.index_select(0, flat).to(torch::kFloat) * row_scale.index_select(0, flat).unsqueeze(1);
  std::vector<int64_t> shape = ids.sizes().vec();
  shape.push_back(values_int8.size(1));
  return rows.reshape(shape);
}

}  // namespace recmodel::converters
