// Picture -> model input tensor, as regnet_keras.lite.image_preprocessing.prepare_image and the
// Android core's ImagePreprocessor.kt compute it: centered square crop, antialiased bilinear
// resize (vertical pass, then horizontal), (pixel - mean) / std, then a float32 cast or
// quantization (round half to even, clamp). float64 throughout, in the same order of
// operations, so the three readers give the same float32 values and the same integers.

import {INTEGER_RANGES} from './metadata.js';

/** {top, left, side} of the centered square: side round_half_up(fraction x shorter side). */
export function cropBox(height, width, cropFraction) {
  const shorter = Math.min(height, width);
  const side = Math.min(shorter, Math.max(1, Math.floor(cropFraction * shorter + 0.5)));
  return {top: Math.floor((height - side) / 2), left: Math.floor((width - side) / 2), side};
}

/**
 * One axis of the resize: per output index, the first source index and the normalised weights
 * (TensorFlow's ScaleAndTranslate, triangle kernel widened by the downscale factor).
 */
export function resizeWeights(inSize, outSize) {
  const inverseScale = inSize / outSize;
  const kernelScale = Math.max(inverseScale, 1.0);
  const spans = [];
  for (let x = 0; x < outSize; x++) {
    const sample = (x + 0.5) * inverseScale;
    const start = Math.max(Math.ceil(sample - kernelScale - 0.5), 0);
    const end = Math.min(Math.floor(sample + kernelScale - 0.5), inSize - 1) + 1;
    const weights = [];
    let total = 0.0;
    for (let source = start; source < end; source++) {
      const weight = Math.max(0.0, 1.0 - Math.abs(source + 0.5 - sample) / kernelScale);
      weights.push(weight);
      total += weight;
    }
    spans.push({start, weights: weights.map((w) => w / total)});
  }
  return spans;
}

/** Round half to even, as NumPy's rint and Java's Math.rint. */
export function roundHalfEven(value) {
  const floor = Math.floor(value);
  const difference = value - floor;
  if (difference > 0.5) return floor + 1;
  if (difference < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * RGBA pixels (a canvas ImageData's data: 4 bytes per pixel, row by row; alpha ignored) ->
 * the input tensor's values, NHWC: a Float32Array, or a Uint8Array / Int8Array of quantized
 * values. `input` is readMetadata(...).input.
 */
export function prepareImage(rgba, width, height, input) {
  if (!(width > 0 && height > 0) || rgba.length !== width * height * 4) {
    throw new Error(`expected ${width}x${height} RGBA pixels (${width * height * 4} bytes), got ${rgba.length}`);
  }
  const {top, left, side} = cropBox(height, width, input.cropFraction);
  const vertical = resizeWeights(side, input.height);
  const horizontal = resizeWeights(side, input.width);
  const rows = new Float64Array(input.height * side * 3);
  for (let y = 0; y < input.height; y++) {
    const {start, weights} = vertical[y];
    const rowBase = y * side * 3;
    for (let k = 0; k < weights.length; k++) {
      const weight = weights[k];
      const pixelBase = ((top + start + k) * width + left) * 4;
      for (let column = 0; column < side; column++) {
        const pixel = pixelBase + column * 4;
        const at = rowBase + column * 3;
        rows[at] = rows[at] + weight * rgba[pixel];
        rows[at + 1] = rows[at + 1] + weight * rgba[pixel + 1];
        rows[at + 2] = rows[at + 2] + weight * rgba[pixel + 2];
      }
    }
  }
  const count = input.height * input.width * 3;
  const normalized = new Float64Array(count);
  for (let y = 0; y < input.height; y++) {
    const rowBase = y * side * 3;
    for (let x = 0; x < input.width; x++) {
      const {start, weights} = horizontal[x];
      let red = 0.0;
      let green = 0.0;
      let blue = 0.0;
      for (let k = 0; k < weights.length; k++) {
        const at = rowBase + (start + k) * 3;
        red += weights[k] * rows[at];
        green += weights[k] * rows[at + 1];
        blue += weights[k] * rows[at + 2];
      }
      const out = (y * input.width + x) * 3;
      normalized[out] = (red - input.mean[0]) / input.std[0];
      normalized[out + 1] = (green - input.mean[1]) / input.std[1];
      normalized[out + 2] = (blue - input.mean[2]) / input.std[2];
    }
  }
  if (input.dtype === 'float32') return Float32Array.from(normalized);
  const [low, high] = INTEGER_RANGES[input.dtype];
  const {scale, zeroPoint} = input.quantization;
  const values = input.dtype === 'uint8' ? new Uint8Array(count) : new Int8Array(count);
  for (let i = 0; i < count; i++) {
    values[i] = Math.min(high, Math.max(low, roundHalfEven(normalized[i] / scale) + zeroPoint));
  }
  return values;
}

/** Android's ARGB_8888 ints (the goldens' image format) -> RGBA bytes. */
export function argbToRgba(argb) {
  const rgba = new Uint8ClampedArray(argb.length * 4);
  argb.forEach((pixel, i) => {
    rgba[i * 4] = (pixel >>> 16) & 0xff;
    rgba[i * 4 + 1] = (pixel >>> 8) & 0xff;
    rgba[i * 4 + 2] = pixel & 0xff;
    rgba[i * 4 + 3] = (pixel >>> 24) & 0xff;
  });
  return rgba;
}
