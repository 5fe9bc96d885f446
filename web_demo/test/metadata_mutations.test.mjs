// Hostile metadata against the page's reader (js/metadata.js): every golden variant mutated
// field by field (deleted, retyped, non-finite, huge, nested), cut at every length and
// byte-flipped with a fixed seed; the Android core's ModelMetadataMutationTest applies the same
// mutations. Each mutant either reads as metadata the page can run or fails with MetadataError
// in one short line (what the page shows); no other exception escapes.
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {test} from 'node:test';

import {
  INTEGER_RANGES, MAX_INPUT_SIDE, MAX_LABEL_CHARACTERS, MAX_LABELS, MAX_METADATA_BYTES, MetadataError,
  SCALE_RANGE, parseMetadata, readMetadataResponse,
} from '../js/metadata.js';

const GOLDENS = new URL('../../android_demo/core/src/test/resources/goldens/metadata/', import.meta.url);
const NAMES = ['float32_crop0875', 'float32_imagenet_crop1', 'float32_nonsquare', 'uint8_pixels', 'uint8_affine', 'int8'];
const goldenBytes = (name) => readFileSync(new URL(`${name}.json`, GOLDENS));
const encode = (text) => new TextEncoder().encode(text);

/** JSON text written as is (NaN, 1e999, deep nesting), which JSON.stringify cannot produce. */
class Raw {
  constructor(text) { this.text = text; }
}
const DELETE = Symbol('delete');

const REPLACEMENTS = [
  null, true, 'x', '', 0, -1, 0.5, 1.5, 255, 256, -129, 4097, 2147483648, 1e308, -1e308, 5e-324, [], {},
  ['a', 'b'], [1, 24, 24, 3], {scale: 0.5, zero_point: 0},
  new Raw('NaN'), new Raw('Infinity'), new Raw('-Infinity'), new Raw('1e999'), new Raw('-1e999'), new Raw('-0'),
  new Raw(`1${'0'.repeat(400)}`), new Raw(`${'['.repeat(70)}${']'.repeat(70)}`),
  'x'.repeat(MAX_LABEL_CHARACTERS + 1), 'line\nbreak\u0000',
];

function toJson(value) {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${toJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

function paths(value, prefix = []) {
  const children = value !== null && typeof value === 'object'
    ? Object.keys(value).flatMap((key) => paths(value[key], [...prefix, Array.isArray(value) ? Number(key) : key]))
    : [];
  return [prefix, ...children];
}

function edited(value, path, replacement) {
  if (path.length === 0) return replacement;
  const [key, ...rest] = path;
  if (Array.isArray(value)) return value.map((item, i) => (i === key ? edited(item, rest, replacement) : item));
  const copy = {...value};
  if (rest.length === 0 && replacement === DELETE) delete copy[key];
  else copy[key] = edited(value[key], rest, replacement);
  return copy;
}

/** True when accepted; throws an AssertionError on anything but usable metadata or MetadataError. */
function outcome(what, bytes) {
  let metadata;
  try {
    metadata = parseMetadata(bytes);
  } catch (error) {
    assert.ok(error instanceof MetadataError, `${what}: ${error?.constructor?.name} escaped: ${error?.message}`);
    assert.ok(!/[\n\r]/.test(error.message) && error.message.length <= 400, `${what}: ${error.message}`);
    return false;
  }
  const {input, output, labels} = metadata;
  assert.ok(labels.length >= 1 && labels.length <= MAX_LABELS, what);
  assert.ok(labels.every((l) => typeof l === 'string' && l.length <= MAX_LABEL_CHARACTERS), what);
  for (const side of [input.height, input.width]) assert.ok(Number.isInteger(side) && side >= 1 && side <= MAX_INPUT_SIDE, what);
  // The extremes of (pixel - mean) / std stay finite float32 values.
  for (let c = 0; c < 3; c += 1) {
    for (const pixel of [0, 255]) assert.ok(Number.isFinite(Math.fround((pixel - input.mean[c]) / input.std[c])), what);
  }
  assert.ok(input.cropFraction > 0 && input.cropFraction <= 1, what);
  for (const {dtype, quantization} of [input, output]) {
    assert.equal(quantization === null, dtype === 'float32', what);
    if (quantization !== null) {
      assert.ok(quantization.scale >= SCALE_RANGE[0] && quantization.scale <= SCALE_RANGE[1], what);
      const [low, high] = INTEGER_RANGES[dtype];
      assert.ok(Number.isInteger(quantization.zeroPoint) && quantization.zeroPoint >= low && quantization.zeroPoint <= high, what);
    }
  }
  return true;
}

function refusedFor(field, bytes) {
  assert.throws(() => parseMetadata(bytes), (error) => error instanceof MetadataError && error.field === field);
}

test('every field mutation reads as usable metadata or is refused in one line', () => {
  let mutants = 0;
  let accepted = 0;
  for (const name of NAMES) {
    const base = JSON.parse(goldenBytes(name).toString('utf8'));
    for (const path of paths(base)) {
      const mutations = REPLACEMENTS.map((value) => [value instanceof Raw ? value.text.slice(0, 20) : value, value]);
      if (path.length > 0 && typeof path.at(-1) === 'string') mutations.push(['delete', DELETE]);
      for (const [label, value] of mutations) {
        if (outcome(`${name}: ${path.join('.')} = ${String(label)}`, encode(toJson(edited(base, path, value))))) accepted += 1;
        mutants += 1;
      }
    }
  }
  console.log(`metadata.js: ${mutants} field mutations, ${accepted} accepted`);
  assert.ok(mutants > 5000);
});

test('huge label lists, long labels and nonsense shapes are refused', () => {
  const base = JSON.parse(goldenBytes('float32_crop0875').toString('utf8'));
  refusedFor('labels', encode(toJson(edited(base, ['labels'], Array(MAX_LABELS + 1).fill('a')))));
  refusedFor('labels', encode(toJson(edited(base, ['labels'], ['a', 'b'.repeat(MAX_LABEL_CHARACTERS + 1)]))));
  for (const side of [0, -24, 4097, 1e9, 24.5]) refusedFor('input.shape', encode(toJson(edited(base, ['input', 'shape', 1], side))));
});

test('every truncation and seeded byte flip reads or is refused', () => {
  let mutants = 0;
  for (const name of ['uint8_affine', 'float32_nonsquare']) {
    const bytes = goldenBytes(name);
    for (let length = 0; length < bytes.length; length += 1) {
      outcome(`${name} cut at ${length}`, bytes.subarray(0, length));
      mutants += 1;
    }
    // mulberry32 with a fixed seed: the same mutants on every run.
    let seed = 27;
    const random = () => {
      seed = (seed + 0x6D2B79F5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    for (let i = 0; i < 3000; i += 1) {
      const mutant = Uint8Array.from(bytes);
      const flips = 1 + Math.floor(random() * 8);
      for (let f = 0; f < flips; f += 1) mutant[Math.floor(random() * mutant.length)] = Math.floor(random() * 256);
      outcome(`${name} flip ${i}`, mutant);
      mutants += 1;
    }
  }
  console.log(`metadata.js: ${mutants} truncations and byte flips`);
});

test('a huge or endless response is refused at the bound; bad UTF-8 and deep nesting are refused', async () => {
  let served = 0;
  const endless = new ReadableStream({
    pull(controller) {
      served += 65536;
      controller.enqueue(new Uint8Array(65536).fill(0x20));
    },
  });
  await assert.rejects(readMetadataResponse(new Response(endless)), (error) => error instanceof MetadataError && error.field === '(file)');
  assert.ok(served <= MAX_METADATA_BYTES + 2 * 65536 + 65536 * 4, `${served}`);
  const declared = new Response('{}', {headers: {'content-length': String(MAX_METADATA_BYTES + 1)}});
  await assert.rejects(readMetadataResponse(declared), (error) => error instanceof MetadataError && error.field === '(file)');
  await assert.rejects(readMetadataResponse(new Response(null)), (error) => error instanceof MetadataError && error.field === '(file)');
  const golden = await readMetadataResponse(new Response(goldenBytes('int8')));
  assert.equal(golden.output.activation, 'none');
  refusedFor('(file)', new Uint8Array(MAX_METADATA_BYTES + 1).fill(0x20));
  refusedFor('(file)', Uint8Array.of(0xC3, 0x28));
  refusedFor('(file)', encode(`${'['.repeat(100000)}${']'.repeat(100000)}`));
  refusedFor('(file)', encode('{"a": NaN}'));
});
