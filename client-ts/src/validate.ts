/** Client-side argument checks: plain JavaScript callers get a typed error before any request. */
import { LivePortraitValidationError } from "./errors.js";
import { BASELINES, EMOTIONS, EmotionType, type Baseline, type ControlName, type FaceControls, type OutputFormat } from "./types.js";

const FORMATS: readonly OutputFormat[] = ["png", "jpg", "webp"];

/** Ranges of the low-level controls, and their wire names. */
export const CONTROL_SPEC: Readonly<Record<ControlName, { wire: string; min: number; max: number }>> = {
  smile: { wire: "smile", min: -1, max: 1 },
  mouthOpen: { wire: "mouth_open", min: 0, max: 1 },
  eyesOpen: { wire: "eyes_open", min: -1, max: 1 },
  eyeLeft: { wire: "eye_left", min: -1, max: 1 },
  eyeRight: { wire: "eye_right", min: -1, max: 1 },
  brows: { wire: "brows", min: -1, max: 1 },
  gazeX: { wire: "gaze_x", min: -1, max: 1 },
  gazeY: { wire: "gaze_y", min: -1, max: 1 },
  yaw: { wire: "yaw", min: -20, max: 20 },
  pitch: { wire: "pitch", min: -20, max: 20 },
  roll: { wire: "roll", min: -20, max: 20 },
};

export function checkEmotion(value: unknown): EmotionType {
  if (typeof value === "string" && (EMOTIONS as readonly string[]).includes(value)) {
    return value as EmotionType;
  }
  throw new LivePortraitValidationError(
    "invalid_emotion", `unknown emotion ${JSON.stringify(value)}; expected one of ${EMOTIONS.join(", ")}`);
}

export function checkRange(name: string, value: unknown, min: number, max: number,
                           code = "invalid_value"): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new LivePortraitValidationError(
      code, `${name} must be a number in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkIntensity(value: unknown): number {
  return checkRange("intensity", value, 0, 1, "invalid_intensity");
}

export function checkFormat(value: unknown): OutputFormat {
  if (typeof value === "string" && (FORMATS as readonly string[]).includes(value)) {
    return value as OutputFormat;
  }
  throw new LivePortraitValidationError(
    "invalid_format", `output format must be one of ${FORMATS.join(", ")}, got ${JSON.stringify(value)}`);
}

export function checkBaseline(value: unknown): Baseline {
  if (typeof value === "string" && (BASELINES as readonly string[]).includes(value)) {
    return value as Baseline;
  }
  throw new LivePortraitValidationError(
    "invalid_baseline", `baseline must be one of ${BASELINES.join(", ")}, got ${JSON.stringify(value)}`);
}

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  const n = checkRange(name, value, min, max);
  if (!Number.isInteger(n)) {
    throw new LivePortraitValidationError("invalid_value", `${name} must be an integer, got ${n}`);
  }
  return n;
}

export function checkTransition(value: unknown): number | undefined {
  return value === undefined ? undefined : checkRange("transitionMs", value, 0, 10000);
}

/** Output file names come from the server; refuse anything that could leave /output/. */
export function checkFilename(value: unknown): string {
  if (typeof value !== "string" || value === "" || value.includes("/") || value.includes("\\")
      || value === "." || value === "..") {
    throw new LivePortraitValidationError(
      "invalid_filename", `filename must be a plain file name, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** camelCase controls -> the flat snake_case fields of set_controls. */
export function controlsToWire(controls: FaceControls): Record<string, number> {
  if (typeof controls !== "object" || controls === null) {
    throw new LivePortraitValidationError("invalid_value", "controls must be an object");
  }
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(controls)) {
    if (value === undefined) continue;
    const spec = CONTROL_SPEC[key as ControlName];
    if (spec === undefined) {
      throw new LivePortraitValidationError(
        "invalid_value", `unknown control ${JSON.stringify(key)}; expected ${Object.keys(CONTROL_SPEC).join(", ")}`);
    }
    out[spec.wire] = checkRange(key, value, spec.min, spec.max);
  }
  return out;
}
