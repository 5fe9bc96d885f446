// The page's preprocessing, postprocessing and metadata rules against the goldens that
// `python -m tools.android_goldens` writes from regnet_keras.lite.image_preprocessing (the same
// files the Android core's JUnit tests read). Run: node --test web_demo/test/
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {test} from 'node:test';

import {MetadataError, readMetadata} from '../js/metadata.js';
import {classifyOutput, scores, topK} from '../js/postprocessing.js';
import {argbToRgba, cropBox, prepareImage, roundHalfEven} from '../js/preprocessing.js';

const GOLDENS = new URL('../../android_demo/core/src/test/resources/goldens/', import.meta.url);
const read = (name) => JSON.parse(readFileSync(new URL(name, GOLDENS), 'utf8'));
const cases = (name) => read(name).cases;
const metadata = (name) => readMetadata(read(`metadata/${name}.json`));
const SCORE_TOLERANCE = 1e-12;

test('every golden image through every metadata variant gives the Python tensor', () => {
  const images = new Map(cases('images.json').map((image) => [image.name, image]));
  let largestFloatDifference = 0;
  let quantizedValues = 0;
  const all = cases('preprocessing.json');
  assert.ok(all.length >= 30);
  for (const golden of all) {
    const image = images.get(golden.image);
    const spec = metadata(golden.metadata).input;
    const where = `${golden.image} through ${golden.metadata}`;
    assert.deepEqual(golden.shape, [1, spec.height, spec.width, 3], where);
    const tensor = prepareImage(argbToRgba(image.argb), image.width, image.height, spec);
    assert.equal(tensor.length, golden.values.length, where);
    if (golden.dtype === 'float32') {
      assert.ok(tensor instanceof Float32Array, where);
      tensor.forEach((value, i) => {
        largestFloatDifference = Math.max(largestFloatDifference, Math.abs(value - golden.values[i]));
      });
    } else {
      assert.equal(tensor.constructor.name, golden.dtype === 'uint8' ? 'Uint8Array' : 'Int8Array', where);
      assert.deepEqual(Array.from(tensor), golden.values, where);
      quantizedValues += tensor.length;
    }
  }
  // The same float64 arithmetic in the same order: float32 values agree bit for bit.
  assert.equal(largestFloatDifference, 0);
  assert.ok(quantizedValues > 1000);
});

test('golden raw outputs give the Python scores and top-5', () => {
  const all = cases('postprocessing.json');
  assert.ok(all.length >= 10);
  for (const golden of all) {
    const record = metadata(golden.metadata);
    const actual = scores(golden.raw_output, record.output);
    golden.scores.forEach((expected, i) => {
      assert.ok(Math.abs(actual[i] - expected) <= SCORE_TOLERANCE, `${golden.name} [${i}]: ${actual[i]} vs ${expected}`);
    });
    const top = classifyOutput(golden.raw_output, record);
    assert.deepEqual(top.map((t) => [t.index, t.label]), golden.top5.map((t) => [t.index, t.label]), golden.name);
  }
});

test('metadata an app must refuse is refused for the same field', () => {
  const all = cases('invalid_metadata.json');
  assert.ok(all.length >= 20);
  for (const golden of all) {
    assert.throws(() => readMetadata(golden.metadata), (error) => {
      assert.ok(error instanceof MetadataError, golden.name);
      assert.equal(error.field, golden.field, golden.name);
      return true;
    }, golden.name);
  }
});

test('crop, rounding and ties follow the definition', () => {
  assert.deepEqual(cropBox(23, 37, 0.875), {top: 1, left: 8, side: 20});
  assert.deepEqual(cropBox(41, 23, 0.875), {top: 10, left: 1, side: 20});
  assert.deepEqual(cropBox(1, 1, 0.1), {top: 0, left: 0, side: 1});
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999].map(roundHalfEven), [0, 2, 2, 0, -2, 2]);
  assert.deepEqual(topK([0.1, 0.3, 0.3, 0.0, 0.3, 0.2]), [1, 2, 4, 5, 0]);
});
