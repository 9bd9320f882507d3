/** Turns a SourceImage (path, bytes or Blob) into a Blob for multipart upload. */
import { LivePortraitValidationError } from "./errors.js";
import type { SourceImage } from "./types.js";

export interface SourceBlob {
  blob: Blob;
  filename: string;
}

function sniffType(head: Uint8Array): string {
  if (head[0] === 0xff && head[1] === 0xd8) return "image/jpeg";
  if (head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47) return "image/png";
  if (head[0] === 0x52 && head[1] === 0x49 && head[8] === 0x57 && head[9] === 0x45) return "image/webp";
  return "application/octet-stream";
}

function bytesBlob(bytes: Uint8Array, filename: string): SourceBlob {
  if (bytes.byteLength === 0) {
    throw new LivePortraitValidationError("empty_file", "the source image is empty");
  }
  // Copy into a plain ArrayBuffer-backed view: Blob rejects SharedArrayBuffer views.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return { blob: new Blob([copy], { type: sniffType(copy.subarray(0, 12)) }), filename };
}

export async function toSourceBlob(source: SourceImage): Promise<SourceBlob> {
  if (typeof source === "string") {
    if (source === "") {
      throw new LivePortraitValidationError("invalid_source", "sourceImage path is empty");
    }
    // Loaded lazily so the module also works in browsers, where only Blob/bytes are usable.
    const fs = await import("node:fs/promises");
    const path = await import("node:path");
    let data: Uint8Array;
    try {
      data = await fs.readFile(source);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") {
        throw new LivePortraitValidationError("file_not_found", `source image not found: ${source}`);
      }
      throw new LivePortraitValidationError(
        "unreadable_file", `cannot read source image ${source}: ${(err as Error).message}`);
    }
    return bytesBlob(data, path.basename(source));
  }
  if (source instanceof Uint8Array) return bytesBlob(source, "portrait");
  if (source instanceof ArrayBuffer) return bytesBlob(new Uint8Array(source), "portrait");
  if (typeof Blob !== "undefined" && source instanceof Blob) {
    if (source.size === 0) throw new LivePortraitValidationError("empty_file", "the source image is empty");
    const name = (source as Blob & { name?: unknown }).name;
    return { blob: source, filename: typeof name === "string" && name !== "" ? name : "portrait" };
  }
  throw new LivePortraitValidationError(
    "invalid_source", "sourceImage must be a file path, a Buffer/Uint8Array, an ArrayBuffer or a Blob");
}
