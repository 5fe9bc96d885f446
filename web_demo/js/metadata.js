// Reads NAME.json beside a .tflite (docs/MODEL_METADATA.md) with the rules of
// regnet_keras.lite.image_preprocessing.check_metadata, naming the offending field.

export const METADATA_FORMAT = 'regnet_keras.tflite_metadata';
export const METADATA_VERSION = 1;
export const TENSOR_TYPES = ['float32', 'uint8', 'int8'];
export const INTEGER_RANGES = {uint8: [0, 255], int8: [-128, 127]};
const ACTIVATIONS = ['softmax', 'none'];
// Bounds that keep a crafted file's cost in proportion to a real one's, the same as
// regnet_keras.lite.image_preprocessing's and the Android core's.
export const MAX_METADATA_BYTES = 4 * 1024 * 1024;
export const MAX_JSON_DEPTH = 64;
export const MAX_LABELS = 100000;
export const MAX_LABEL_CHARACTERS = 256;
export const MAX_INPUT_SIDE = 4096;
// Normalisation and quantization parameters are bounded so that every value computed from them
// is finite: (pixel - mean) / std within float32, value / scale and (q - zero_point) * scale
// within float64. Scales are float32's positive normal numbers, as the .tflite stores them.
export const MAX_ABS_MEAN = 1e6;
export const STD_RANGE = [1e-6, 1e6];
export const SCALE_RANGE = [1.1754943508222875e-38, 3.4028234663852886e38];
// Values quoted in messages are cut here, so that every message stays one short line.
const QUOTED_CHARACTERS = 60;
const MESSAGE_CHARACTERS = 200;

export class MetadataError extends Error {
  constructor(field, problem) {
    super(`model metadata field ${field}: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** `text` with control characters escaped, cut to `limit` characters. */
function oneLine(text, limit) {
  const line = String(text).replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return line.length <= limit ? line : `${line.slice(0, limit)}...`;
}

/** A value from the file as JSON text, one short line (a long list is cut before it is written). */
function quoted(value) {
  const shortened = Array.isArray(value) ? value.slice(0, QUOTED_CHARACTERS / 2) : value;
  const text = typeof shortened === 'string' ? JSON.stringify(shortened.slice(0, QUOTED_CHARACTERS + 1))
    : JSON.stringify(shortened, (key, item) => (typeof item === 'string' ? item.slice(0, QUOTED_CHARACTERS + 1) : item));
  return oneLine(text === undefined ? String(value) : text, QUOTED_CHARACTERS);
}

function require(record, key, field) {
  if (!isObject(record) || !Object.prototype.hasOwnProperty.call(record, key)) {
    throw new MetadataError(field, 'is missing');
  }
  return record[key];
}

function depth(value) {
  let deepest = 0;
  const pending = [[value, 0]];
  while (pending.length > 0) {
    const [item, level] = pending.pop();
    deepest = Math.max(deepest, level);
    if (item !== null && typeof item === 'object') {
      for (const child of Object.values(item)) pending.push([child, level + 1]);
    }
  }
  return deepest;
}

const tooLarge = (size) => new MetadataError('(file)',
    `is ${size} bytes, more than metadata ever needs (${MAX_METADATA_BYTES}); write it again with python -m tools.convert`);

/**
 * A metadata file's bytes (ArrayBuffer or Uint8Array) -> readMetadata's result. Strict: UTF-8,
 * RFC 8259 JSON (JSON.parse), size and nesting bounded. Throws MetadataError.
 */
export function parseMetadata(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (view.byteLength > MAX_METADATA_BYTES) throw tooLarge(view.byteLength);
  let text;
  try {
    text = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(view);
  } catch {
    throw new MetadataError('(file)', 'is not UTF-8 text; write it again with python -m tools.convert');
  }
  let record;
  try {
    record = JSON.parse(text);
  } catch (error) {
    throw new MetadataError('(file)',
        `is not valid JSON (${oneLine(error.message, MESSAGE_CHARACTERS)}); write it again with python -m tools.convert`);
  }
  if (depth(record) > MAX_JSON_DEPTH) {
    throw new MetadataError('(file)', `nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return readMetadata(record);
}

/**
 * Reads a fetch Response's body as metadata, refusing it as soon as it passes
 * MAX_METADATA_BYTES (a declared Content-Length above it is refused before any byte is read).
 */
export async function readMetadataResponse(response) {
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_METADATA_BYTES) throw tooLarge(declared);
  if (response.body === null) return parseMetadata(new Uint8Array(0));
  const reader = response.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_METADATA_BYTES) {
      await reader.cancel();
      throw tooLarge(`more than ${MAX_METADATA_BYTES}`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return parseMetadata(bytes);
}

function number(value, field) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new MetadataError(field, `must be a finite number, not ${quoted(value)}`);
  }
  return value;
}

function integer(value, field) {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new MetadataError(field, `must be an integer, not ${quoted(value)}`);
  }
  return value;
}

function choice(value, choices, field) {
  if (!choices.includes(value)) {
    throw new MetadataError(field, `is ${quoted(value)}; this reader knows ${choices.join(', ')}`);
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
  if (scale < SCALE_RANGE[0] || scale > SCALE_RANGE[1]) {
    throw new MetadataError(`${prefix}.quantization.scale`,
        `${scale} is not a normal float32 number (from ${SCALE_RANGE[0]} to ${SCALE_RANGE[1]})`);
  }
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
    throw new MetadataError('format', `is ${quoted(format)}, not "${METADATA_FORMAT}"`);
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
  if (labels.length > MAX_LABELS) {
    throw new MetadataError('labels', `has ${labels.length} entries; a reader takes at most ${MAX_LABELS}`);
  }
  const longest = labels.reduce((best, label, i) => (label.length > labels[best].length ? i : best), 0);
  if (labels[longest].length > MAX_LABEL_CHARACTERS) {
    throw new MetadataError('labels',
        `entry ${longest} has ${labels[longest].length} characters; a reader takes at most ${MAX_LABEL_CHARACTERS}`);
  }
  const spec = require(record, 'input', 'input');
  const shape = require(spec, 'shape', 'input.shape');
  if (!Array.isArray(shape) || shape.length !== 4 ||
      shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 1) ||
      shape[0] !== 1 || shape[3] !== 3) {
    throw new MetadataError('input.shape', `is ${quoted(shape)}; expected [1, height, width, 3]`);
  }
  if (Math.max(shape[1], shape[2]) > MAX_INPUT_SIDE) {
    throw new MetadataError('input.shape', `is ${quoted(shape)}; a reader takes height and width up to ${MAX_INPUT_SIDE}`);
  }
  if (require(spec, 'layout', 'input.layout') !== 'NHWC') {
    throw new MetadataError('input.layout', `is ${quoted(spec.layout)}; only NHWC is supported`);
  }
  if (require(spec, 'color_order', 'input.color_order') !== 'RGB') {
    throw new MetadataError('input.color_order', `is ${quoted(spec.color_order)}; only RGB is supported`);
  }
  const dtype = choice(require(spec, 'dtype', 'input.dtype'), TENSOR_TYPES, 'input.dtype');
  const inputQuantization = quantization(spec, 'input', dtype);
  const pixelRange = require(spec, 'pixel_range', 'input.pixel_range');
  if (!Array.isArray(pixelRange) || pixelRange.length !== 2 || pixelRange[0] !== 0 || pixelRange[1] !== 255) {
    throw new MetadataError('input.pixel_range',
        `is ${quoted(pixelRange)}; apps feed 0-255 pixels, so only [0, 255] is supported`);
  }
  const channels = {};
  for (const key of ['mean', 'std']) {
    const values = require(spec, key, `input.${key}`);
    if (!Array.isArray(values) || values.length !== 3) {
      throw new MetadataError(`input.${key}`, 'must hold 3 numbers (R, G, B)');
    }
    channels[key] = values.map((v) => number(v, `input.${key}`));
    if (key === 'mean' && channels.mean.some((m) => Math.abs(m) > MAX_ABS_MEAN)) {
      throw new MetadataError('input.mean', `is ${quoted(values)}; means of 0-255 pixels lie within +-1e+06`);
    }
    if (key === 'std' && Math.min(...channels.std) <= 0) {
      throw new MetadataError('input.std', `must be positive, not ${quoted(values)}`);
    }
    if (key === 'std' && channels.std.some((s) => s < STD_RANGE[0] || s > STD_RANGE[1])) {
      throw new MetadataError('input.std', `is ${quoted(values)}; it must lie from 1e-06 to 1e+06`);
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
