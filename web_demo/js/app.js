// The demo page: a model picker over web_demo/models/models.json, an image from a file, a drop
// or the webcam, and the top-5 with probabilities, the model's variant and size, and the time.

import {Classifier} from './classifier.js';

const $ = (id) => document.getElementById(id);
const parameters = new URLSearchParams(location.search);
const threads = Number(parameters.get('threads') ||
    (globalThis.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 4) : 1));

const state = {classifier: null, picture: null, webcam: null, lastResult: null};
// For tests and benchmarks driving the page (web_demo/test/browser.mjs).
globalThis.demo = state;

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
  document.body.dataset.state = isError ? 'error' : text === '' ? 'idle' : 'busy';
}

async function loadIndex() {
  const response = await fetch('models/models.json');
  if (!response.ok) {
    throw new Error('no models/models.json: run python -m tools.convert --model RUN --web_assets web_demo/models');
  }
  const {models} = await response.json();
  if (models.length === 0) throw new Error('models/models.json lists no models');
  const picker = $('model');
  picker.replaceChildren(...models.map((entry, i) => {
    const option = new Option(`${entry.name} (${(entry.bytes / 1024).toFixed(1)} KB)`, String(i));
    option.entry = entry;
    return option;
  }));
  return models;
}

async function selectModel(index) {
  const entry = $('model').options[index].entry;
  $('model').value = String(index);
  setStatus(`loading ${entry.name}...`);
  if (state.classifier) state.classifier.delete();
  state.classifier = null;
  state.classifier = await Classifier.load(entry, threads);
  const {metadata, bytes} = state.classifier;
  $('model-info').textContent = `${metadata.modelName} · ${metadata.variant} · ${(bytes / 1024).toFixed(1)} KB · ` +
      `input ${metadata.input.dtype} ${metadata.input.height}x${metadata.input.width} · ` +
      `WASM, ${state.classifier.threads} thread${state.classifier.threads > 1 ? 's' : ''}`;
  setStatus('');
  if (state.picture) await classify(state.picture);
}

/** Draws `source` (an image, bitmap or video frame) and classifies its pixels. */
async function classify(source) {
  const width = source.videoWidth || source.naturalWidth || source.width;
  const height = source.videoHeight || source.naturalHeight || source.height;
  const canvas = $('picture');
  canvas.width = width;
  canvas.height = height;
  // No colour conversion: the model sees the file's own RGB values, as Python's decoder gives them.
  const context = canvas.getContext('2d', {willReadFrequently: true, colorSpace: 'srgb'});
  context.drawImage(source, 0, 0);
  if (!state.classifier) return;
  const {data} = context.getImageData(0, 0, width, height);
  const result = await state.classifier.classify(data, width, height);
  state.lastResult = {...result, model: $('model').options[$('model').value].entry.name};
  showResult(result);
}

function showResult({top5, milliseconds}) {
  $('results').replaceChildren(...top5.map(({label, score}) => {
    const row = document.createElement('li');
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${(100 * score).toFixed(1)}%`;
    const text = document.createElement('span');
    text.className = 'label';
    text.textContent = `${label} — ${(100 * score).toFixed(2)}%`;
    row.append(bar, text);
    return row;
  }));
  $('timing').textContent = `inference ${milliseconds.toFixed(2)} ms`;
  setStatus('');
  document.body.dataset.state = 'done';
}

async function openFile(file) {
  if (!file || !file.type.startsWith('image/')) {
    setStatus(`${file ? file.name : 'nothing'} is not an image: pick a PNG or JPEG`, true);
    return;
  }
  stopWebcam();
  setStatus(`classifying ${file.name}...`);
  // premultiplyAlpha none and colorSpaceConversion none: the decoded RGB values, unchanged.
  state.picture = await createImageBitmap(file, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  await classify(state.picture);
}

async function startWebcam() {
  if (!navigator.mediaDevices?.getUserMedia) {
    setStatus('this browser gives no camera here (it needs https or localhost)', true);
    return;
  }
  const video = $('video');
  video.srcObject = await navigator.mediaDevices.getUserMedia({video: true});
  await video.play();
  state.webcam = video;
  const loop = async () => {
    if (state.webcam !== video) return;
    await classify(video);
    requestAnimationFrame(loop);
  };
  loop();
}

function stopWebcam() {
  if (!state.webcam) return;
  for (const track of state.webcam.srcObject.getTracks()) track.stop();
  state.webcam = null;
}

function guard(action) {
  return (...args) => action(...args).catch((error) => setStatus(error.message, true));
}

$('file').addEventListener('change', guard((event) => openFile(event.target.files[0])));
$('model').addEventListener('change', guard((event) => selectModel(Number(event.target.value))));
$('webcam').addEventListener('click', guard(startWebcam));
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', guard(async (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  await openFile(event.dataTransfer.files[0]);
}));

state.selectModel = guard(selectModel);
state.ready = guard(async () => {
  await loadIndex();
  await selectModel(0);
})();
