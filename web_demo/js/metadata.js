// Reads NAME.json beside a .tflite (docs/MODEL_METADATA.md) with the rules of
// regnet_keras.lite.image_preprocessing.check_metadata, naming the offending field.

export const METADATA_FORMAT = 'regnet_keras.tflite_metadata';
export const METADATA_VERSION = 1;
export const TENSOR_TYPES = ['float32', 'uint8', 'int8'];
export const INTEGER_RANGES = {uint8: [0, 255], int8: [-128, 127]};
const ACTIVATIONS = ['softmax', 'none'];

export class MetadataError extends Error {
  constructor(field, problem) {
    super(`model metadata field ${field}: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function require(record, key, field) {
  if (!isObject(record) || !(key in record)) throw new MetadataError(field, 'is missing');
  return record[key];
}

function number(value, field) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new MetadataError(field, `must be a finite number, not ${JSON.stringify(value)}`);
  }
  return value;
}

function integer(value, field) {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new MetadataError(field, `must be an integer, not ${JSON.stringify(value)}`);
  }
  return value;
}

function choice(value, choices, field) {
  if (!choices.includes(value)) {
    throw new MetadataError(field, `is ${JSON.stringify(value)}; this reader knows ${choices.join(', ')}`);
  }
  return value;
}

function quantization(spec, prefix, dtype) {
  const value = require(spec, 'quantization', `${prefix}.quantization`);
  if (dtype === 'float32') {
    if (value !== null) throw new MetadataError(`${prefix}.quantization`, 'must be null for a float32 tensor');
    return null;
  }
  if (!isObject(value)) {
    throw new MetadataError(`${prefix}.quantization`, `a ${dtype} tensor needs {"scale", "zero_point"}`);
  }
  const scale = number(require(value, 'scale', `${prefix}.quantization.scale`), `${prefix}.quantization.scale`);
  if (scale <= 0) throw new MetadataError(`${prefix}.quantization.scale`, `must be positive, not ${scale}`);
  const zeroPoint = integer(require(value, 'zero_point', `${prefix}.quantization.zero_point`),
      `${prefix}.quantization.zero_point`);
  const [low, high] = INTEGER_RANGES[dtype];
  if (zeroPoint < low || zeroPoint > high) {
    throw new MetadataError(`${prefix}.quantization.zero_point`,
        `${zeroPoint} is outside the ${dtype} range [${low}, ${high}]`);
  }
  return {scale, zeroPoint};
}

/**
 * Validates a parsed metadata record and returns what the app needs:
 * {modelName, variant, labels, input: {height, width, dtype, quantization, mean, std,
 * cropFraction}, output: {dtype, quantization, activation}}. Throws MetadataError.
 */
export function readMetadata(record) {
  if (!isObject(record)) throw new MetadataError('(root)', 'must be a JSON object');
  const format = require(record, 'format', 'format');
  if (format !== METADATA_FORMAT) {
    throw new MetadataError('format', `is ${JSON.stringify(format)}, not "${METADATA_FORMAT}"`);
  }
  const version = integer(require(record, 'format_version', 'format_version'), 'format_version');
  if (version > METADATA_VERSION) {
    throw new MetadataError('format_version', `${version} is newer than this reader (${METADATA_VERSION}); update the page`);
  }
  if (version < 1) throw new MetadataError('format_version', `${version} is not a valid version`);
  for (const key of ['model_name', 'variant']) {
    if (typeof require(record, key, key) !== 'string') throw new MetadataError(key, 'must be a string');
  }
  const labels = require(record, 'labels', 'labels');
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string')) {
    throw new MetadataError('labels', 'must be a non-empty list of strings');
  }
  const spec = require(record, 'input', 'input');
  const shape = require(spec, 'shape', 'input.shape');
  if (!Array.isArray(shape) || shape.length !== 4 ||
      shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 1) ||
      shape[0] !== 1 || shape[3] !== 3) {
    throw new MetadataError('input.shape', `is ${JSON.stringify(shape)}; expected [1, height, width, 3]`);
  }
  if (require(spec, 'layout', 'input.layout') !== 'NHWC') {
    throw new MetadataError('input.layout', `is ${JSON.stringify(spec.layout)}; only NHWC is supported`);
  }
  if (require(spec, 'color_order', 'input.color_order') !== 'RGB') {
    throw new MetadataError('input.color_order', `is ${JSON.stringify(spec.color_order)}; only RGB is supported`);
  }
  const dtype = choice(require(spec, 'dtype', 'input.dtype'), TENSOR_TYPES, 'input.dtype');
  const inputQuantization = quantization(spec, 'input', dtype);
  const pixelRange = require(spec, 'pixel_range', 'input.pixel_range');
  if (!Array.isArray(pixelRange) || pixelRange.length !== 2 || pixelRange[0] !== 0 || pixelRange[1] !== 255) {
    throw new MetadataError('input.pixel_range',
        `is ${JSON.stringify(pixelRange)}; apps feed 0-255 pixels, so only [0, 255] is supported`);
  }
  const channels = {};
  for (const key of ['mean', 'std']) {
    const values = require(spec, key, `input.${key}`);
    if (!Array.isArray(values) || values.length !== 3) {
      throw new MetadataError(`input.${key}`, 'must hold 3 numbers (R, G, B)');
    }
    channels[key] = values.map((v) => number(v, `input.${key}`));
    if (key === 'std' && Math.min(...channels.std) <= 0) {
      throw new MetadataError('input.std', `must be positive, not ${JSON.stringify(values)}`);
    }
  }
  const resize = require(spec, 'resize', 'input.resize');
  const cropFraction = number(require(resize, 'crop_fraction', 'input.resize.crop_fraction'),
      'input.resize.crop_fraction');
  if (!(cropFraction > 0 && cropFraction <= 1)) {
    throw new MetadataError('input.resize.crop_fraction', `must be in (0, 1], not ${cropFraction}`);
  }
  choice(require(resize, 'interpolation', 'input.resize.interpolation'), ['bilinear'], 'input.resize.interpolation');
  const output = require(record, 'output', 'output');
  const outputDtype = choice(require(output, 'dtype', 'output.dtype'), TENSOR_TYPES, 'output.dtype');
  const outputQuantization = quantization(output, 'output', outputDtype);
  const activation = choice(require(output, 'activation', 'output.activation'), ACTIVATIONS, 'output.activation');
  return {
    modelName: record.model_name,
    variant: record.variant,
    labels,
    input: {height: shape[1], width: shape[2], dtype, quantization: inputQuantization,
      mean: channels.mean, std: channels.std, cropFraction},
    output: {dtype: outputDtype, quantization: outputQuantization, activation},
  };
}
