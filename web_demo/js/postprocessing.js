// Output tensor -> top-k, as regnet_keras.lite.image_preprocessing and the Android core's
// Postprocessor.kt do it: dequantize (q - zero_point) * scale, softmax when the model outputs
// logits (largest subtracted, summed in index order), rank by descending score with the lower
// class index first on equal scores. float64 throughout.

/** The output tensor's values as float64: (q - zero_point) * scale for integer outputs. */
export function dequantize(raw, output) {
  const values = Float64Array.from(raw);
  if (output.quantization === null) return values;
  const {scale, zeroPoint} = output.quantization;
  return values.map((q) => (q - zeroPoint) * scale);
}

export function softmax(logits) {
  let largest = -Infinity;
  for (const value of logits) if (value > largest) largest = value;
  const exponentials = Float64Array.from(logits, (value) => Math.exp(value - largest));
  let total = 0.0;
  for (const value of exponentials) total += value;
  return exponentials.map((value) => value / total);
}

/** Class probabilities from the raw output tensor. */
export function scores(raw, output) {
  const values = dequantize(raw, output);
  return output.activation === 'none' ? softmax(values) : values;
}

/** Indices of the k highest scores, highest first; on equal scores the lower index first. */
export function topK(classScores, k = 5) {
  const order = Array.from(classScores, (_, i) => i);
  order.sort((a, b) => (classScores[b] - classScores[a]) || (a - b));
  return order.slice(0, k);
}

/** [{index, label, score}] of the top k classes; `metadata` is readMetadata(...)'s result. */
export function classifyOutput(raw, metadata, k = 5) {
  const classScores = scores(raw, metadata.output);
  if (classScores.length !== metadata.labels.length) {
    throw new Error(`labels: ${metadata.labels.length} labels for a model output of width ${classScores.length}`);
  }
  return topK(classScores, k).map((index) => ({index, label: metadata.labels[index], score: classScores[index]}));
}
