// The int8 arithmetic recmodel runs and exports: symmetric int8 weights (per output channel or
// per tensor), activations quantized at run time to uint8 as ONNX's DynamicQuantizeLinear does,
// and integer products accumulated exactly as MatMulInteger does. libtorch (model/bert.cpp) and
// the ONNX graph (converters/onnx_export.cpp) compute the same numbers, so an int8 model gives
// the same answers in `recmodel predict` and in ONNX Runtime.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace recmodel::converters {

// An int8 weight: values in [-127, 127] and the float scales that map them back
// (weight ≈ values * scale, scale broadcast along dim 0).
struct Int8Weight {
  torch::Tensor values;  // int8, the weight's shape
  torch::Tensor scale;   // float32: (rows) per row/channel, (1) per tensor
};

// Quantizes a float matrix (rows = output channels of a Linear, or embedding rows) symmetrically:
// scale = max|w| / 127 per row (or over the whole tensor), values = round-half-even(w / scale).
// An all-zero row gets scale 1 so that it dequantizes to zeros.
Int8Weight quantize_symmetric(const torch::Tensor& weight, bool per_row);

// Returns values * scale as float32 (the weight an int8 layer computes with).
torch::Tensor dequantize(const Int8Weight& weight);

// The run-time quantization of one activation tensor (ONNX DynamicQuantizeLinear, uint8).
struct DynamicQuantization {
  float scale = 1.0f;
  int32_t zero_point = 0;  // in [0, 255]
};

// Returns DynamicQuantizeLinear's scale and zero point of `x`: the range [min(x, 0), max(x, 0)]
// mapped onto [0, 255], zero point rounded half to even.
DynamicQuantization dynamic_quantization(const torch::Tensor& x);

// Returns (q - zero_point) for every element of `x` as float32, where q is DynamicQuantizeLinear's
// uint8 output: saturate(round-half-even(x / scale) + zero_point).
torch::Tensor quantize_centered(const torch::Tensor& x, const DynamicQuantization& q);

// Computes x · Wᵀ + bias with x quantized dynamically (per tensor, uint8) and W int8, exactly as
// DynamicQuantizeLinear → MatMulInteger → Cast → Mul(x_scale · w_scale) → Add(bias): the integer
// sums are exact (int32), then scaled in float32. `x` is (..., in); returns (..., out).
torch::Tensor int8_linear(const torch::Tensor& x, const torch::Tensor& weight_int8, const torch::Tensor& weight_scale,
                          const torch::Tensor& bias);

// Looks up rows of an int8 embedding table with per-row scales: float(values[ids]) * scale[ids],
// as the exported Gather → Cast → Mul(Gather(scales)) does.
torch::Tensor int8_embedding(const torch::Tensor& ids, const torch::Tensor& values_int8, const torch::Tensor& row_scale);

}  // namespace recmodel::converters
