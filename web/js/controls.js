// The control panel: emotion sliders, presets, master intensity, transition time and the
// low-level face/head controls. It only reports what the user wants; app.js sends it.
import { EMOTIONS } from "./avatar-client.js";
import { faceIcon, resetIcon } from "./icons.js";

// Low-level controls, ranges as in the protocol. Grouped for the panel.
export const CONTROL_GROUPS = [
  { title: "Mouth", controls: [
    { name: "smile", label: "Smile", min: -1, max: 1, step: 0.01 },
    { name: "mouth_open", label: "Mouth open", min: 0, max: 1, step: 0.01 },
  ] },
  { title: "Eyes & brows", controls: [
    { name: "eyes_open", label: "Eyes open", min: -1, max: 1, step: 0.01 },
    { name: "eye_left", label: "Left eye", min: -1, max: 1, step: 0.01 },
    { name: "eye_right", label: "Right eye", min: -1, max: 1, step: 0.01 },
    { name: "brows", label: "Brows", min: -1, max: 1, step: 0.01 },
    { name: "gaze_x", label: "Gaze ←→", min: -1, max: 1, step: 0.01, text: "Gaze left-right" },
    { name: "gaze_y", label: "Gaze ↑↓", min: -1, max: 1, step: 0.01, text: "Gaze up-down" },
  ] },
  { title: "Head", controls: [
    { name: "yaw", label: "Yaw", min: -20, max: 20, step: 0.5, unit: "°" },
    { name: "pitch", label: "Pitch", min: -20, max: 20, step: 0.5, unit: "°" },
    { name: "roll", label: "Roll", min: -20, max: 20, step: 0.5, unit: "°" },
  ] },
];

/** Paint the filled part of a range track (CSSOM, so a strict CSP is fine). */
function paintFill(input) {
  const min = Number(input.min), max = Number(input.max), v = Number(input.value);
  const pct = ((v - min) / (max - min)) * 100;
  if (min < 0 && max > 0) {
    const zero = ((0 - min) / (max - min)) * 100;
    input.style.setProperty("--from", `${Math.min(zero, pct)}%`);
    input.style.setProperty("--to", `${Math.max(zero, pct)}%`);
  } else {
    input.style.setProperty("--fill", `${pct}%`);
  }
}

function makeSlider(parent, { id, label, min, max, step, value, format, text }) {
  const row = document.createElement("div");
  row.className = "slider-row";
  const lab = document.createElement("label");
  lab.htmlFor = id;
  lab.textContent = label;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", id, min: String(min), max: String(max), step: String(step) });
  if (text) input.setAttribute("aria-label", text); // a fuller name than the short visible label
  input.value = String(value);
  if (min < 0 && max > 0) input.classList.add("bipolar");
  const out = document.createElement("output");
  out.htmlFor = id;
  const show = () => {
    const t = format(Number(input.value));
    out.textContent = t;
    input.setAttribute("aria-valuetext", t);
    paintFill(input);
  };
  input.addEventListener("input", show);
  show();
  row.append(lab, input, out);
  parent.append(row);
  return { input, refresh: show };
}

const pct = (v) => `${Math.round(v * 100)}%`;
const title = (name) => name.charAt(0).toUpperCase() + name.slice(1); // in the text, so screen readers get it too
const signed = (v) => (v > 0 ? "+" : "") + v.toFixed(2);

/**
 * Build the panel. Callbacks: onEmotions(weights), onControls(partial), onIdle(bool), onReset(),
 * onBaseline("neutral" | "photo").
 * Returns an object to read the current target (for re-sending after a reconnect).
 */
export function buildControls(root, { onEmotions, onControls, onIdle, onReset, onBaseline }) {
  const emoSliders = {};
  const presetButtons = {};

  const presets = root.querySelector("#presets");
  for (const name of EMOTIONS) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "preset";
    b.dataset.emotion = name;
    b.setAttribute("aria-pressed", "false");
    const label = document.createElement("span");
    label.textContent = title(name);
    b.append(faceIcon(name), label);
    b.addEventListener("click", () => applyPreset(name));
    presets.append(b);
    presetButtons[name] = b;
  }

  // The grid's eighth cell: back to the photo as it is.
  const resetBtn = document.createElement("button");
  resetBtn.type = "button";
  resetBtn.className = "preset reset";
  resetBtn.id = "reset-btn";
  const resetLabel = document.createElement("span");
  resetLabel.textContent = "Reset";
  resetBtn.append(resetIcon(), resetLabel);
  resetBtn.title = "Neutral face, all controls back to 0";
  presets.append(resetBtn);

  const emoBox = root.querySelector("#emotion-sliders");
  for (const name of EMOTIONS) {
    emoSliders[name] = makeSlider(emoBox, {
      id: `emo-${name}`, label: title(name), min: 0, max: 1, step: 0.01, value: 0, format: pct,
    });
    emoSliders[name].input.addEventListener("input", emotionsChanged);
  }

  const masterBox = root.querySelector("#master-sliders");
  const master = makeSlider(masterBox, {
    id: "master-intensity", label: "Intensity", min: 0, max: 1, step: 0.01, value: 1, format: pct,
    text: "Master intensity",
  });
  master.input.addEventListener("input", emotionsChanged);
  const transition = makeSlider(masterBox, {
    id: "transition-ms", label: "Transition", min: 0, max: 2000, step: 50, value: 250,
    format: (v) => `${v} ms`, text: "Transition time",
  });

  const ctlSliders = {};
  const ctlBox = root.querySelector("#control-sliders");
  for (const group of CONTROL_GROUPS) {
    const t = document.createElement("p");
    t.className = "group-title";
    t.textContent = group.title;
    ctlBox.append(t);
    for (const c of group.controls) {
      const unit = c.unit || "";
      ctlSliders[c.name] = makeSlider(ctlBox, {
        id: `ctl-${c.name}`, label: c.label, min: c.min, max: c.max, step: c.step, value: 0, text: c.text,
        format: unit ? (v) => `${v > 0 ? "+" : ""}${v.toFixed(1)}${unit}` : signed,
      });
      ctlSliders[c.name].input.addEventListener("input", () => {
        onControls({ [c.name]: Number(ctlSliders[c.name].input.value) });
      });
    }
  }

  const idle = root.querySelector("#idle-toggle");
  idle.addEventListener("change", () => onIdle(idle.checked));
  // A session's baseline is fixed when it is created: the page starts a new session for it.
  const keepPhoto = root.querySelector("#baseline-toggle");
  const baseline = () => (keepPhoto.checked ? "photo" : "neutral");
  keepPhoto.addEventListener("change", () => onBaseline(baseline()));
  root.querySelector("#reset-btn").addEventListener("click", () => {
    for (const s of Object.values(emoSliders)) { s.input.value = "0"; s.refresh(); }
    for (const s of Object.values(ctlSliders)) { s.input.value = "0"; s.refresh(); }
    markPreset();
    onReset();
  });

  function weights() {
    const m = Number(master.input.value);
    const w = {};
    for (const name of EMOTIONS) w[name] = Math.round(Number(emoSliders[name].input.value) * m * 1000) / 1000;
    return w;
  }

  function markPreset() {
    for (const name of EMOTIONS) {
      const v = Number(emoSliders[name].input.value);
      const others = EMOTIONS.every((o) => o === name || Number(emoSliders[o].input.value) === 0);
      presetButtons[name].setAttribute("aria-pressed", String(v === 1 && others));
    }
  }

  function emotionsChanged() {
    markPreset();
    onEmotions(weights());
  }

  function applyPreset(name) {
    for (const e of EMOTIONS) {
      emoSliders[e].input.value = e === name ? "1" : "0";
      emoSliders[e].refresh();
    }
    emotionsChanged();
  }

  return {
    weights,
    transitionMs: () => Number(transition.input.value),
    controls: () => Object.fromEntries(Object.entries(ctlSliders).map(([k, s]) => [k, Number(s.input.value)])),
    idleEnabled: () => idle.checked,
    baseline,
  };
}
