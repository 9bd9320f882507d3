// Small line-drawn faces for the emotion presets, built as SVG DOM (no emoji font needed,
// same look in every browser, nothing inline for the CSP to block).

const NS = "http://www.w3.org/2000/svg";

// Per emotion: mouth path, brow paths, eye radius. viewBox is 32x32, face centre (16,16).
const FACES = {
  neutral: { mouth: "M11 21 L21 21", brows: [], eye: 1.6 },
  happy: { mouth: "M10 19 Q16 26 22 19", brows: [], eye: 1.6 },
  sad: { mouth: "M11 23 Q16 18.5 21 23", brows: ["M9 11.5 L13 10", "M23 11.5 L19 10"], eye: 1.5 },
  surprised: { mouth: null, oval: [16, 21.5, 2.4, 3], brows: ["M9.5 9 Q11.5 7.5 13.5 9", "M18.5 9 Q20.5 7.5 22.5 9"], eye: 2.1 },
  angry: { mouth: "M11 22.5 Q16 20 21 22.5", brows: ["M9 10 L13.5 12", "M23 10 L18.5 12"], eye: 1.5 },
  disgusted: { mouth: "M10.5 22 Q13 19.5 16 21.5 Q19 23.5 21.5 20.5", brows: ["M9 11 L13 11.5", "M19 10 L23 9"], eye: 1.4 },
  fearful: { mouth: "M11 22.5 Q13.5 19.5 16 22 Q18.5 19.5 21 22.5", brows: ["M9 11 Q11 8.5 13.5 9.5", "M23 11 Q21 8.5 18.5 9.5"], eye: 2.0 },
};

function el(name, attrs) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** An <svg> face for one emotion, drawn with currentColor. */
export function faceIcon(emotion, size = 26) {
  const f = FACES[emotion] || FACES.neutral;
  const svg = el("svg", { viewBox: "0 0 32 32", width: size, height: size, "aria-hidden": "true", class: "face-icon" });
  const stroke = { fill: "none", stroke: "currentColor", "stroke-width": 1.8, "stroke-linecap": "round", "stroke-linejoin": "round" };
  svg.append(el("circle", { cx: 16, cy: 16, r: 13.5, ...stroke }));
  svg.append(el("circle", { cx: 11.5, cy: 14, r: f.eye, fill: "currentColor" }));
  svg.append(el("circle", { cx: 20.5, cy: 14, r: f.eye, fill: "currentColor" }));
  for (const d of f.brows) svg.append(el("path", { d, ...stroke }));
  if (f.oval) {
    const [cx, cy, rx, ry] = f.oval;
    svg.append(el("ellipse", { cx, cy, rx, ry, ...stroke }));
  } else {
    svg.append(el("path", { d: f.mouth, ...stroke }));
  }
  return svg;
}

/** A circular arrow for the reset button. */
export function resetIcon(size = 26) {
  const svg = el("svg", { viewBox: "0 0 32 32", width: size, height: size, "aria-hidden": "true", class: "face-icon" });
  const stroke = { fill: "none", stroke: "currentColor", "stroke-width": 1.8, "stroke-linecap": "round", "stroke-linejoin": "round" };
  svg.append(el("path", { d: "M7.5 12.5 A9.5 9.5 0 1 1 7 19", ...stroke }));
  svg.append(el("path", { d: "M6.5 6.5 L7.5 12.5 L13.5 11.5", ...stroke }));
  return svg;
}
