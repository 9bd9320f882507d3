// The REST panel: one still through POST /render, shown inline and offered as a download.
import { EMOTIONS, renderStill } from "./avatar-client.js";
import { describeError } from "./messages.js";

/**
 * getPortrait() returns the current portrait Blob (or null); getBaseline() "neutral" | "photo",
 * so a still matches the live face.
 */
export function buildRenderPanel(getPortrait, getBaseline = () => "neutral") {
  const form = document.getElementById("render-form");
  const emotion = document.getElementById("render-emotion");
  const intensity = document.getElementById("render-intensity");
  const intensityOut = document.getElementById("render-intensity-out");
  const format = document.getElementById("render-format");
  const button = document.getElementById("render-btn");
  const status = document.getElementById("render-status");
  const img = document.getElementById("render-img");
  const download = document.getElementById("render-download");
  let url = null;

  for (const name of EMOTIONS) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = name;
    if (name === "happy") o.selected = true;
    emotion.append(o);
  }
  const showIntensity = () => {
    const v = Number(intensity.value);
    intensityOut.textContent = v.toFixed(2);
    intensity.style.setProperty("--fill", `${v * 100}%`);
  };
  intensity.addEventListener("input", showIntensity);
  showIntensity();

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const portrait = getPortrait();
    if (!portrait) return;
    button.disabled = true;
    status.classList.remove("error");
    status.textContent = "Rendering…";
    try {
      const fmt = format.value;
      const { blob, latencyMs } = await renderStill(portrait, {
        emotion: emotion.value, intensity: Number(intensity.value), format: fmt, baseline: getBaseline(),
      });
      if (url) URL.revokeObjectURL(url);
      url = URL.createObjectURL(blob);
      img.src = url;
      img.hidden = false;
      download.href = url;
      download.download = `avatar-${emotion.value}-${Math.round(Number(intensity.value) * 100)}.${fmt}`;
      download.hidden = false;
      const ms = latencyMs === null ? "" : ` in ${Math.round(latencyMs)} ms`;
      status.textContent = `Rendered ${emotion.value} at ${Number(intensity.value).toFixed(2)}${ms} (${Math.round(blob.size / 1024)} KB ${fmt.toUpperCase()}).`;
    } catch (err) {
      const { title, text } = describeError(err);
      status.classList.add("error");
      status.textContent = `${title}: ${text}`;
    } finally {
      button.disabled = false;
    }
  });
}
