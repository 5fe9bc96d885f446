// A converted RegNet on LiteRT.js: loads NAME.tflite with its NAME.json, checks one against the
// other, and classifies RGBA pixels with the shared preprocessing and postprocessing.

import {Tensor, loadAndCompile, loadLiteRt} from '@litertjs/core';

import {readMetadataResponse} from './metadata.js';
import {classifyOutput, dequantize} from './postprocessing.js';
import {prepareImage} from './preprocessing.js';

// The tensor types LiteRT.js 2.5.3 can hand over (its DATATYPES); int8 is not among them.
const RUNTIME_TYPES = {float32: Float32Array, uint8: Uint8Array};

let runtime = null;

/**
 * Loads the WASM runtime once per page: the threaded build when `threads` > 1 (it needs a
 * cross-origin isolated page, which web_demo.serve's COOP/COEP headers give).
 */
export async function loadRuntime(threads) {
  if (runtime === null) {
    const threaded = threads > 1 && globalThis.crossOriginIsolated === true;
    runtime = loadLiteRt(new URL('../node_modules/@litertjs/core/wasm/', import.meta.url).href,
        {threads: threaded}).then(() => ({threads: threaded ? threads : 1}));
  }
  return runtime;
}

export class Classifier {
  static async load(entry, threads) {
    const base = new URL('../models/', import.meta.url);
    const [bytes, metadata] = await Promise.all([
      fetch(new URL(entry.tflite, base)).then((r) => modelBytes(checked(r, entry.tflite), entry.tflite)),
      fetch(new URL(entry.metadata, base)).then((r) => readMetadataResponse(checked(r, entry.metadata))),
    ]);
    const {threads: used} = await loadRuntime(threads);
    const model = await loadAndCompile(new Uint8Array(bytes),
        {accelerator: 'wasm', cpuOptions: {numThreads: used}});
    try {
      checkModel(model, metadata);
    } catch (error) {
      model.delete();
      throw error;
    }
    return new Classifier(model, metadata, bytes.byteLength, used);
  }

  constructor(model, metadata, bytes, threads) {
    this.model = model;
    this.metadata = metadata;
    this.bytes = bytes;
    this.threads = threads;
  }

  /** The input tensor of an RGBA picture. */
  inputTensor(rgba, width, height) {
    const {input} = this.metadata;
    return new Tensor(prepareImage(rgba, width, height, input), [1, input.height, input.width, 3]);
  }

  /** Raw output values of one run on `tensor`, and the run's time in milliseconds. */
  async run(tensor) {
    const start = performance.now();
    const outputs = await this.model.run(tensor);
    const raw = outputs[0].toTypedArray().slice();
    const milliseconds = performance.now() - start;
    for (const output of outputs) output.delete();
    return {raw, milliseconds};
  }

  /** {top5, values (dequantized output), raw, milliseconds} of an RGBA picture. */
  async classify(rgba, width, height) {
    const tensor = this.inputTensor(rgba, width, height);
    try {
      const {raw, milliseconds} = await this.run(tensor);
      return {top5: classifyOutput(raw, this.metadata), raw: Array.from(raw),
        values: Array.from(dequantize(raw, this.metadata.output)), milliseconds};
    } finally {
      tensor.delete();
    }
  }

  delete() {
    this.model.delete();
  }
}

function checked(response, name) {
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}; is it in web_demo/models?`);
  return response;
}

// The largest zoo model in float32 (RegNetY320) is about 580 MB; a declared size beyond this is
// refused before the page allocates it.
const MAX_MODEL_BYTES = 1024 * 1024 * 1024;

function modelBytes(response, name) {
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_MODEL_BYTES) {
    throw new Error(`${name}: ${declared} bytes, more than a RegNet model file (${MAX_MODEL_BYTES}); ` +
        'is it the file tools.convert wrote?');
  }
  return response.arrayBuffer();
}

/** The metadata must describe the loaded file (as the Android app checks its model). */
function checkModel(model, metadata) {
  const [input] = model.getInputDetails();
  const [output] = model.getOutputDetails();
  const {height, width} = metadata.input;
  const expected = [1, height, width, 3];
  if (Array.from(input.shape).join() !== expected.join()) {
    throw new Error(`input.shape is [${expected}] in the metadata but [${Array.from(input.shape)}] in ` +
        'the model: convert it again with python -m tools.convert (batch 1 signatures)');
  }
  for (const [field, tensor, wanted] of [['input.dtype', input, metadata.input.dtype],
    ['output.dtype', output, metadata.output.dtype]]) {
    if (!(wanted in RUNTIME_TYPES)) {
      throw new Error(`${field} is ${wanted}: LiteRT.js takes float32 and uint8 tensors only; ` +
          'convert with --input_type uint8 --output_type float32');
    }
    if (tensor.dtype !== wanted) {
      throw new Error(`${field} is ${wanted} in the metadata but ${tensor.dtype} in the model`);
    }
  }
  if (Array.from(output.shape).join() !== [1, metadata.labels.length].join()) {
    throw new Error(`labels: ${metadata.labels.length} labels for a model output of shape [${Array.from(output.shape)}]`);
  }
}
