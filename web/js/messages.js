// Human words for the protocol's error codes: a title and a hint of what to do.

const TEXT = {
  no_face: ["No face found", "Try a clear, front-facing portrait where the whole face is visible."],
  file_too_large: ["File too large", "Pick a smaller photo (a few megabytes is plenty)."],
  payload_too_large: ["File too large", "Pick a smaller photo (a few megabytes is plenty)."],
  image_too_large: ["Image too large", "That photo has too many pixels; scale it down and try again."],
  invalid_image: ["Not a readable image", "Use a JPEG, PNG or WebP photo."],
  empty_file: ["Empty file", "That file has no content."],
  not_an_image: ["Not an image", "Use a JPEG, PNG or WebP photo."],
  too_many_sessions: ["Server is full", "Too many live sessions right now."],
  busy: ["Server is busy", "The renderer is saturated."],
  network_error: ["Server unreachable", "Check that the streamer is running."],
  ws_failed: ["Live connection failed", "Retrying…"],
};

/** {title, text} for an ApiError-like object {code, message, retryAfter}. */
export function describeError(err) {
  const [title, hint] = TEXT[err.code] || ["Something went wrong", err.message || String(err)];
  let text = hint;
  if (err.retryAfter) text += ` Retry in ${Math.ceil(err.retryAfter)} s.`;
  return { title, text };
}
